package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// Placement (docs/scaling.md). Every worker publishes its status every
// worker.StatusInterval and whenever its load changes. A gateway keeps the
// latest status of each worker, places a new session on the worker with the
// most free places (ties: a warm browser ready, then more memory
// available), and asks that worker by name. A worker that refuses (full by
// now, or its browser failed) is passed over for the next. When no worker
// has a free place, the request waits up to Config.QueueWait for one, then
// gets 503 no_capacity.
//
// A worker whose heartbeats stop for workerAlive is lost: every gateway
// ends the viewers it bridges to that worker's sessions with "ended"
// (worker_lost) down their signaling subjects, and the sessions' records
// end with that reason.

// workerState is what a gateway knows of one worker.
type workerState struct {
	st   worker.Status
	seen time.Time // when its latest status arrived (this gateway's clock)
}

// noteStatus records a worker's status; a stopped worker is forgotten (its
// sessions ended on the worker, which said so itself).
func (g *Gateway) noteStatus(st worker.Status) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if st.Stopped {
		delete(g.workers, st.WorkerID)
		return
	}
	g.workers[st.WorkerID] = &workerState{st: st, seen: time.Now()}
}

// alive says whether the worker was heard from within workerAlive.
func (w *workerState) alive() bool { return time.Since(w.seen) <= workerAlive }

// livePool counts the live workers and their free places.
func (g *Gateway) livePool() (workers, free int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range g.workers {
		if w.alive() {
			workers++
			free += w.st.Free
		}
	}
	return workers, free
}

// liveWorkers counts the workers heard from within workerAlive.
func (g *Gateway) liveWorkers() int { n, _ := g.livePool(); return n }

// freePlaces sums the free places of the live workers.
func (g *Gateway) freePlaces() int { _, n := g.livePool(); return n }

// candidates are the live workers with a free place, best first, leaving
// out those in skip.
func (g *Gateway) candidates(skip map[string]bool) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ws []*workerState
	for id, w := range g.workers {
		if !skip[id] && w.st.Free > 0 && !w.st.Draining && w.alive() {
			ws = append(ws, w)
		}
	}
	rand.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] }) // equal workers share the load
	slices.SortStableFunc(ws, func(a, b *workerState) int {
		if a.st.Free != b.st.Free {
			return b.st.Free - a.st.Free
		}
		if (a.st.Warm > 0) != (b.st.Warm > 0) {
			if a.st.Warm > 0 {
				return -1
			}
			return 1
		}
		switch {
		case a.st.MemAvailable > b.st.MemAvailable:
			return -1
		case a.st.MemAvailable < b.st.MemAvailable:
			return 1
		}
		return 0
	})
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.st.WorkerID
	}
	return out
}

// knowsWorkers reports whether any worker's status has arrived yet.
func (g *Gateway) knowsWorkers() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.workers) > 0
}

// took notes a session placed on a worker (or a refusal, full) until its
// next status says better, so that creations in quick succession spread.
func (g *Gateway) took(id string, full bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if w := g.workers[id]; w != nil {
		if full {
			w.st.Free = 0
		} else {
			w.st.Free = max(0, w.st.Free-1)
			w.st.Sessions++
			w.st.Warm = max(0, w.st.Warm-1)
		}
	}
}

// leaseOutcome sorts a worker's answer to a lease request.
type leaseOutcome int

const (
	leased      leaseOutcome = iota
	leaseFull                // refused for capacity, or nobody answered: try another worker
	leaseFailed              // the worker could not start a browser: try another worker
)

var errNoCapacity = errorf(http.StatusServiceUnavailable, "no_capacity",
	"no browser is free right now; try again in a minute")

// lease asks a worker to host the session and returns its id. It places
// the session by the workers' status; before any status has arrived (a
// gateway that just started) it asks the workers' queue group instead.
func (g *Gateway) lease(ctx context.Context, s tenant.Session) (string, error) {
	co, err := g.store.GetCompany(ctx, s.Company)
	if err != nil {
		return "", err
	}
	req, _ := json.Marshal(worker.LeaseRequest{
		Company: s.Company, SessionID: s.ID, StartURL: s.StartURL, JoinBy: s.PINExpiresAt, MustAdmit: s.MustAdmit,
		IdleTimeout: co.IdleTimeout, MaxDuration: co.MaxSessionLength,
		Mask: maskPolicy(co.Policy), Block: blockPolicy(co.Policy), Control: controlMode(co.Policy),
		URLs: urlPolicy(co.Policy), AgentClipboard: co.Policy.AgentClipboard,
		Screenshare: screenshareMode(co.Policy), Downloads: co.Policy.Downloads,
	})
	ctx, cancel := context.WithTimeout(ctx, g.cfg.LeaseTimeout)
	defer cancel()
	queueUntil := time.Now().Add(g.cfg.QueueWait)
	failed := map[string]bool{}
	for {
		ids := g.candidates(failed)
		if len(ids) == 0 && !g.knowsWorkers() {
			ids = []string{""} // the queue group
		}
		for _, id := range ids {
			subject := worker.SubjectLease
			if id != "" {
				subject = worker.LeaseSubject(id)
			}
			workerID, out, err := g.leaseFrom(ctx, subject, req)
			switch {
			case err != nil:
				return "", err
			case out == leased:
				g.took(workerID, false)
				return workerID, nil
			case out == leaseFailed:
				failed[id] = true
			default:
				g.took(id, true)
			}
		}
		if time.Now().After(queueUntil) {
			return "", errNoCapacity
		}
		select {
		case <-ctx.Done():
			return "", errNoCapacity
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// leaseFrom sends the lease request on subject. Errors are final for the
// request; an outcome other than leased means another worker may do.
func (g *Gateway) leaseFrom(ctx context.Context, subject string, req []byte) (string, leaseOutcome, error) {
	msg, err := g.nc.RequestWithContext(ctx, subject, req)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return "", leaseFull, nil
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return "", 0, errNoCapacity
	case err != nil:
		return "", 0, err
	}
	var rep worker.LeaseReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return "", 0, err
	}
	switch rep.Error {
	case "":
		return rep.WorkerID, leased, nil
	case "no_capacity":
		return "", leaseFull, nil
	case "browser_failed":
		g.log.Warn("a worker could not start a browser", zap.String("subject", subject), zap.String("message", rep.Message))
		return "", leaseFailed, nil
	case "url_not_allowed":
		return "", 0, errorf(http.StatusForbidden, "url_not_allowed", "the hosted browser may not open this start page (a loopback, private or metadata address)")
	default:
		return "", 0, errors.New("worker refused the session: " + rep.Message)
	}
}

// watchWorkers notices lost workers until ctx ends. Once, when every live
// worker has had time to be heard, it also ends the sessions of workers
// that were lost before this gateway started.
func (g *Gateway) watchWorkers(ctx context.Context) {
	started := time.Now()
	reconciled := false
	tick := time.NewTicker(worker.StatusInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		lost := g.expireWorkers()
		if len(lost) > 0 {
			// The records first: a viewer told the session ended finds it
			// ended if it comes back.
			g.endSessionsOf(ctx, func(id string) bool { return lost[id] })
			for id := range lost {
				g.log.Warn("worker lost: no heartbeat", zap.String("worker_id", id), zap.Duration("for", workerAlive))
				for _, v := range g.bridges.of(id) {
					if err := g.relay.End(v, worker.ReasonWorkerLost); err != nil {
						g.log.Warn("tell a viewer its worker was lost", zap.String("viewer_id", v.ID), zap.Error(err))
					}
				}
			}
		}
		if !reconciled && time.Since(started) > workerAlive+worker.StatusInterval {
			reconciled = true
			g.endSessionsOf(ctx, func(id string) bool { return !g.workerAlive(id) })
		}
	}
}

// expireWorkers forgets the workers not heard from within workerAlive and
// returns them.
func (g *Gateway) expireWorkers() map[string]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	lost := map[string]bool{}
	for id, w := range g.workers {
		if !w.alive() {
			delete(g.workers, id)
			lost[id] = true
		}
	}
	return lost
}

func (g *Gateway) workerAlive(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.workers[id]
	return w != nil && w.alive()
}

// endSessionsOf ends the live sessions hosted by the workers lost says are
// gone. Every gateway does it; the record ends once (endAndRecord).
func (g *Gateway) endSessionsOf(ctx context.Context, lost func(string) bool) {
	list, err := g.store.LiveSessionsOn(ctx, lost)
	if err != nil {
		g.log.Warn("list the sessions of lost workers", zap.Error(err))
		return
	}
	for _, s := range list {
		if _, err := g.endAndRecord(ctx, s.Company, s.ID, worker.ReasonWorkerLost, audit.ActorSystem); err != nil {
			g.log.Warn("end a lost worker's session", zap.String("session_id", s.ID), zap.Error(err))
			continue
		}
		g.log.Warn("session ended: its worker was lost", zap.String("session_id", s.ID), zap.String("worker_id", s.WorkerID))
	}
}

// bridgeSet holds the viewers this gateway bridges, by the worker that
// hosts their session.
type bridgeSet struct {
	mu sync.Mutex
	by map[string]map[*signaling.Viewer]struct{}
}

// add registers a viewer of a session on workerID; the returned func
// removes it.
func (b *bridgeSet) add(workerID string, v signaling.Viewer) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.by == nil {
		b.by = map[string]map[*signaling.Viewer]struct{}{}
	}
	if b.by[workerID] == nil {
		b.by[workerID] = map[*signaling.Viewer]struct{}{}
	}
	key := &v
	b.by[workerID][key] = struct{}{}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.by[workerID], key)
		if len(b.by[workerID]) == 0 {
			delete(b.by, workerID)
		}
	}
}

// of returns the viewers of workerID's sessions.
func (b *bridgeSet) of(workerID string) []signaling.Viewer {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []signaling.Viewer
	for v := range b.by[workerID] {
		out = append(out, *v)
	}
	return out
}
