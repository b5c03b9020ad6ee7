package browserpool

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

	res := sweep(tmp, zap.NewNop())
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
// (as a second Tandem sharing it would run) leaves them; and 50 sessions
// one after the other leave no process and no folder behind.
func TestManySequentialLeasesLeaveNothing(t *testing.T) {
	p := needPool(t)
	before := dirNames(t, testTempDir)
	if res := sweep(testTempDir, zap.NewNop()); res.Folders != 0 {
		t.Fatalf("a sweep removed %d live browsers' folders", res.Folders)
	}
	var dirs []string
	for i := range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		l, err := p.Lease(ctx, LeaseOptions{Width: 320, Height: 240})
		cancel()
		if err != nil {
			t.Fatalf("lease %d: %v", i, err)
		}
		dirs = append(dirs, l.dir)
		if err := l.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s is still there", d)
		}
		if pids := procsMentioning(d); len(pids) > 0 {
			t.Errorf("processes %v still use %s", pids, d)
		}
	}
	// What is left is the warm pool's, as before (a new warm browser may
	// stand where an old one was).
	after := dirNames(t, testTempDir)
	for _, d := range after {
		if slices.Contains(dirs, filepath.Join(testTempDir, d)) {
			t.Errorf("a leased browser's folder %s is left", d)
		}
	}
	if len(after) > len(before)+1 {
		t.Errorf("folders before %v, after %v", before, after)
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
