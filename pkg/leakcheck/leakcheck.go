// Package leakcheck fails a test package whose tests leave goroutines
// running: STYLE.md asks every package that starts goroutines to check in
// TestMain that none are left. It keeps no state; Run is called once from
// TestMain.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Wait is how long Run waits for goroutines to end after the tests.
const Wait = 15 * time.Second

// Tests is what Run runs: a *testing.M, or a wrapper that also stops what
// the package's tests shared.
type Tests interface{ Run() int }

// Run runs the package's tests and, when they passed, waits until no more
// goroutines run than before them; it returns the exit code for os.Exit.
func Run(m Tests) int {
	base := len(Live())
	code := m.Run()
	if code == 0 {
		if err := Settle(base, Wait); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}

// Live returns the stacks of the running goroutines, without the caller's
// and the runtime's signal loop (started by the fuzzing engine).
func Live() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "leakcheck.Live") || strings.Contains(g, "os/signal.loop") {
			continue
		}
		out = append(out, g)
	}
	return out
}

// Settle polls until at most n goroutines run, or reports the ones left
// after d.
func Settle(n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		live := Live()
		if len(live) <= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d goroutines left, want at most %d:\n%s", len(live), n, strings.Join(live, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
