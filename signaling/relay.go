package signaling

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// Errors Bridge returns that callers act on.
var (
	// ErrSessionUnavailable means no worker hosts the session (nobody
	// answered the join). The viewer was told "session_unavailable".
	ErrSessionUnavailable = errors.New("signaling: session unavailable")
	// ErrJoinRefused means the worker refused the viewer; the viewer got
	// the worker's error message.
	ErrJoinRefused = errors.New("signaling: join refused")
	// ErrTooManyBadMessages means the viewer sent more than MaxBadMessages
	// invalid or rate-limited messages; close its socket.
	ErrTooManyBadMessages = errors.New("signaling: too many bad messages")
)

// Limits of one bridged viewer.
const (
	MaxBadMessages = 8  // invalid or over-rate messages before Bridge gives up
	upRate         = 20 // messages per second, sustained
	upBurst        = 60 // messages at once (an offer and a burst of candidates)
	joinTimeout    = 10 * time.Second
	downQueue      = 16
)

// errViewerLeft and errEnded stop a bridge without an error.
var (
	errViewerLeft = errors.New("viewer left")
	errEnded      = errors.New("session ended")
)

// viewerConn is the viewer's WebSocket as Bridge needs it. Read and Write
// must return when ctx ends; Bridge calls Write from one goroutine at a time
// and Read from another.
type viewerConn interface {
	Read(ctx context.Context) ([]byte, error)
	Write(ctx context.Context, data []byte) error
}

// Relay is the gateway side of signaling: it bridges viewers' WebSockets to
// the workers hosting their sessions. It is safe for concurrent use; it owns
// no goroutines of its own, and the NATS connection stays the caller's.
type Relay struct {
	nc  *nats.Conn
	log *zap.Logger
}

// NewRelay returns a Relay publishing on nc.
func NewRelay(nc *nats.Conn, log *zap.Logger) *Relay {
	return &Relay{nc: nc, log: log.Named("signaling")}
}

// Bridge relays one viewer until ctx ends, conn fails, the viewer says "bye"
// or an "ended" message went down to it. It first joins the viewer to the
// session's worker (a request on the viewer's up subject), then runs three
// goroutines, all returned before Bridge returns: viewer → up (each message
// checked with protocol.DecodeClientSignal and a rate limit; a bad one is
// answered with an error message, too many end the bridge), down → a queue,
// and the queue → viewer. On return it publishes "bye" up (unless the
// viewer's own bye went up, or the worker never took the join) and
// unsubscribes.
//
// Bridge returns nil when the viewer left or the session ended, ctx.Err()
// when ctx ended, ErrSessionUnavailable, ErrJoinRefused,
// ErrTooManyBadMessages, ErrBadToken or ErrBadName, or conn's or NATS's
// error, wrapped.
func (r *Relay) Bridge(ctx context.Context, conn viewerConn, v Viewer) error {
	if err := v.Validate(); err != nil {
		return err
	}
	log := r.log.With(zap.String("company_id", v.Company), zap.String("session_id", v.Session),
		zap.String("viewer_id", v.ID), zap.String("role", v.Role))
	up, down := upSubject(v.Company, v.Session, v.ID), downSubject(v.Company, v.Session, v.ID)

	// Subscribe before joining so that nothing the worker sends is missed.
	sub, err := r.nc.SubscribeSync(down)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", down, err)
	}
	defer func() {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			log.Warn("unsubscribe viewer", zap.Error(err))
		}
	}()

	if mayHold, err := r.join(ctx, conn, v, log); err != nil || !mayHold {
		if mayHold {
			r.bye(up, log)
		}
		return err
	}
	log.Info("viewer bridged")

	b := &bridge{conn: conn, nc: r.nc, sub: sub, up: up, log: log, out: make(chan outMsg, downQueue)}
	err = b.run(ctx)
	if !b.byeSent {
		r.bye(up, log)
	}
	switch {
	case errors.Is(err, errViewerLeft), errors.Is(err, errEnded):
		log.Info("viewer unbridged", zap.NamedError("reason", err))
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		log.Info("viewer unbridged", zap.Error(err))
		return err
	}
}

// End sends v an "ended" message with reason down its subject, as the
// session's worker would: the bridge that carries v (on any gateway)
// writes it and stops. Gateways use it when the worker itself is gone.
func (r *Relay) End(v Viewer, reason string) error {
	if err := v.Validate(); err != nil {
		return err
	}
	return r.nc.Publish(downSubject(v.Company, v.Session, v.ID),
		protocol.Encode(protocol.Signal{Type: protocol.TypeEnded, Reason: reason}))
}

// bye tells the worker that the viewer left.
func (r *Relay) bye(up string, log *zap.Logger) {
	if err := r.nc.Publish(up, protocol.Encode(protocol.Signal{Type: protocol.TypeBye})); err != nil {
		log.Warn("publish bye", zap.Error(err))
	}
}

// join asks the session's worker to take the viewer. It reports whether the
// worker may hold the viewer (and so needs a bye later); it succeeded if
// that is true and the error nil. A refusal because the session ended is
// (false, nil).
func (r *Relay) join(ctx context.Context, conn viewerConn, v Viewer, log *zap.Logger) (bool, error) {
	jctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	reply, err := r.nc.RequestMsgWithContext(jctx, joinMsg(v))
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		tell(ctx, conn, log, errorSignal("session_unavailable", "The session is not available."))
		return false, ErrSessionUnavailable
	case err != nil && ctx.Err() != nil:
		return true, ctx.Err() // the worker may have taken the join: bye it
	case err != nil:
		tell(ctx, conn, log, errorSignal("session_unavailable", "The session is not available."))
		return true, fmt.Errorf("join session %s: %w: %w", v.Session, ErrSessionUnavailable, err)
	}
	code := reply.Header.Get(headerError)
	if code == "" {
		return true, nil
	}
	s, err := protocol.DecodeServerSignal(reply.Data)
	if err != nil || (s.Type != protocol.TypeError && s.Type != protocol.TypeEnded) {
		s = errorSignal(code, "You cannot join this session.")
	}
	tell(ctx, conn, log, s)
	if s.Type == protocol.TypeEnded {
		return false, nil
	}
	return false, fmt.Errorf("%w: %s", ErrJoinRefused, code)
}

// tell writes one message to the viewer, outside the bridge's goroutines.
func tell(ctx context.Context, conn viewerConn, log *zap.Logger, s protocol.Signal) {
	if err := conn.Write(ctx, protocol.Encode(s)); err != nil {
		log.Debug("write to viewer", zap.Error(err))
	}
}

// outMsg is a message for the viewer; after writing it the writer stops
// with stop, if set.
type outMsg struct {
	data []byte
	stop error
}

// bridge is one running Bridge.
type bridge struct {
	conn viewerConn
	nc   *nats.Conn
	sub  *nats.Subscription
	up   string
	log  *zap.Logger
	out  chan outMsg // to the writer

	byeSent bool // set by the reader; read after run returns
}

func (b *bridge) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return b.readViewer(ctx) })
	g.Go(func() error { return b.pumpDown(ctx) })
	g.Go(func() error { return b.writeViewer(ctx) })
	return g.Wait()
}

// readViewer publishes the viewer's valid messages up.
func (b *bridge) readViewer(ctx context.Context) error {
	lim := rate.NewLimiter(upRate, upBurst)
	bad := 0
	for {
		data, err := b.conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("read viewer: %w", err)
		}
		s, err := protocol.DecodeClientSignal(data)
		reject := ""
		switch {
		case err != nil:
			reject = "bad_message"
		case !lim.Allow():
			reject = "rate_limited"
		}
		if reject != "" {
			bad++
			msg := outMsg{data: protocol.Encode(errorSignal(reject, "The message was refused."))}
			if bad > MaxBadMessages {
				msg = outMsg{
					data: protocol.Encode(errorSignal("too_many_bad_messages", "Too many refused messages.")),
					stop: ErrTooManyBadMessages,
				}
			}
			if ce := b.log.Check(zap.DebugLevel, "refused viewer message"); ce != nil {
				ce.Write(zap.String("reason", reject), zap.Int("bad", bad))
			}
			if err := b.send(ctx, msg); err != nil || msg.stop != nil {
				return err
			}
			continue
		}
		// Re-encode the checked message rather than forwarding the bytes.
		if err := b.nc.Publish(b.up, protocol.Encode(s)); err != nil {
			return fmt.Errorf("publish %s: %w", b.up, err)
		}
		if s.Type == protocol.TypeBye {
			b.byeSent = true
			return errViewerLeft
		}
	}
}

// pumpDown queues the worker's messages for the viewer, until "ended".
func (b *bridge) pumpDown(ctx context.Context) error {
	for {
		m, err := b.sub.NextMsgWithContext(ctx)
		if err != nil {
			return fmt.Errorf("receive from worker: %w", err)
		}
		s, err := protocol.DecodeServerSignal(m.Data)
		if err != nil {
			b.log.Warn("dropped bad message from worker", zap.Error(err))
			continue
		}
		msg := outMsg{data: m.Data}
		if s.Type == protocol.TypeEnded {
			msg.stop = errEnded
		}
		if err := b.send(ctx, msg); err != nil || msg.stop != nil {
			return err
		}
	}
}

func (b *bridge) send(ctx context.Context, m outMsg) error {
	select {
	case b.out <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeViewer is the only writer of the viewer's connection.
func (b *bridge) writeViewer(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-b.out:
			if err := b.conn.Write(ctx, m.data); err != nil {
				return fmt.Errorf("write viewer: %w", err)
			}
			if m.stop != nil {
				return m.stop
			}
		}
	}
}
