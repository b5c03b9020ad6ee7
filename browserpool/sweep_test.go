package browserpool

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

// A crashed Tandem's browser folder (its lock free) is removed and the
// processes that still use it killed; a folder a live lease holds, and a
// young folder without a lock (a lease being made), stay; an old one
// without a lock goes.
func TestSweepRemovesWhatACrashLeft(t *testing.T) {
	tmp := t.TempDir()
	mk := func(name string, lock bool) string {
		dir := filepath.Join(tmp, profilePrefix+name)
		if err := os.MkdirAll(filepath.Join(dir, "profile"), 0o700); err != nil {
			t.Fatal(err)
		}
		if lock {
			if err := os.WriteFile(filepath.Join(dir, lockName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	crashed := mk("crashed", true)
	// A process of the crashed browser, still running.
	cmd := exec.Command("sh", "-c", "while :; do sleep 1; done", "--user-data-dir="+filepath.Join(crashed, "profile"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	held := mk("held", false)
	lock, err := lockProfile(held)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	young := mk("young", false)
	old := mk("old", false)
	past := time.Now().Add(-2 * sweepGrace)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(tmp, "not-ours")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}

	res := sweep(tmp, nil, zap.NewNop())
	if res.Folders != 2 || res.Processes != 1 {
		t.Errorf("sweep = %+v, want 2 folders and 1 process", res)
	}
	for dir, want := range map[string]bool{crashed: false, old: false, held: true, young: true, other: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s there: %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Error("the crashed browser's process still runs")
	}
}

// The live pool's browsers hold their folders: a sweep of its TempDir
// (as a second Tandem sharing it would run) leaves them. And 50 sessions
// one after the other, on a pool of their own, leave no process and no
// folder behind.
func TestManySequentialLeasesLeaveNothing(t *testing.T) {
	needPool(t)
	if res := sweep(testTempDir, testPool.cg, zap.NewNop()); res.Folders != 0 {
		t.Fatalf("a sweep removed %d live browsers' folders", res.Folders)
	}
	dir, err := os.MkdirTemp(testTempDir, "sequential-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	// A start may be slow on a loaded machine: leftovers are the point here.
	p, err := New(Config{Warm: -1, TempDir: dir, StartTimeout: time.Minute}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		l, err := p.Lease(ctx, LeaseOptions{Width: 320, Height: 240})
		cancel()
		if err != nil {
			t.Fatalf("lease %d: %v", i, err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if left := dirNames(t, dir); len(left) > 0 {
		t.Errorf("50 sessions left %v", left)
	}
	if pids := procsMentioning(dir); len(pids) > 0 {
		t.Errorf("50 sessions left processes %v", pids)
	}
	if err := os.Remove(dir); err != nil {
		t.Error(err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
