package gateway

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// limiter counts failures per key in a sliding window; past the budget it
// refuses until old failures age out. It keeps memory bounded by dropping
// the oldest keys.
type limiter struct {
	window  time.Duration
	budgets map[string]int // failures allowed per window, by kind; others get defaultBudget

	mu   sync.Mutex
	hits map[string][]time.Time // guarded by mu
}

const (
	limiterKeys   = 100_000
	defaultBudget = 20
)

// Failure budgets per 10 minutes. One client network (a /24 or /64) gets 20
// wrong PINs or passwords. A company's join page as a whole gets 300; past
// that, someone is guessing from many networks, and every network's budget
// drops to 3 until the window moves on: the guesser slows to a crawl, while
// a real customer, who types the PIN right within three tries, still gets
// in rather than being locked out.
const (
	companyJoinBudget = 300
	underAttackBudget = 3
)

func newLimiter() *limiter {
	return &limiter{
		window:  10 * time.Minute,
		budgets: map[string]int{"join-company": companyJoinBudget},
		hits:    make(map[string][]time.Time),
	}
}

// allowJoin says whether a client network may try a PIN on a company's join
// page now.
func (l *limiter) allowJoin(client, company string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	budget := defaultBudget
	if len(l.prune("join-company|"+company, now)) >= companyJoinBudget {
		budget = underAttackBudget
	}
	return len(l.prune("join|"+client, now)) < budget
}

func (l *limiter) prune(k string, now time.Time) []time.Time {
	h := l.hits[k]
	i := 0
	for i < len(h) && now.Sub(h[i]) > l.window {
		i++
	}
	h = h[i:]
	if len(h) == 0 {
		delete(l.hits, k)
		return nil
	}
	l.hits[k] = h
	return h
}

// allow says whether kind/key is within its failure budget.
func (l *limiter) allow(kind, key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	budget, ok := l.budgets[kind]
	if !ok {
		budget = defaultBudget
	}
	return len(l.prune(kind+"|"+key, now)) < budget
}

// fail records one failure of kind/key.
func (l *limiter) fail(kind, key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := kind + "|" + key
	if len(l.hits) >= limiterKeys {
		for old := range l.hits { // random eviction keeps this O(1)
			delete(l.hits, old)
			break
		}
	}
	l.hits[k] = append(l.prune(k, now), now)
}

// clientKey groups a client address with its neighbours: the /24 of an IPv4
// address, the /64 of an IPv6 one.
func (g *Gateway) clientKey(c echo.Context) string {
	ip := g.clientIP(c.Request())
	if !ip.IsValid() {
		return c.Request().RemoteAddr
	}
	bits := 64
	if ip.Is4() {
		bits = 24
	}
	p, _ := ip.Prefix(bits)
	return p.Addr().String()
}

// clientIP is the address of the client: the connection's, or, when the
// connection comes from a trusted proxy (Config.TrustedProxies), the last
// address in X-Forwarded-For that no trusted proxy added. A forwarded
// value that does not parse is not believed: the nearest proxy's address
// stands.
func (g *Gateway) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if !g.trusted(ip) {
		return ip
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip
		}
		ip = a.Unmap()
		if !g.trusted(ip) {
			return ip
		}
	}
	return ip
}

func (g *Gateway) trusted(ip netip.Addr) bool {
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (g *Gateway) tooMany(c echo.Context) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(g.limiter.window/time.Second)))
	return errorf(http.StatusTooManyRequests, "too_many_requests", "too many failed tries; wait a few minutes")
}
