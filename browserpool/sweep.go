package browserpool

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// The sweeper (docs/architecture.md): a Tandem that crashed leaves its
// browsers running and their folders on disk. Each lease holds an
// exclusive lock on a file in its folder for as long as it lives; the
// kernel drops it when the process dies, however it dies. When a pool
// starts, it removes every browser folder under TempDir whose lock nobody
// holds, after killing the processes that still use it. Browsers of other
// live Tandem processes sharing TempDir hold their locks and are left
// alone. Browser cgroups (cgroup.go) are swept the same way first: each
// lease holds a lock on its cgroup's directory, and one nobody holds is
// killed whole (cgroup.kill) and removed.

const (
	profilePrefix = "tandem-browser-"
	lockName      = ".tandem-lock"
	// sweepGrace spares a folder without a lock file this young: a lease
	// of another process may be creating it.
	sweepGrace = time.Minute
)

// lockProfile creates and locks the lease folder's lock file; the lease
// keeps it open (and so locked) until it closes.
func lockProfile(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// SweepResult is what one sweep removed.
type SweepResult struct {
	Folders   int // browser folders removed
	Processes int // processes killed that used them or were in the cgroups
	Cgroups   int // browser cgroups removed
}

// sweep removes the browser cgroups under cg (nil: none) and the browser
// folders under tmp that no live lease holds, and kills their processes.
func sweep(tmp string, cg *cgroupHost, log *zap.Logger) SweepResult {
	var res SweepResult
	if cg != nil {
		res.Cgroups, res.Processes = sweepCgroups(cg, log)
	}
	defer func() {
		if res.Folders > 0 || res.Cgroups > 0 {
			log.Info("swept what a crashed Tandem left", zap.Int("folders", res.Folders), zap.Int("cgroups", res.Cgroups), zap.Int("processes", res.Processes))
		}
	}()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return res
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), profilePrefix) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		if !abandoned(dir) {
			continue
		}
		profile := filepath.Join(dir, "profile")
		pids := browserProcs(0, profile)
		if err := killBrowserProcs(0, profile, killLimit); err != nil {
			log.Warn("sweep: kill a crashed Tandem's browser", zap.String("dir", dir), zap.Error(err))
			continue
		}
		if err := removeAllRetry(dir, removeLimit); err != nil {
			log.Warn("sweep: remove a crashed Tandem's browser folder", zap.String("dir", dir), zap.Error(err))
			continue
		}
		res.Folders++
		res.Processes += len(pids)
	}
	return res
}

// abandoned says whether no live lease holds dir: its lock file is free,
// or it has none and is older than sweepGrace.
func abandoned(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		st, err := os.Stat(dir)
		return err == nil && time.Since(st.ModTime()) > sweepGrace
	}
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false // a live lease holds it
	}
	return true // the lock goes with the file's close
}
