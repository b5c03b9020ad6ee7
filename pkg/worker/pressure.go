package worker

import (
	"bytes"
	"os"
	"strconv"
)

// Admission beyond the session count (docs/architecture.md): a worker
// refuses a new session when the machine is short of memory
// (MemAvailable in /proc/meminfo below Config.MinMemory), or, when
// Config.MaxCPUPressure is set, when tasks waited for a CPU more than that
// share of the last 10 s (/proc/pressure/cpu "some avg10"). A machine
// without pressure information is not refused for it.

// defaultMinMemory is the memory a worker keeps free for its sessions.
const defaultMinMemory = 256 << 20

// pressure says why the machine cannot take one more session, or "".
func (w *Worker) pressure() string {
	if avail, ok := memAvailable(); ok && avail < w.cfg.MinMemory {
		return "this worker's machine is low on memory"
	}
	if max := w.cfg.MaxCPUPressure; max > 0 {
		if some, ok := cpuPressure(); ok && some > max {
			return "this worker's CPUs are overloaded"
		}
	}
	return ""
}

// memAvailable reads MemAvailable from /proc/meminfo, in bytes.
func memAvailable() (int64, bool) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if v, ok := bytes.CutPrefix(line, []byte("MemAvailable:")); ok {
			f := bytes.Fields(v)
			if len(f) == 0 {
				return 0, false
			}
			n, err := strconv.ParseInt(string(f[0]), 10, 64)
			return n << 10, err == nil
		}
	}
	return 0, false
}

// cpuPressure reads "some avg10" from /proc/pressure/cpu, in percent.
func cpuPressure() (float64, bool) {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, false
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("some "))
		if !ok {
			continue
		}
		for _, f := range bytes.Fields(rest) {
			if v, ok := bytes.CutPrefix(f, []byte("avg10=")); ok {
				p, err := strconv.ParseFloat(string(v), 64)
				return p, err == nil
			}
		}
	}
	return 0, false
}
