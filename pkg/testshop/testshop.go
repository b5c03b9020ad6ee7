// Package testshop is the test shop of the blocking tests (issue 5,
// docs/blocking.md): a page whose every "Buy" is a [data-tandem-block]
// element, reachable by each path an agent could try, and a buy endpoint
// that records every purchase. The worker's tests drive it through Go
// viewers, cmd/tandem's through the real console and customer page.
//
// The page, in CSS px of a viewport of at least Width×Height:
//
//   - a blocked "Buy now" submit button (with a child span, a <label> and
//     accesskey "b") as the default button of a form with a text field;
//   - a field whose page script clicks the button on any key, and one that
//     buys a moment after any key (past the dispatch, for the request guard);
//   - a blocked button in an open shadow root, and in a same-origin and a
//     cross-origin iframe (another site: its own renderer process);
//   - "Add to wishlist": a pointer moving over it moves "Buy now" under the
//     pointer for 1.5 s (a layout shift between what a viewer saw and the
//     press);
//   - a purchase counter, which counts the buys the page made and reports
//     itself to /count every 200 ms (not a /buy request: the request guard
//     of a test does not hide it).
//
// Every purchase calls /buy?via=… (form, shadow, frame-<host>, later), which
// the Shop passes on to its Buys channel.
package testshop

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The smallest viewport that shows the whole shop.
const (
	Width  = 880
	Height = 500
)

// Point is a place on the page, in viewport CSS px (the page does not scroll).
type Point struct{ X, Y float64 }

// Where things are.
var (
	BuyCentre  = Point{140, 70}  // the Buy button's centre
	BuySpan    = Point{115, 72}  // its child span ("Buy now"), off the centre
	BuyEdge    = Point{42, 42}   // 2 px inside its top left corner
	BuyLabel   = Point{140, 140} // its <label>
	Field      = Point{380, 60}  // the text field of its form
	Evil       = Point{620, 60}  // the field that clicks Buy on any key
	Later      = Point{620, 140} // the field that buys 100 ms after any key
	Shadow     = Point{140, 260} // the Buy button in the shadow root
	Frame      = Point{330, 270} // the Buy button in the same-origin frame
	CrossFrame = Point{630, 270} // the Buy button in the cross-origin frame
	Wishlist   = Point{380, 430} // "Add to wishlist"; Buy moves under it
	Empty      = Point{860, 480} // nothing: a click here focuses the body
)

const page = `<!doctype html><html><head><title>Test shop</title><style>
body{margin:0;font:18px sans-serif;background:#fff}
.abs{position:absolute;margin:0;box-sizing:border-box}
#buy{left:40px;top:40px;width:200px;height:60px}
#buylabel{left:40px;top:120px;width:200px;height:40px;background:#eee}
#q{left:280px;top:40px;width:200px;height:40px}
#evil{left:520px;top:40px;width:200px;height:40px}
#later{left:520px;top:120px;width:200px;height:40px}
#host{left:40px;top:220px;width:200px;height:80px}
#fr{left:280px;top:220px;width:260px;height:140px;border:0}
#xfr{left:580px;top:220px;width:260px;height:140px;border:0}
#free{left:280px;top:400px;width:200px;height:60px}
#count{left:40px;top:400px;width:200px;height:60px}
</style></head><body>
<form id="f">
  <button id="buy" class="abs" data-tandem-block accesskey="b"><span id="buyspan">Buy now</span></button>
  <label id="buylabel" class="abs" for="buy">Buy (label)</label>
  <input id="q" class="abs" aria-label="quantity">
</form>
<input id="evil" class="abs" aria-label="search">
<input id="later" class="abs" aria-label="coupon">
<div id="host" class="abs"></div>
<iframe id="fr" class="abs" src="/shop-frame"></iframe>
<iframe id="xfr" class="abs" src="{{OTHER}}/shop-frame"></iframe>
<button id="free" class="abs">Add to wishlist</button>
<p id="count" class="abs">Purchases: <output>0</output></p>
<script>
let bought = 0;
const buy = (via) => { bought++; document.querySelector('#count output').textContent = bought; fetch('/buy?via=' + via); };
setInterval(() => fetch('/count?n=' + bought), 200);
document.getElementById('f').addEventListener('submit', (e) => { e.preventDefault(); buy('form'); });
document.getElementById('evil').addEventListener('keydown', () => document.getElementById('buy').click());
document.getElementById('later').addEventListener('keydown', () => setTimeout(() => buy('later'), 100));
const shadow = document.getElementById('host').attachShadow({ mode: 'open' });
shadow.innerHTML = '<button data-tandem-block style="width:200px;height:80px">Buy (shadow)</button>';
shadow.querySelector('button').addEventListener('click', () => buy('shadow'));
const b = document.getElementById('buy');
let shifted = false;
document.addEventListener('pointermove', (e) => {
  if (e.clientX < 280 || e.clientX > 480 || e.clientY < 400 || e.clientY > 460 || shifted) return;
  shifted = true;
  b.style.left = '280px'; b.style.top = '400px'; b.style.zIndex = '1';
  setTimeout(() => { b.style.left = ''; b.style.top = ''; b.style.zIndex = ''; shifted = false; }, 1500);
});
</script></body></html>`

// frame is what both frames show: a blocked button at 10,10.
const frame = `<!doctype html><html><body style="margin:0;background:#eef">
<button data-tandem-block style="position:absolute;left:10px;top:10px;width:220px;height:80px">Buy (frame)</button>
<script>document.querySelector('button').addEventListener('click', () => fetch('/buy?via=frame-' + location.hostname));</script>
</body></html>`

// Shop is a test shop's server side.
type Shop struct {
	URL   string      // the shop page, on 127.0.0.1 (Start)
	Buys  chan string // each purchase's "via"; dropped when full
	count atomic.Int64
}

// New returns a shop to serve with Routes.
func New() *Shop { return &Shop{Buys: make(chan string, 64)} }

// Routes adds the shop to mux at /shop, /shop-frame, /buy and /count. The
// cross-origin frame is the same server reached as localhost.
func (s *Shop) Routes(mux *http.ServeMux) {
	mux.HandleFunc("/shop", func(w http.ResponseWriter, r *http.Request) {
		other := "http://localhost:" + r.Host[strings.LastIndex(r.Host, ":")+1:]
		fmt.Fprint(w, strings.Replace(page, "{{OTHER}}", other, 1))
	})
	mux.HandleFunc("/shop-frame", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, frame) })
	mux.HandleFunc("/buy", func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.Buys <- r.URL.Query().Get("via"):
		default:
		}
	})
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		if n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64); err == nil {
			s.count.Store(n)
		}
	})
}

// Count is the page's purchase counter as it last reported it.
func (s *Shop) Count() int64 { return s.count.Load() }

// Start serves a shop until the test ends.
func Start(t testing.TB) *Shop {
	t.Helper()
	s := New()
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux) // on 127.0.0.1; the page reaches it as localhost for the cross-origin frame
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/shop"
	return s
}

// Collect gathers the purchases that arrive within d.
func (s *Shop) Collect(d time.Duration) []string {
	var out []string
	deadline := time.After(d)
	for {
		select {
		case b := <-s.Buys:
			out = append(out, b)
		case <-deadline:
			return out
		}
	}
}
