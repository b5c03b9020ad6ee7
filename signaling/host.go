package signaling

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// Errors of Host's methods.
var (
	// ErrUnknownViewer is returned by Host.Send for a viewer that has not
	// joined or has left.
	ErrUnknownViewer = errors.New("signaling: unknown viewer")
	// ErrClosed is returned by a closed Host.
	ErrClosed = errors.New("signaling: host closed")
)

// Limits of one hosted viewer.
const (
	maxQueue       = 64 // up messages waiting for the viewer's goroutine
	maxHeld        = 64 // our candidates held while an offer is answered
	hostJoinTime   = 10 * time.Second
	hostAnswerTime = 15 * time.Second
)

// Peers is the worker's side of its viewers, as Host drives it. The calls
// for one viewer are made in the order its messages came (Join, then
// Offer, Candidate...) from that viewer's goroutine; calls for different
// viewers run concurrently. Leave is called exactly once for every viewer
// whose Join succeeded: on its bye, or when the Host closes.
type Peers interface {
	// Join admits a viewer; an error refuses it.
	Join(ctx context.Context, v Viewer) error
	// Offer answers the viewer's SDP offer.
	Offer(ctx context.Context, v Viewer, o Offer) (answer string, err error)
	// Candidate applies one of the viewer's ICE candidates.
	Candidate(v Viewer, c protocol.Candidate) error
	// Leave releases the viewer.
	Leave(v Viewer)
}

// Offer is a viewer's SDP offer as Peers.Offer gets it.
type Offer struct {
	SDP string
	// Restart says the offer restarts ICE on the viewer's existing
	// connection: it renegotiates the viewer's peer, never replaces it.
	Restart bool
}

// Host is the worker side of one session's signaling: it receives its
// viewers' messages from NATS and applies them to Peers, and publishes the
// worker's messages to them. NewHost subscribes; each joined viewer gets a
// goroutine that Close stops and waits for. Methods are safe for concurrent
// use.
type Host struct {
	nc               *nats.Conn
	company, session string
	peers            Peers
	log              *zap.Logger
	sub              *nats.Subscription

	mu        sync.Mutex
	viewers   map[string]*hostViewer // guarded by mu
	ended     bool                   // guarded by mu
	endReason string                 // guarded by mu
	closed    bool                   // guarded by mu

	wg        sync.WaitGroup // viewer goroutines
	closeOnce sync.Once
	closeErr  error
}

// hostViewer is one viewer's state on the Host. Fields without a note are
// set before its goroutine starts and never change.
type hostViewer struct {
	id     string
	wake   chan struct{}      // cap 1: the queue has items
	cancel context.CancelFunc // ends the viewer's goroutine

	queue     []queued          // guarded by Host.mu
	viewer    Viewer            // guarded by Host.mu; set by a successful join
	joined    bool              // guarded by Host.mu
	answering bool              // guarded by Host.mu; an offer is being answered
	held      []protocol.Signal // guarded by Host.mu; our candidates waiting for the answer
}

// queued is one up message waiting for its viewer's goroutine.
type queued struct {
	msg   upMessage
	reply string // the join request's reply subject
}

// NewHost subscribes to the up subjects of every viewer of the session
// (tandem.sig.<company>.<session>.*.up) and applies their messages to peers.
// The caller must Close the Host; the NATS connection stays the caller's.
func NewHost(nc *nats.Conn, company, session string, peers Peers, log *zap.Logger) (*Host, error) {
	if !ValidToken(company) || !ValidToken(session) {
		return nil, fmt.Errorf("%w: company %q, session %q", ErrBadToken, company, session)
	}
	h := &Host{
		nc: nc, company: company, session: session, peers: peers,
		log: log.Named("signaling").With(zap.String("company_id", company),
			zap.String("session_id", session)),
		viewers: make(map[string]*hostViewer),
	}
	subject := upSubject(company, session, "*")
	sub, err := nc.Subscribe(subject, h.onMsg)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	h.sub = sub
	// Make sure the server has the subscription before a gateway can join.
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	h.log.Info("hosting signaling")
	return h, nil
}

// onMsg runs on the subscription's goroutine: it decodes a message and
// queues it for its viewer's goroutine, never waiting for one.
func (h *Host) onMsg(m *nats.Msg) {
	id, ok := parseUpSubject(m.Subject, h.company, h.session)
	if !ok {
		h.log.Warn("message on a bad subject", zap.String("subject", m.Subject))
		return
	}
	up, err := decodeUp(m.Data, m.Header)
	if err != nil {
		h.log.Warn("bad message from gateway", zap.String("viewer_id", id), zap.Error(err))
		if isJoin(m.Data) {
			h.respond(m.Reply, "bad_join", errorSignal("bad_join", "The join request was invalid."))
		}
		return
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	hv := h.viewers[id]
	switch {
	case up.join && hv != nil:
		h.mu.Unlock()
		h.respond(m.Reply, "already_joined", errorSignal("already_joined", "This viewer has joined already."))
		return
	case up.join && h.ended:
		reason := h.endReason
		h.mu.Unlock()
		h.respond(m.Reply, protocol.TypeEnded, protocol.Signal{Type: protocol.TypeEnded, Reason: reason})
		return
	case up.join:
		ctx, cancel := context.WithCancel(context.Background())
		hv = &hostViewer{id: id, wake: make(chan struct{}, 1), cancel: cancel}
		h.viewers[id] = hv
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			defer cancel()
			h.serve(ctx, hv)
		}()
	case hv == nil:
		h.mu.Unlock()
		if ce := h.log.Check(zap.DebugLevel, "message from a viewer that has not joined"); ce != nil {
			ce.Write(zap.String("viewer_id", id), zap.String("type", up.sig.Type))
		}
		return
	case len(hv.queue) >= maxQueue && up.sig.Type != protocol.TypeBye:
		h.mu.Unlock()
		h.log.Warn("viewer queue full, message dropped", zap.String("viewer_id", id))
		return
	}
	hv.queue = append(hv.queue, queued{msg: up, reply: m.Reply})
	h.mu.Unlock()
	select {
	case hv.wake <- struct{}{}:
	default:
	}
}

// respond answers a join request; code "" accepts it.
func (h *Host) respond(reply, code string, s protocol.Signal) {
	if reply == "" {
		return
	}
	m := nats.NewMsg(reply)
	if code != "" {
		m.Header.Set(headerError, code)
		m.Data = protocol.Encode(s)
	}
	if err := h.nc.PublishMsg(m); err != nil {
		h.log.Warn("answer join", zap.Error(err))
	}
}

// serve handles one viewer's messages in order until it leaves or ctx ends
// (Close). It calls Leave for a joined viewer on the way out.
func (h *Host) serve(ctx context.Context, hv *hostViewer) {
	for {
		select {
		case <-ctx.Done():
			h.leave(hv)
			return
		case <-hv.wake:
		}
		h.mu.Lock()
		items := hv.queue
		hv.queue = nil
		h.mu.Unlock()
		for _, it := range items {
			if ctx.Err() != nil {
				break
			}
			if !h.handle(ctx, hv, it) {
				return
			}
		}
	}
}

// handle applies one message; false means the viewer is gone.
func (h *Host) handle(ctx context.Context, hv *hostViewer, it queued) bool {
	if it.msg.join {
		return h.join(ctx, hv, it)
	}
	h.mu.Lock()
	v := hv.viewer
	h.mu.Unlock()
	log := h.log.With(zap.String("viewer_id", hv.id))
	s := it.msg.sig
	switch s.Type {
	case protocol.TypeOffer:
		h.mu.Lock()
		hv.answering = true
		h.mu.Unlock()
		octx, cancel := context.WithTimeout(ctx, hostAnswerTime)
		answer, err := h.peers.Offer(octx, v, Offer{SDP: s.SDP, Restart: s.Restart})
		cancel()
		if err != nil {
			log.Warn("negotiation failed", zap.Bool("restart", s.Restart), zap.Error(err))
			h.mu.Lock()
			hv.answering, hv.held = false, nil
			h.mu.Unlock()
			if s.Restart {
				// The viewer falls back to a new connection (docs/protocol.md).
				h.publish(hv.id, errorSignal("restart_failed", "The connection could not be restarted."))
			} else {
				h.publish(hv.id, errorSignal("negotiation_failed", "The connection could not be set up."))
			}
			return true
		}
		h.publish(hv.id, protocol.Signal{Type: protocol.TypeAnswer, SDP: answer})
		h.mu.Lock()
		held := hv.held
		hv.answering, hv.held = false, nil
		h.mu.Unlock()
		for _, c := range held {
			h.publish(hv.id, c)
		}
	case protocol.TypeCandidate:
		if err := h.peers.Candidate(v, *s.Candidate); err != nil {
			if ce := log.Check(zap.DebugLevel, "viewer candidate refused"); ce != nil {
				ce.Write(zap.Error(err))
			}
		}
	case protocol.TypeBye:
		h.leave(hv)
		return false
	}
	return true
}

// join admits a viewer through Peers.Join and answers its join request.
func (h *Host) join(ctx context.Context, hv *hostViewer, it queued) bool {
	v := Viewer{Company: h.company, Session: h.session, ID: hv.id, Role: it.msg.role, Name: it.msg.name}
	jctx, cancel := context.WithTimeout(ctx, hostJoinTime)
	err := h.peers.Join(jctx, v)
	cancel()
	log := h.log.With(zap.String("viewer_id", v.ID), zap.String("role", v.Role))
	if err != nil {
		log.Info("viewer refused", zap.Error(err))
		h.forget(hv)
		h.respond(it.reply, "join_refused", errorSignal("join_refused", "You cannot join this session."))
		return false
	}
	h.mu.Lock()
	ended, reason := h.ended, h.endReason
	if !ended {
		hv.viewer, hv.joined = v, true
	}
	h.mu.Unlock()
	if ended { // End ran while Join did, and did not see this viewer
		h.peers.Leave(v)
		h.forget(hv)
		h.respond(it.reply, protocol.TypeEnded, protocol.Signal{Type: protocol.TypeEnded, Reason: reason})
		return false
	}
	log.Info("viewer joined")
	h.respond(it.reply, "", protocol.Signal{})
	return true
}

// leave calls Peers.Leave if the viewer had joined, then forgets it. The
// viewer id stays taken until Leave returned, so that a join of the same id
// cannot overtake it.
func (h *Host) leave(hv *hostViewer) {
	h.mu.Lock()
	joined, v := hv.joined, hv.viewer
	hv.joined = false
	h.mu.Unlock()
	if joined {
		h.peers.Leave(v)
		h.log.Info("viewer left", zap.String("viewer_id", v.ID))
	}
	h.forget(hv)
}

func (h *Host) forget(hv *hostViewer) {
	h.mu.Lock()
	if h.viewers[hv.id] == hv {
		delete(h.viewers, hv.id)
	}
	h.mu.Unlock()
}

// Send publishes s to one joined viewer. Our candidates sent while the
// viewer's offer is being answered are held and follow the answer, because
// a browser refuses candidates before it has the answer.
func (h *Host) Send(viewerID string, s protocol.Signal) error {
	if !ValidToken(viewerID) {
		return fmt.Errorf("%w: viewer id %q", ErrBadToken, viewerID)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	hv := h.viewers[viewerID]
	if hv == nil {
		h.mu.Unlock()
		return fmt.Errorf("send to viewer %s: %w", viewerID, ErrUnknownViewer)
	}
	if s.Type == protocol.TypeCandidate && hv.answering {
		if len(hv.held) < maxHeld {
			hv.held = append(hv.held, s)
		}
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	return h.publish(viewerID, s)
}

func (h *Host) publish(viewerID string, s protocol.Signal) error {
	subject := downSubject(h.company, h.session, viewerID)
	if err := h.nc.Publish(subject, protocol.Encode(s)); err != nil {
		h.log.Warn("publish to viewer", zap.String("viewer_id", viewerID), zap.Error(err))
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

// End sends {"type":"ended","reason":reason} to every joined viewer, whose
// bridges then close, and answers later joins the same way. Viewers stay
// joined until their bye (or Close).
func (h *Host) End(reason string) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	h.ended, h.endReason = true, reason
	var ids []string
	for id, hv := range h.viewers {
		if hv.joined {
			ids = append(ids, id)
		}
	}
	h.mu.Unlock()
	h.log.Info("session ended", zap.String("reason", reason), zap.Int("viewers", len(ids)))
	var errs []error
	for _, id := range ids {
		if err := h.publish(id, protocol.Signal{Type: protocol.TypeEnded, Reason: reason}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close unsubscribes, stops every viewer's goroutine (calling Leave for the
// joined ones) and waits for them. It is idempotent.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		hvs := make([]*hostViewer, 0, len(h.viewers))
		for _, hv := range h.viewers {
			hvs = append(hvs, hv)
		}
		h.mu.Unlock()
		if err := h.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			h.closeErr = fmt.Errorf("unsubscribe session %s: %w", h.session, err)
		}
		for _, hv := range hvs {
			hv.cancel()
		}
		h.wg.Wait()
		h.log.Info("signaling closed")
	})
	return h.closeErr
}
