package gateway

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// TestBruteForceHarness guesses PINs from many client networks against a
// company with several live sessions, under the default budgets. The
// guesser never gets in, the guesses that reach the store stay within the
// limiter's bound, and the real customers still redeem their PINs after the
// attack.
func TestBruteForceHarness(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	// Eight digits keep the chance that a random guess of this run hits a
	// live PIN negligible (about 1e-5), so the test does not flake; the
	// budgets under test are the defaults.
	if _, err := e.store.UpdateCompany(ctx, "acme", func(c *tenant.Company) error { c.PINLength = 8; return nil }); err != nil {
		t.Fatal(err)
	}
	var pins []string
	for range 3 {
		pins = append(pins, e.createSession(t, e.keyA)["pin"].(string))
	}
	join := func(remote, pin string) int {
		req := httptest.NewRequest("POST", "/api/v1/join", strings.NewReader(`{"company":"acme","pin":"`+pin+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		e.g.Handler().ServeHTTP(rec, req)
		return rec.Code
	}

	const networks, triesEach = 60, 25
	checked, refused := 0, 0
	for n := range networks {
		remote := fmt.Sprintf("198.18.%d.7:40000", n)
		for range triesEach {
			v, _ := rand.Int(rand.Reader, big.NewInt(100_000_000))
			switch code := join(remote, fmt.Sprintf("%08d", v.Int64())); code {
			case http.StatusOK:
				t.Fatalf("a guess from %s opened a session", remote)
			case http.StatusNotFound:
				checked++
			case http.StatusTooManyRequests:
				refused++
			default:
				t.Fatalf("guess answered %d", code)
			}
		}
	}
	// Each network gets 20 until the company has seen 300 failures, then 3.
	if max := companyJoinBudget + networks*underAttackBudget; checked > max {
		t.Errorf("%d guesses reached the store, want at most %d", checked, max)
	}
	if refused == 0 {
		t.Error("no guess was refused")
	}
	t.Logf("%d guesses: %d checked, %d refused with 429", networks*triesEach, checked, refused)

	// The real customers, each from their own network, still get in.
	for i, pin := range pins {
		if code := join(fmt.Sprintf("192.0.2.%d:5000", i+1), pin); code != http.StatusOK {
			t.Errorf("customer %d redeeming the real PIN during the attack = %d, want 200", i, code)
		}
	}
	// So does one who mistypes twice first.
	s := e.createSession(t, e.keyA)
	for _, p := range []string{"00000001", "00000002", s["pin"].(string)} {
		code := join("198.51.100.9:6000", p)
		if p == s["pin"] && code != http.StatusOK {
			t.Errorf("a customer's third try with the right PIN = %d, want 200", code)
		}
	}
}
