package browserpool

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestOwnCgroupDir(t *testing.T) {
	const v1 = "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	tests := []struct {
		name, mountinfo, self, want string
		wantErr                     bool
	}{
		{"pure v2", "30 22 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/system.slice/tandem.service\n",
			"/sys/fs/cgroup/system.slice/tandem.service", false},
		{"container root", "30 22 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/\n", "/sys/fs/cgroup", false},
		{"hybrid (this machine)", v1 + "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
			"4:memory:/x\n0::/\n", "/sys/fs/cgroup/unified", false},
		{"mount of a subtree", "30 22 0:27 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/kubepods/pod1/c\n",
			"/sys/fs/cgroup/c", false},
		{"escaped mount point", `30 22 0:27 / /mnt/cg\040two rw - cgroup2 cgroup2 rw` + "\n", "0::/a\n", "/mnt/cg two/a", false},
		{"sibling subtree is not ours", "30 22 0:27 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/kubepods/pod10\n", "", true},
		{"v1 only", v1, "4:memory:/x\n", "", true},
		{"no cgroup2 mount", v1, "0::/\n", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ownCgroupDir([]byte(tc.mountinfo), []byte(tc.self))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ownCgroupDir = %q, %v; want %q (error: %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// fakeCgroupfs lays out a temp dir like a cgroup2 mount, with this
// process's cgroup at svc/. Its mkdir creates the files the kernel would
// put in a child: memory.* only when svc's subtree_control enables
// memory (memory.swap.max only with swap accounting), pids.max with pids.
//
// The memory controller is absent on the development machine these tests
// run on (its cgroup2 hierarchy offers only hugetlb), so memory.max,
// memory.swap.max, memory.oom.group and memory.events are tested here,
// against files, and never against the kernel.
type fakeCgroupfs struct {
	root string
	swap bool
}

func newFakeCgroupfs(t *testing.T, controllers, subtree string, swap bool) (*fakeCgroupfs, *cgroupHost) {
	t.Helper()
	fs := &fakeCgroupfs{root: t.TempDir(), swap: swap}
	svc := filepath.Join(fs.root, "svc")
	fs.write(t, svc, map[string]string{
		"cgroup.controllers": controllers + "\n", "cgroup.subtree_control": subtree + "\n", "cgroup.procs": "1\n",
	})
	mountinfo := "30 22 0:27 / " + fs.root + " rw - cgroup2 cgroup2 rw\n"
	probed := false
	h, err := detectCgroup([]byte(mountinfo), []byte("0::/svc\n"), 1, func(*cgroupHost) error { probed = true; return nil })
	if err != nil {
		t.Fatalf("detectCgroup: %v", err)
	}
	if !probed || h.base != svc {
		t.Fatalf("detectCgroup: base %q (probed %v), want %q", h.base, probed, svc)
	}
	h.mkdir, h.rmdir = fs.mkdir, os.RemoveAll
	return fs, h
}

func (fs *fakeCgroupfs) write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (fs *fakeCgroupfs) mkdir(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{"cgroup.procs": "", "cgroup.kill": "", "cgroup.events": "populated 0\nfrozen 0\n"}
	sub := readFields(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control"))
	if slices.Contains(sub, "memory") {
		files["memory.max"] = "max\n"
		files["memory.oom.group"] = "0\n"
		files["memory.events"] = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"
		if fs.swap {
			files["memory.swap.max"] = "max\n"
		}
	}
	if slices.Contains(sub, "pids") {
		files["pids.max"] = "max\n"
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// readFile reads a file of the fake, "(none)" if it is not there.
func readFile(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "(none)"
	}
	return strings.TrimSpace(string(b))
}

// What the pool decides and writes for each lease's cgroup, by what the
// cgroup hierarchy offers (see fakeCgroupfs for why these are files).
func TestCgroupLimitsOnAFakeCgroupfs(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name                  string
		controllers, subtree  string
		swap                  bool
		limit                 int64
		wantMemory, wantLimit string
		want                  map[string]string
	}{
		{"memory and pids delegated", "cpu io memory pids", "memory pids", true, 512 * mib, "cgroup", "",
			map[string]string{"memory.max": "536870912", "memory.swap.max": "0", "memory.oom.group": "1", "pids.max": "4096"}},
		{"no swap accounting", "memory", "memory", false, 512 * mib, "cgroup", "",
			map[string]string{"memory.max": "536870912", "memory.swap.max": "(none)", "memory.oom.group": "1", "pids.max": "(none)"}},
		{"no memory limit configured", "memory pids", "memory pids", true, 0, "cgroup", "",
			map[string]string{"memory.max": "max", "memory.swap.max": "max", "memory.oom.group": "0", "pids.max": "4096"}},
		{"no memory controller (as on this machine)", "hugetlb", "", true, 512 * mib, "watchdog", "no memory controller",
			map[string]string{"memory.max": "(none)", "memory.swap.max": "(none)", "pids.max": "(none)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, h := newFakeCgroupfs(t, tc.controllers, tc.subtree, tc.swap)
			if got := h.MemoryLimit(); got != tc.wantMemory || !strings.Contains(h.reason, tc.wantLimit) || (tc.wantLimit == "") != (h.reason == "") {
				t.Errorf("MemoryLimit = %s (reason %q), want %s (reason with %q)", got, h.reason, tc.wantMemory, tc.wantLimit)
			}
			if got := h.Placement(); got != "cgroup" {
				t.Errorf("Placement = %s, want cgroup", got)
			}
			cg, err := h.create(profilePrefix+"a", tc.limit)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			for file, want := range tc.want {
				if got := readFile(cg.dir, file); got != want {
					t.Errorf("%s = %q, want %q", file, got, want)
				}
			}
			if err := cg.remove(time.Second); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(cg.dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cgroup dir after remove: %v", err)
			}
		})
	}
	var none *cgroupHost
	if none.MemoryLimit() != "watchdog" || none.Placement() != "process-group" {
		t.Errorf("no cgroup: %s, %s; want watchdog, process-group", none.MemoryLimit(), none.Placement())
	}
}

// A browser the kernel killed at memory.max is reported as ErrMemoryLimit,
// however it died; one that died otherwise is not. kill asks the kernel
// to kill the whole cgroup; remove waits for it to be empty. (Files, not
// the kernel: see fakeCgroupfs.)
func TestCgroupOOMIsErrMemoryLimit(t *testing.T) {
	_, h := newFakeCgroupfs(t, "memory", "memory", true)
	cg, err := h.create(profilePrefix+"oom", 256<<20)
	if err != nil {
		t.Fatal(err)
	}
	l := newLease(Config{MaxMemory: 256 << 20}, zap.NewNop())
	l.cg = cg
	if err := l.deathReason(ErrBrowserLost); !errors.Is(err, ErrBrowserLost) || errors.Is(err, ErrMemoryLimit) {
		t.Errorf("no OOM kill: deathReason = %v, want ErrBrowserLost", err)
	}
	events := "low 0\nhigh 3\nmax 40\noom 1\noom_kill 1\noom_group_kill 1\n"
	if err := os.WriteFile(filepath.Join(cg.dir, "memory.events"), []byte(events), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, died := range []error{ErrBrowserLost, ErrPageCrashed} {
		if err := l.deathReason(died); !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "256 MiB") {
			t.Errorf("after an OOM kill, deathReason(%v) = %v, want ErrMemoryLimit at 256 MiB", died, err)
		}
	}
	cg.kill()
	if got := readFile(cg.dir, "cgroup.kill"); got != "1" {
		t.Errorf("cgroup.kill = %q after kill, want 1", got)
	}
	if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.events"), []byte("populated 1\nfrozen 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cg.remove(100 * time.Millisecond); err == nil {
		t.Error("remove of a populated cgroup succeeded")
	}
	if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.events"), []byte("populated 0\nfrozen 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cg.remove(time.Second); err != nil {
		t.Fatal(err)
	}
}

// needCgroup skips (loudly) when this machine offers the pool no cgroup
// v2 to create lease cgroups in (as non-root without delegation).
func needCgroup(t *testing.T) *cgroupHost {
	t.Helper()
	p := needPool(t)
	if p.cg == nil {
		_, reason := machineCgroup()
		t.Skipf("*** no writable cgroup v2 here: %s ***", reason)
	}
	return p.cg
}

// cgroupOf is the cgroup v2 directory of pid.
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	mi, err1 := os.ReadFile("/proc/self/mountinfo")
	self, err2 := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err := errors.Join(err1, err2); err != nil {
		return "(gone: " + err.Error() + ")"
	}
	dir, err := ownCgroupDir(mi, self)
	if err != nil {
		t.Fatalf("cgroup of %d: %v", pid, err)
	}
	return dir
}

// With the real kernel: every process of a lease's browser is in the
// lease's cgroup, which Tandem created (root's, while the browser runs as
// the browser user), and Close kills even a process that left the
// browser's process group and carries none of its flags (only the cgroup
// still knows it), then removes the cgroup.
func TestCgroupHoldsTheWholeBrowser(t *testing.T) {
	h := needCgroup(t)
	l := lease(t, LeaseOptions{StartURL: solidPage(color.RGBA{0, 128, 0, 255})})
	if l.cg == nil {
		t.Fatal("the pool has a cgroup host but the lease no cgroup")
	}
	if filepath.Dir(l.cg.dir) != h.base || filepath.Base(l.cg.dir) != filepath.Base(l.dir) {
		t.Errorf("lease cgroup %s, want %s/%s", l.cg.dir, h.base, filepath.Base(l.dir))
	}
	pids := browserProcs(l.PID(), l.userDataDir)
	if len(pids) < 3 {
		t.Fatalf("browser has %d processes %v, want the browser, its zygotes and a renderer", len(pids), pids)
	}
	inCgroup := l.cg.procs()
	for _, pid := range pids {
		if got := cgroupOf(t, pid); got != l.cg.dir {
			t.Errorf("browser process %d in cgroup %s, want %s", pid, got, l.cg.dir)
		}
		if !slices.Contains(inCgroup, pid) {
			t.Errorf("browser process %d not in %s/cgroup.procs %v", pid, l.cg.dir, inCgroup)
		}
	}
	if u := needPool(t).spec.user; u != nil {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(l.cg.dir, "cgroup.procs"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 0 {
			t.Errorf("cgroup.procs owned by uid %d, want root's: the browser user must not move itself", st.Uid)
		}
		if got := procUID(t, l.PID()); got != u.uid {
			t.Errorf("browser runs as uid %d, want %s's %d", got, u.name, u.uid)
		}
	}

	// A process that escaped the browser's process group (setsid), as a
	// forked helper could.
	escaped := exec.Command("sleep", "300")
	escaped.SysProcAttr = &syscall.SysProcAttr{Setsid: true, UseCgroupFD: true, CgroupFD: int(l.cg.fd.Fd()),
		Credential: needPool(t).spec.user.credential()}
	if err := escaped.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = escaped.Wait(); close(exited) }()
	t.Cleanup(func() { _ = escaped.Process.Kill(); <-exited })
	if got := cgroupOf(t, escaped.Process.Pid); got != l.cg.dir {
		t.Fatalf("escaped process in %s, want %s", got, l.cg.dir)
	}
	if slices.Contains(browserProcs(l.PID(), l.userDataDir), escaped.Process.Pid) {
		t.Fatal("the escaped process is in the browser's group: this test proves nothing")
	}

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Error("a process in the lease's cgroup outlived Close")
	}
	if _, err := os.Stat(l.cg.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lease cgroup after Close: %v, want it removed", err)
	}
	for _, pid := range pids {
		if info, err := readProc(pid); err == nil && info.state != 'Z' {
			t.Errorf("browser process %d outlived Close", pid)
		}
	}
}

func procUID(t *testing.T, pid int) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/"+strconv.Itoa(pid), &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid
}

// With the real kernel: a crashed Tandem's browser cgroup (its lock gone
// with its process) is killed whole, a process that left the group
// included, and removed; a live lease's cgroup and a fresh empty one (a
// lease between mkdir and lock) stay.
func TestCgroupSweepRemovesACrashedTandemsCgroup(t *testing.T) {
	h := needCgroup(t)
	suffix := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	crashed := filepath.Join(h.base, profilePrefix+"crashed-"+suffix)
	if err := os.Mkdir(crashed, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Rmdir(crashed) })
	f, err := os.Open(crashed)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "setsid sleep 300 & exec sleep 300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = f.Close() // the crashed Tandem's lock went with it
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	cg := &leaseCgroup{host: h, dir: crashed}
	deadline := time.Now().Add(10 * time.Second)
	for len(cg.procs()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the crashed browser's cgroup holds %v, want 2 processes", cg.procs())
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	pids := cg.procs()

	held, err := h.create(profilePrefix+"held-"+suffix, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = held.remove(time.Second) })
	young := filepath.Join(h.base, profilePrefix+"young-"+suffix)
	if err := os.Mkdir(young, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Rmdir(young) })

	removed, killed := sweepCgroups(h, zap.NewNop())
	if removed < 1 || killed < 2 {
		t.Errorf("sweepCgroups = %d removed, %d killed; want the crashed one and its 2 processes", removed, killed)
	}
	for dir, want := range map[string]bool{crashed: false, held.dir: true, young: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s there: %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for {
			info, err := readProc(pid)
			if err != nil || info.state == 'Z' {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("process %d of the crashed cgroup survived the sweep", pid)
				break
			}
			time.Sleep(10 * time.Millisecond) // polling with a deadline
		}
	}
}

// As a user who may not create cgroups (the browser user stands in for a
// non-root Tandem without delegation), a pool falls back to the process
// group and the watchdog and still works. The check runs in a child
// process of this test binary (cgroupHelperEnv, main_test.go).
func TestCgroupFallbackWithoutDelegation(t *testing.T) {
	p := needPool(t)
	u := p.spec.user
	if u == nil {
		t.Skip("not root: the whole package already runs without delegation")
	}
	dir := t.TempDir()
	for d := dir; strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "browserpool.test")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, int(u.uid), int(u.gid)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Dir = tmp
	cmd.Env = []string{cgroupHelperEnv + "=1", "TMPDIR=" + tmp, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.credential()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as %s: %v\n%s", u.name, err, out)
	}
	if got := string(out); !strings.Contains(got, "memory_limit=watchdog placement=process-group") {
		t.Errorf("helper as %s said %q, want the watchdog and the process group", u.name, got)
	}
}
