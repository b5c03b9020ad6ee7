package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/media"
)

// What the benchmarks compare Tandem with, measured in this test process
// on a Chromium of its own that browserpool starts exactly as Tandem's
// worker does (same binary, flags, viewport, screencast settings: JPEG
// quality 60, maxFramesInFlight 1, ack on receipt), but with no Tandem
// around it:
//
//   - the floor: input dispatched with CDP straight to the tab, until the
//     first screencast frame that shows the change is read off CDP. Nothing
//     that streams a Chromium tab through the screencast can show a click
//     sooner.
//   - the baseline: what many hosted-browser live views do, every
//     screencast JPEG relayed as it comes over a WebSocket to a viewer that
//     decodes it, input coming back over the same socket and dispatched
//     with CDP. The relay is the minimal one: binary messages (no base64 in
//     JSON), no pacing, the latest frame sent to a viewer that connects. It
//     gets Tandem's screencast tuning, so it is a generous baseline.

// directTab is one tab on a Chromium with no Tandem: its lease and the
// pictures its screencast shows, decoded as they arrive. Close ends both.
type directTab struct {
	pool  *browserpool.Pool
	lease *browserpool.Lease
	wg    sync.WaitGroup
	once  sync.Once

	// relay, when set, gets every frame's JPEG before it is decoded here.
	relay func(jpeg []byte)

	colours colourWatch // when frames were read off CDP
}

// colourWatch follows the colour at the click point of the newest picture
// a viewer (or the test's own tab) decoded.
type colourWatch struct {
	mu      sync.Mutex
	colour  string        // guarded by mu: the newest picture's colour at the click point
	at      time.Time     // guarded by mu: when that picture arrived
	n       int           // guarded by mu: pictures so far
	changed chan struct{} // guarded by mu: closed and replaced on each picture
}

func newColourWatch() colourWatch { return colourWatch{changed: make(chan struct{})} }

// saw records a picture of that colour, arrived at at.
func (w *colourWatch) saw(colour string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.colour, w.at = colour, at
	w.n++
	close(w.changed)
	w.changed = make(chan struct{})
}

// wait waits for a picture of that colour and returns when it arrived;
// gone ends the wait with errGone.
func (w *colourWatch) wait(ctx context.Context, want string, gone <-chan struct{}, errGone error) (time.Time, error) {
	for {
		w.mu.Lock()
		colour, at, ch := w.colour, w.at, w.changed
		w.mu.Unlock()
		if colour == want {
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-gone:
			return time.Time{}, errGone
		case <-ch:
		}
	}
}

// pictures is how many pictures were seen so far.
func (w *colourWatch) pictures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// openDirectTab starts a Chromium with browserpool (no warm browser) on
// url. relay, when not nil, is called with each frame's JPEG on the frame
// goroutine.
func openDirectTab(b *testing.B, ctx context.Context, url string, relay func([]byte)) *directTab {
	b.Helper()
	// Full-size captures always: the floor and the baseline are Chromium's
	// own screencast as the approach they stand for uses it, without
	// Tandem's smaller captures while the page moves.
	pool, err := browserpool.New(browserpool.Config{Warm: -1, StartTimeout: time.Minute, MotionFPS: -1}, zap.NewNop())
	if err != nil {
		b.Fatalf("browser pool: %v", err)
	}
	lease, err := pool.Lease(ctx, browserpool.LeaseOptions{StartURL: url})
	if err != nil {
		_ = pool.Close()
		b.Fatalf("lease: %v", err)
	}
	d := &directTab{pool: pool, lease: lease, relay: relay, colours: newColourWatch()}
	dec, err := media.NewDecoder()
	if err != nil {
		b.Fatal(err)
	}
	d.wg.Go(func() {
		defer dec.Close() //nolint:errcheck
		for {
			select {
			case c := <-lease.Frames():
				if d.relay != nil {
					d.relay(c.JPEG)
				}
				f, err := dec.Decode(c.JPEG, nil)
				if err != nil {
					continue
				}
				d.colours.saw(imageColour(&f.Image), c.Received)
				f.Release()
			case <-lease.Done():
				return
			}
		}
	})
	b.Cleanup(func() { d.Close() })
	return d
}

// Close closes the browser and waits for the frame goroutine. It may be
// called again.
func (d *directTab) Close() {
	d.once.Do(func() {
		_ = d.lease.Close()
		d.wg.Wait()
		_ = d.pool.Close()
	})
}

// click dispatches a left click at (x, y) as the worker does: a move, a
// press and a release.
func (d *directTab) click(ctx context.Context, x, y float64) error {
	for _, ev := range clickEvents(x, y) {
		if err := d.lease.Dispatch(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// waitColour waits for a frame of that colour and returns when it was
// read off CDP.
func (d *directTab) waitColour(ctx context.Context, want string) (time.Time, error) {
	return d.colours.wait(ctx, want, nil, nil)
}

func clickEvents(x, y float64) []input.Event {
	return []input.Event{
		{Kind: input.KindMouse, Action: input.ActionMove, X: x, Y: y},
		{Kind: input.KindMouse, Action: input.ActionDown, X: x, Y: y, Button: input.ButtonLeft, Buttons: 1, Clicks: 1},
		{Kind: input.KindMouse, Action: input.ActionUp, X: x, Y: y, Button: input.ButtonLeft, Clicks: 1},
	}
}

// imageColour is the colour at 60 % of a picture's width and height,
// where the benchmarks click.
func imageColour(img *media.Image) string {
	return colourAt(img, img.Width*6/10, img.Height*6/10)
}

// colourAt names the colour of img at (x, y): "red", "blue" or "other".
func colourAt(img *media.Image, x, y int) string {
	yy, u, v := botviewer.Pixel(img, x, y)
	switch {
	case botviewer.IsRed(yy, u, v):
		return "red"
	case botviewer.IsBlue(yy, u, v):
		return "blue"
	}
	return "other"
}

// relayMessage is what the baseline's viewer sends on its socket: an input
// event, or an address to load (Navigate on the tab, as an address bar).
type relayMessage struct {
	input.Event
	Navigate string `json:"navigate,omitempty"`
}

// baselineRelay is the baseline's server: a directTab whose frames go, as
// they come, to the WebSocket of the one viewer connected, and whose input
// comes from it. Close ends the server, the viewer's socket and the tab.
type baselineRelay struct {
	tab *directTab
	srv *httptest.Server

	mu   sync.Mutex
	conn *websocket.Conn // guarded by mu: the viewer's socket, nil before it connects
	last []byte          // guarded by mu: the newest frame, for a viewer that connects
}

func startBaselineRelay(b *testing.B, ctx context.Context, url string) *baselineRelay {
	b.Helper()
	r := &baselineRelay{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	b.Cleanup(r.srv.Close)
	r.tab = openDirectTab(b, ctx, url, r.send)
	return r
}

// send writes one frame to the viewer: on the tab's frame goroutine, so a
// viewer that reads slowly holds the frames back (browserpool then keeps
// only the newest), as a relay that writes as it gets does.
func (r *baselineRelay) send(jpeg []byte) {
	r.mu.Lock()
	r.last = jpeg
	c := r.conn
	r.mu.Unlock()
	if c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.Write(ctx, websocket.MessageBinary, jpeg)
		cancel()
	}
}

func (r *baselineRelay) serve(w http.ResponseWriter, req *http.Request) {
	c, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	defer c.CloseNow() //nolint:errcheck
	ctx := req.Context()
	r.mu.Lock()
	r.conn = c
	last := r.last
	r.mu.Unlock()
	if last != nil {
		_ = c.Write(ctx, websocket.MessageBinary, last)
	}
	defer func() {
		r.mu.Lock()
		r.conn = nil
		r.mu.Unlock()
	}()
	for {
		_, raw, err := c.Read(ctx)
		if err != nil {
			return
		}
		var m relayMessage
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		if m.Navigate != "" {
			_ = r.tab.lease.Navigate(ctx, m.Navigate)
			continue
		}
		_ = r.tab.lease.Dispatch(ctx, m.Event)
	}
}

// baselineViewer is the baseline's viewer: it reads the relay's JPEGs,
// counts their bytes and decodes each (libjpeg-turbo, as a browser would).
type baselineViewer struct {
	c     *websocket.Conn
	bytes atomic.Int64
	done  chan struct{}

	colours colourWatch // when pictures were decoded
}

func dialBaseline(b *testing.B, ctx context.Context, r *baselineRelay) *baselineViewer {
	b.Helper()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(r.srv.URL, "http"), nil)
	if err != nil {
		b.Fatalf("dial the baseline relay: %v", err)
	}
	c.SetReadLimit(16 << 20)
	v := &baselineViewer{c: c, done: make(chan struct{}), colours: newColourWatch()}
	dec, err := media.NewDecoder()
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		defer close(v.done)
		defer dec.Close() //nolint:errcheck
		for {
			_, jpeg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			v.bytes.Add(int64(len(jpeg)))
			f, err := dec.Decode(jpeg, nil)
			if err != nil {
				continue
			}
			v.colours.saw(imageColour(&f.Image), time.Now())
			f.Release()
		}
	}()
	b.Cleanup(func() {
		_ = c.CloseNow()
		<-v.done
	})
	return v
}

func (v *baselineViewer) send(ctx context.Context, m relayMessage) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return v.c.Write(ctx, websocket.MessageText, raw)
}

func (v *baselineViewer) click(ctx context.Context, x, y float64) error {
	for _, ev := range clickEvents(x, y) {
		if err := v.send(ctx, relayMessage{Event: ev}); err != nil {
			return err
		}
	}
	return nil
}

func (v *baselineViewer) waitColour(ctx context.Context, want string) (time.Time, error) {
	return v.colours.wait(ctx, want, v.done, errors.New("the baseline relay closed the socket"))
}

// pictures is how many pictures the viewer decoded so far.
func (v *baselineViewer) pictures() int { return v.colours.pictures() }

// warmupClicks are clicked, and not measured, before each series: the
// first clicks after a browser starts are slower (code not yet compiled,
// caches cold), and a session is not that young for long.
const warmupClicks = 3

// clickLatencies clicks n times at the benchmarks' click point through
// click, each time waiting with waitColour for the page's colour to turn,
// and returns how long each took (from before the click to when the
// picture that showed it arrived), after warmupClicks unmeasured. The page
// starts red.
func clickLatencies(b *testing.B, ctx context.Context, n int, click func(ctx context.Context, x, y float64) error,
	waitColour func(ctx context.Context, want string) (time.Time, error)) []time.Duration {
	b.Helper()
	if _, err := waitColour(ctx, "red"); err != nil {
		b.Fatalf("the page never showed red: %v", err)
	}
	colour := "red"
	var lat []time.Duration
	for i := range warmupClicks + n {
		want := map[string]string{"red": "blue", "blue": "red"}[colour]
		t0 := time.Now()
		if err := click(ctx, 768, 432); err != nil {
			b.Fatal(err)
		}
		at, err := waitColour(ctx, want)
		if err != nil {
			b.Fatal(err)
		}
		if i >= warmupClicks {
			lat = append(lat, at.Sub(t0))
		}
		colour = want
		time.Sleep(50 * time.Millisecond)
	}
	return lat
}
