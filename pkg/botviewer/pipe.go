package botviewer

import (
	"context"
	"errors"
	"sync"

	"github.com/coder/websocket"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// ErrClosed is returned by a closed pipe.
var ErrClosed = errors.New("botviewer: pipe closed")

// Pipe is an in-memory stand-in for a viewer's WebSocket: the Conn end goes
// to signaling.Relay.Bridge (raw JSON messages, as a gateway reads them), the
// Signaler end to Dial.
type Pipe struct {
	up, down chan []byte
	done     chan struct{}
	once     sync.Once
}

// NewPipe returns a connected pipe.
func NewPipe() *Pipe {
	return &Pipe{up: make(chan []byte, 64), down: make(chan []byte, 64), done: make(chan struct{})}
}

// Close ends both directions.
func (p *Pipe) Close() { p.once.Do(func() { close(p.done) }) }

// Conn is the gateway's end.
func (p *Pipe) Conn() PipeConn { return PipeConn{p} }

// Signaler is the viewer's end.
func (p *Pipe) Signaler() Signaler { return pipeSignaler{p} }

// PipeConn is the gateway's end of a Pipe.
type PipeConn struct{ p *Pipe }

// Read returns the next message from the viewer.
func (c PipeConn) Read(ctx context.Context) ([]byte, error) { return recv(ctx, c.p, c.p.up) }

// Write sends a message to the viewer.
func (c PipeConn) Write(ctx context.Context, b []byte) error { return send(ctx, c.p, c.p.down, b) }

type pipeSignaler struct{ p *Pipe }

func (s pipeSignaler) Send(ctx context.Context, sig protocol.Signal) error {
	return send(ctx, s.p, s.p.up, protocol.Encode(sig))
}

func (s pipeSignaler) Recv(ctx context.Context) (protocol.Signal, error) {
	b, err := recv(ctx, s.p, s.p.down)
	if err != nil {
		return protocol.Signal{}, err
	}
	return protocol.DecodeServerSignal(b)
}

func send(ctx context.Context, p *Pipe, ch chan []byte, b []byte) error {
	select {
	case ch <- b:
		return nil
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func recv(ctx context.Context, p *Pipe, ch chan []byte) ([]byte, error) {
	select {
	case b := <-ch:
		return b, nil
	case <-p.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// WebSocket is a Signaler over a viewer's WebSocket to a gateway. The first
// message, "hello", is read by Hello.
type WebSocket struct{ C *websocket.Conn }

// Send writes one message.
func (w WebSocket) Send(ctx context.Context, s protocol.Signal) error {
	return w.C.Write(ctx, websocket.MessageText, protocol.Encode(s))
}

// Recv reads one message.
func (w WebSocket) Recv(ctx context.Context) (protocol.Signal, error) {
	_, b, err := w.C.Read(ctx)
	if err != nil {
		return protocol.Signal{}, err
	}
	return protocol.DecodeServerSignal(b)
}
