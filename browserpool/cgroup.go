package browserpool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Cgroups (docs/limits.md): where this process may create cgroup v2
// children, each browser starts inside one of its own, created by Tandem
// (so the browser user cannot change its limits) and entered at clone time
// (clone3 with CLONE_INTO_CGROUP), before the browser can allocate or fork.
// With the memory controller the kernel enforces Config.MaxMemory there
// (memory.max, no swap, the whole group killed on OOM); without it the
// cgroup still holds every process the browser starts, wherever it moves
// to in the process tree, and cgroup.kill ends them all at once. The PSS
// watchdog (watchdog.go) runs in every case.

const (
	// cgroupSelfName is the leaf this process moves itself into when its
	// own cgroup must give the memory controller to its children: the
	// kernel enables controllers only for a cgroup with no processes of
	// its own ("no internal processes").
	cgroupSelfName = "tandem"
	// leasePidsMax bounds the tasks (threads included) of one browser
	// when the pids controller is there: a busy Chromium runs a few
	// hundred; this only stops a runaway.
	leasePidsMax = 4096
)

// cgroupHost is the cgroup v2 directory lease cgroups are made in. A nil
// host means none: browsers are then held by their process group only.
type cgroupHost struct {
	base   string // the directory lease cgroups are created in
	memory bool   // the memory controller is enabled in base's children
	pids   bool   // the pids controller is enabled in base's children
	reason string // why memory is false (or, from detectCgroup, why there is no host)

	// mkdir and rmdir create and remove a cgroup; tests point them at a
	// fake cgroupfs, where the kernel's files must be laid out by hand.
	mkdir func(string) error
	rmdir func(string) error
}

// MemoryLimit names what enforces Config.MaxMemory: "cgroup" when the
// kernel does (memory.max), "watchdog" when only the PSS watchdog does.
func (h *cgroupHost) MemoryLimit() string {
	if h != nil && h.memory {
		return "cgroup"
	}
	return "watchdog"
}

// Placement names what holds a browser's processes together: "cgroup" or
// "process-group".
func (h *cgroupHost) Placement() string {
	if h != nil {
		return "cgroup"
	}
	return "process-group"
}

var (
	hostOnce   sync.Once
	hostCached *cgroupHost
	hostReason string
)

// machineCgroup detects the cgroup host once per process: detection can
// move this process into a leaf of its cgroup, which must happen once.
func machineCgroup() (*cgroupHost, string) {
	hostOnce.Do(func() {
		mi, err1 := os.ReadFile("/proc/self/mountinfo")
		cg, err2 := os.ReadFile("/proc/self/cgroup")
		if err := errors.Join(err1, err2); err != nil {
			hostReason = err.Error()
			return
		}
		h, err := detectCgroup(mi, cg, os.Getpid(), probeCgroup)
		if err != nil {
			hostReason = err.Error()
			return
		}
		hostCached = h
	})
	return hostCached, hostReason
}

// detectCgroup finds this process's cgroup v2 directory from mountinfo
// and /proc/self/cgroup, makes the memory and pids controllers available
// to its children where it may, and checks with probe that a child can be
// made and a process started in it. It returns an error saying why not
// when no host is usable; a host without the memory controller says why
// in reason.
func detectCgroup(mountinfo, selfCgroup []byte, pid int, probe func(h *cgroupHost) error) (*cgroupHost, error) {
	dir, err := ownCgroupDir(mountinfo, selfCgroup)
	if err != nil {
		return nil, err
	}
	h := &cgroupHost{base: dir, mkdir: mkdirCgroup, rmdir: syscall.Rmdir}
	controllers := readFields(filepath.Join(dir, "cgroup.controllers"))
	var enableErr error
	for _, c := range []string{"memory", "pids"} {
		if !slices.Contains(controllers, c) || slices.Contains(readFields(filepath.Join(dir, "cgroup.subtree_control")), c) {
			continue
		}
		err := enableController(dir, c)
		if errors.Is(err, syscall.EBUSY) && onlyMember(dir, pid) {
			// Our own processes keep the controller from our children:
			// move into a leaf (systemd's advice for a delegated unit).
			if err = moveSelf(dir, pid); err == nil {
				err = enableController(dir, c)
			}
		}
		if c == "memory" {
			enableErr = err
		}
	}
	sub := readFields(filepath.Join(dir, "cgroup.subtree_control"))
	h.memory = slices.Contains(sub, "memory")
	h.pids = slices.Contains(sub, "pids")
	switch {
	case h.memory:
	case !slices.Contains(controllers, "memory"):
		h.reason = fmt.Sprintf("no memory controller in %s (cgroup.controllers: %q)", dir, strings.Join(controllers, " "))
	default:
		h.reason = fmt.Sprintf("memory controller not enabled for children of %s: %v", dir, enableErr)
	}
	if err := probe(h); err != nil {
		return nil, fmt.Errorf("cgroup v2 at %s not usable: %w", dir, err)
	}
	return h, nil
}

// ownCgroupDir is the directory of this process's cgroup v2: the "0::"
// line of /proc/self/cgroup under the cgroup2 mount that shows it.
func ownCgroupDir(mountinfo, selfCgroup []byte) (string, error) {
	var own string
	found := false
	for line := range bytes.SplitSeq(selfCgroup, []byte{'\n'}) {
		if p, ok := bytes.CutPrefix(line, []byte("0::")); ok {
			own, found = string(p), true
		}
	}
	if !found {
		return "", errors.New("no cgroup v2: /proc/self/cgroup has no 0:: line")
	}
	if strings.HasSuffix(own, " (deleted)") || !strings.HasPrefix(own, "/") {
		return "", fmt.Errorf("no cgroup v2: own cgroup %q", own)
	}
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 || g[0] != "cgroup2" {
			continue
		}
		root, mnt := unescapeMount(f[3]), unescapeMount(f[4])
		rel, ok := strings.CutPrefix(own, root)
		if !ok || (root != "/" && rel != "" && !strings.HasPrefix(rel, "/")) {
			continue
		}
		return filepath.Join(mnt, path.Clean("/"+rel)), nil
	}
	return "", errors.New("no cgroup v2 mount shows this process's cgroup")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readFields reads a space-separated cgroup file; nil if unreadable.
func readFields(file string) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// writeCgroup writes one value to an existing cgroup file (O_TRUNC, as a
// shell's > does, is harmless there and right for a test's plain file).
func writeCgroup(file, value string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func enableController(dir, c string) error {
	return writeCgroup(filepath.Join(dir, "cgroup.subtree_control"), "+"+c)
}

// onlyMember reports whether pid is the only process in the cgroup dir.
func onlyMember(dir string, pid int) bool {
	procs := readFields(filepath.Join(dir, "cgroup.procs"))
	return len(procs) == 1 && procs[0] == strconv.Itoa(pid)
}

// moveSelf moves this process (all its threads) into dir/tandem.
func moveSelf(dir string, pid int) error {
	leaf := filepath.Join(dir, cgroupSelfName)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return writeCgroup(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(pid))
}

// mkdirCgroup creates a cgroup; the kernel fills it with its files.
func mkdirCgroup(dir string) error { return os.Mkdir(dir, 0o755) }

// probeCgroup creates a child of h.base and starts a process in it the way
// a browser starts: clone3 needs Linux 5.7 and a seccomp profile that
// allows it. The probe execs a path that does not exist: ENOENT comes from
// a child that the kernel did create inside the cgroup, any other error
// from the clone itself.
func probeCgroup(h *cgroupHost) error {
	cg, err := h.create(fmt.Sprintf("%sprobe-%d", profilePrefix, os.Getpid()), 0)
	if err != nil {
		return err
	}
	_, err = syscall.ForkExec("/nonexistent/tandem-cgroup-probe", nil, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.fd.Fd())},
	})
	rerr := cg.remove(time.Second)
	if !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("start a process in a cgroup (clone3): %w", err)
	}
	return rerr
}

// leaseCgroup is one browser's cgroup. Its directory stays open and
// flock'ed for the lease's life (the sweeper's sign that it is in use, as
// the profile's lock file is), and clone3 starts the browser through it.
type leaseCgroup struct {
	host *cgroupHost
	dir  string
	fd   *os.File
}

// create makes the cgroup name under h.base, locks it and sets its limits:
// memory.max to maxMemory (when > 0 and the memory controller is on),
// no swap and one OOM kill for the whole group where the kernel has those
// files, and pids.max.
func (h *cgroupHost) create(name string, maxMemory int64) (cg *leaseCgroup, err error) {
	dir := filepath.Join(h.base, name)
	if err := h.mkdir(dir); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	cg = &leaseCgroup{host: h, dir: dir}
	defer func() {
		if err != nil {
			_ = cg.remove(time.Second)
		}
	}()
	if cg.fd, err = os.Open(dir); err != nil {
		return nil, fmt.Errorf("open cgroup: %w", err)
	}
	if err := syscall.Flock(int(cg.fd.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil, fmt.Errorf("lock cgroup %s: %w", dir, err)
	}
	var set [][2]string
	if h.memory && maxMemory > 0 {
		set = append(set, [2]string{"memory.max", strconv.FormatInt(maxMemory, 10)})
		// Swap would let the browser grow past the limit, only slower.
		set = append(set, [2]string{"memory.swap.max?", "0"})
		// Kill the whole browser, as the watchdog does: a lone renderer
		// killed leaves a half-dead browser behind.
		set = append(set, [2]string{"memory.oom.group?", "1"})
	}
	if h.pids {
		set = append(set, [2]string{"pids.max?", strconv.Itoa(leasePidsMax)})
	}
	for _, kv := range set {
		file, optional := strings.CutSuffix(kv[0], "?")
		p := filepath.Join(dir, file)
		if optional {
			if _, err := os.Stat(p); err != nil {
				continue // this kernel has no such file (swap accounting off, an old kernel)
			}
		}
		if err := writeCgroup(p, kv[1]); err != nil {
			return nil, fmt.Errorf("set %s of cgroup %s: %w", file, dir, err)
		}
	}
	return cg, nil
}

// procs lists the processes in the cgroup.
func (cg *leaseCgroup) procs() []int {
	var pids []int
	for _, f := range readFields(filepath.Join(cg.dir, "cgroup.procs")) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// kill SIGKILLs every process in the cgroup: at once with cgroup.kill
// (Linux 5.14), else one by one from cgroup.procs.
func (cg *leaseCgroup) kill() {
	if err := writeCgroup(filepath.Join(cg.dir, "cgroup.kill"), "1"); err == nil {
		return
	}
	for _, pid := range cg.procs() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// populated reports whether a process still lives in the cgroup.
func (cg *leaseCgroup) populated() bool {
	b, err := os.ReadFile(filepath.Join(cg.dir, "cgroup.events"))
	if err != nil {
		return len(cg.procs()) > 0
	}
	return keyValue(b, "populated") > 0
}

// oomKilled reports whether the kernel killed a process of the cgroup
// for going over memory.max.
func (cg *leaseCgroup) oomKilled() bool {
	b, err := os.ReadFile(filepath.Join(cg.dir, "memory.events"))
	if err != nil {
		return false
	}
	return keyValue(b, "oom_kill") > 0 || keyValue(b, "oom_group_kill") > 0
}

// keyValue reads "key n" from a flat-keyed cgroup file; 0 when absent.
func keyValue(b []byte, key string) int64 {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte{' '})
		if ok && string(k) == key {
			n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			return n
		}
	}
	return 0
}

// remove kills what is left in the cgroup, waits until it is empty (up to
// limit) and removes it, then drops its lock.
func (cg *leaseCgroup) remove(limit time.Duration) error {
	defer func() {
		if cg.fd != nil {
			_ = cg.fd.Close()
		}
	}()
	deadline := time.Now().Add(limit)
	for {
		if !cg.populated() {
			err := cg.host.rmdir(cg.dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if !time.Now().Before(deadline) {
				return fmt.Errorf("remove cgroup %s: %w", cg.dir, err)
			}
		} else {
			cg.kill()
			if !time.Now().Before(deadline) {
				return fmt.Errorf("cgroup %s: processes %v survived cgroup.kill", cg.dir, cg.procs())
			}
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

// sweepCgroups removes the browser cgroups under h.base that no live
// lease holds: a crashed Tandem's. Their processes are killed first. An
// empty one younger than sweepGrace is spared (a lease of another process
// may be between its mkdir and its lock).
func sweepCgroups(h *cgroupHost, log *zap.Logger) (removed, killed int) {
	entries, err := os.ReadDir(h.base)
	if err != nil {
		return 0, 0
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), profilePrefix) {
			continue
		}
		cg := &leaseCgroup{host: h, dir: filepath.Join(h.base, e.Name())}
		f, err := os.Open(cg.dir)
		if err != nil {
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close() // a live lease holds it
			continue
		}
		cg.fd = f
		pids := cg.procs()
		if len(pids) == 0 {
			if st, err := f.Stat(); err == nil && time.Since(st.ModTime()) < sweepGrace {
				_ = f.Close()
				continue
			}
		}
		if err := cg.remove(killLimit); err != nil {
			log.Warn("sweep: remove a crashed Tandem's browser cgroup", zap.String("cgroup", cg.dir), zap.Error(err))
			continue
		}
		removed++
		killed += len(pids)
	}
	return removed, killed
}
