package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestInvalidPINTiming: every kind of invalid PIN costs the same, so that
// the time of the answer tells a guesser nothing more than its body does.
// The kinds are interleaved (a load spike hits them all alike) and compared
// by their medians, and only a gross difference fails: the test is about
// code paths that skip the store's work, not about microseconds.
func TestInvalidPINTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("times hundreds of requests")
	}
	e := newEnv(t, true)
	live := e.createSession(t, e.keyA)["pin"].(string)
	wrong := "000000"
	if live == wrong {
		wrong = "000001"
	}
	kinds := []struct{ name, body string }{
		{"wrong PIN for the company", `{"company":"acme","pin":"` + wrong + `"}`},
		{"right PIN on another company", `{"company":"beta","pin":"` + live + `"}`},
		{"unknown company", `{"company":"nobody","pin":"` + live + `"}`},
		{"malformed PIN", `{"company":"acme","pin":"12ab"}`},
	}
	h := e.g.Handler()
	n := 0
	join := func(body string) (time.Duration, int, string) {
		n++ // each request from its own /24, so the limiter never answers
		req := httptest.NewRequest("POST", "/api/v1/join", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.1:4000", n/256, n%256)
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		return time.Since(start), rec.Code, rec.Body.String()
	}

	const warmup, rounds = 10, 200
	times := make([][]time.Duration, len(kinds))
	var firstBody string
	for r := range warmup + rounds {
		for i := range kinds {
			k := kinds[(i+r)%len(kinds)] // rotate the order too
			d, code, body := join(k.body)
			if code != http.StatusNotFound {
				t.Fatalf("%s answered %d %s, want 404", k.name, code, body)
			}
			if firstBody == "" {
				firstBody = body
			} else if body != firstBody {
				t.Fatalf("%s answered %s, others %s", k.name, body, firstBody)
			}
			if r >= warmup {
				j := slices.IndexFunc(kinds, func(x struct{ name, body string }) bool { return x.name == k.name })
				times[j] = append(times[j], d)
			}
		}
	}
	medians := make([]time.Duration, len(kinds))
	for i := range kinds {
		slices.Sort(times[i])
		medians[i] = times[i][len(times[i])/2]
		t.Logf("%-30s median %v (p10 %v, p90 %v)", kinds[i].name, medians[i], times[i][len(times[i])/10], times[i][len(times[i])*9/10])
	}
	lo, hi := slices.Min(medians), slices.Max(medians)
	bound := max(5*time.Millisecond, hi/2)
	if hi-lo > bound {
		t.Errorf("medians differ by %v (from %v to %v), more than %v", hi-lo, lo, hi, bound)
	}
}
