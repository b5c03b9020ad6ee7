package browserpool

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// procInfo is what the pool reads about a process from /proc.
type procInfo struct {
	pid   int
	state byte // 'R', 'S', 'Z', ...
	pgid  int
}

// readProc reads the state and process group of pid from /proc/<pid>/stat.
func readProc(pid int) (procInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	// The command name is in parentheses and may hold spaces or ')', so
	// parse from the last ')': state ppid pgrp ...
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 3 || len(fields[0]) != 1 {
		return procInfo{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	pgid, err := strconv.Atoi(string(fields[2]))
	if err != nil {
		return procInfo{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return procInfo{pid: pid, state: fields[0][0], pgid: pgid}, nil
}

// hasArg reports whether the command line of pid holds arg exactly.
func hasArg(pid int, arg string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for a := range bytes.SplitSeq(b, []byte{0}) {
		if string(a) == arg {
			return true
		}
	}
	return false
}

// browserProcs lists the live (not zombie) processes that belong to one
// browser: members of its process group, and any process that carries its
// --user-data-dir flag, in case one left the group.
func browserProcs(pgid int, userDataDir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	want := "--user-data-dir=" + userDataDir
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		info, err := readProc(pid)
		if err != nil || info.state == 'Z' {
			continue
		}
		if (pgid > 0 && info.pgid == pgid) || (userDataDir != "" && hasArg(pid, want)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killBrowserProcs SIGKILLs every process of one browser until /proc shows
// none for a few passes in a row (a dying parent can fork once more), or the
// limit passes.
func killBrowserProcs(pgid int, userDataDir string, limit time.Duration) error {
	const (
		quietPasses = 3
		pause       = 10 * time.Millisecond
	)
	deadline := time.Now().Add(limit)
	var left []int
	for quiet := 0; quiet < quietPasses; {
		left = browserProcs(pgid, userDataDir)
		if len(left) == 0 {
			quiet++
		} else {
			quiet = 0
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL) // it may be gone already
			}
		}
		if !time.Now().Before(deadline) {
			if len(left) > 0 {
				return fmt.Errorf("browser processes %v survived SIGKILL", left)
			}
			return nil
		}
		time.Sleep(pause)
	}
	return nil
}

// removeAllRetry removes dir, retrying for a while: a dying browser process
// can still create files in it.
func removeAllRetry(dir string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := os.RemoveAll(dir)
		if err == nil || !time.Now().Before(deadline) {
			if err != nil {
				return fmt.Errorf("remove profile dir: %w", err)
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}
