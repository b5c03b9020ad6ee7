package browserpool

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The package shares one Pool, started in TestMain; each test leases its own
// browser from it and closes it.
var (
	testPool    *Pool
	testPoolErr error  // why there is no pool (a missing Chromium)
	testTempDir string // Config.TempDir of testPool
	// leftOpen is a lease that TestPoolCloseClosesLiveLeases leaves open on
	// purpose; TestMain checks that Pool.Close ended it.
	leftOpen *Lease
)

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(cgroupHelperEnv) != "" {
		os.Exit(cgroupHelper())
	}
	os.Exit(runMain(m))
}

// cgroupHelperEnv makes the test binary run cgroupHelper instead of the
// tests (TestCgroupFallbackWithoutDelegation runs it as another user).
const cgroupHelperEnv = "TANDEM_TEST_CGROUP_HELPER"

// cgroupHelper starts a pool, says which limits it uses, and leases and
// closes one browser with them.
func cgroupHelper() int {
	p, err := New(Config{Warm: -1, StartTimeout: time.Minute}, zap.NewNop())
	if err != nil {
		fmt.Println("New:", err)
		return 1
	}
	defer p.Close()
	st := p.Stats()
	fmt.Printf("memory_limit=%s placement=%s\n", st.MemoryLimit, st.Placement)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := p.Lease(ctx, LeaseOptions{StartURL: "data:text/html,hello"})
	if err != nil {
		fmt.Println("Lease:", err)
		return 1
	}
	if l.cg != nil {
		fmt.Println("the lease has a cgroup:", l.cg.dir)
		return 1
	}
	if err := l.Close(); err != nil {
		fmt.Println("Close:", err)
		return 1
	}
	return 0
}

func runMain(m *testing.M) int {
	goroutines := runtime.NumGoroutine()
	if _, err := findChromium(""); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "browserpool: %v; CI needs a Chromium\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "\n*** browserpool: SKIPPING browser tests: %v ***\n\n", err)
		testPoolErr = err
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "browserpool-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The browser user (nobody when the tests run as root) must reach its
	// profile inside.
	if err := os.Chmod(dir, 0o711); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testTempDir = dir
	log := zap.NewNop()
	if testing.Verbose() {
		log = zap.Must(zap.NewDevelopment())
	}
	testPool, err = New(Config{Warm: 1, TempDir: dir, MotionFPS: -1}, log) // motion_test.go turns it on where it looks
	if err != nil {
		fmt.Fprintf(os.Stderr, "browserpool: New: %v\n", err)
		return 1
	}
	code := m.Run()

	if err := testPool.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "Pool.Close: %v\n", err)
		code = 1
	}
	if err := testPool.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "second Pool.Close: %v\n", err)
		code = 1
	}
	if _, err := testPool.Lease(context.Background(), LeaseOptions{}); !errors.Is(err, ErrPoolClosed) {
		fmt.Fprintf(os.Stderr, "Lease after Close: %v, want ErrPoolClosed\n", err)
		code = 1
	}
	if err := checkLeftOpen(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if err := checkNothingLeft(dir, goroutines); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

// checkLeftOpen verifies that Pool.Close closed a lease its owner never did.
func checkLeftOpen() error {
	if leftOpen == nil {
		return nil
	}
	select {
	case <-leftOpen.Done():
	default:
		return errors.New("Pool.Close left a live lease open")
	}
	if !errors.Is(leftOpen.Err(), ErrLeaseClosed) {
		return fmt.Errorf("left-open lease Err = %v, want ErrLeaseClosed", leftOpen.Err())
	}
	if _, err := os.Stat(leftOpen.dir); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("left-open lease's profile dir %s still there (%v)", leftOpen.dir, err)
	}
	return nil
}

// checkNothingLeft verifies that no browser process, directory or goroutine
// of the pool survived Pool.Close.
func checkNothingLeft(dir string, goroutines int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("Pool.Close left %d entries in %s (first %s)", len(entries), dir, entries[0].Name())
	}
	if pids := procsMentioning(dir); len(pids) > 0 {
		return fmt.Errorf("Pool.Close left browser processes %v", pids)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("goroutines: %d after Close, %d before New:\n%s", runtime.NumGoroutine(), goroutines, buf)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	return nil
}

// procsMentioning lists live processes whose command line mentions s.
func procsMentioning(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if info, err := readProc(pid); err != nil || info.state == 'Z' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// needPool returns the shared pool, or skips (locally) when there is no
// Chromium.
func needPool(t testing.TB) *Pool {
	t.Helper()
	if testPool == nil {
		t.Skipf("no browser pool: %v", testPoolErr)
	}
	return testPool
}
