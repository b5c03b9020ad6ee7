package browserpool

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"time"
)

// Usage is what one browser's processes use: CPU time since they started,
// and memory as their proportional set size (each shared page counted
// once across them), from /proc.
type Usage struct {
	CPU    time.Duration
	Memory int64 // bytes of PSS (RSS where the kernel has no smaps_rollup)
	Procs  int
}

// userHZ is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on Linux).
const userHZ = 100

// Usage reads the browser's processes now; zero once it is gone. With a
// cgroup the kernel lists them (cgroup.procs); without, /proc is scanned
// for the process group and the profile folder. The watchdog calls this
// every few seconds for each lease, and the metrics once per scrape.
func (l *Lease) Usage() Usage {
	var pids []int
	if l.cg != nil {
		pids = l.cg.procs()
	} else {
		pids = browserProcs(l.PID(), l.userDataDir)
	}
	var u Usage
	for _, pid := range pids {
		cpu, ok := procCPU(pid)
		if !ok {
			continue
		}
		u.CPU += cpu
		u.Memory += ProcessMemory(pid)
		u.Procs++
	}
	return u
}

// procCPU is pid's user and system time.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	// After the name: state(3) ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime(14) stime(15).
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * time.Second / userHZ, true
}

// ProcessMemory is pid's PSS in bytes, or its RSS when smaps_rollup is
// not there; 0 when the process is gone.
func ProcessMemory(pid int) int64 {
	dir := "/proc/" + strconv.Itoa(pid)
	if f, err := os.Open(dir + "/smaps_rollup"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("Pss:")); ok {
				return kB(v)
			}
		}
	}
	b, err := os.ReadFile(dir + "/status")
	if err != nil {
		return 0
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			return kB(v)
		}
	}
	return 0
}

// kB parses "   1234 kB" into bytes.
func kB(v []byte) int64 {
	f := bytes.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return 0
	}
	return n << 10
}
