package worker

import (
	"os"
	"strings"
	"testing"
)

// A worker short of memory refuses a new session with no_capacity and
// says why; it starts no browser for it.
func TestLowMemoryRefusesSessions(t *testing.T) {
	h := newHarness(t, Config{MinMemory: 1 << 50})
	rep := h.lease(t, "acme", "s_lowmem")
	if rep.Error != "no_capacity" || !strings.Contains(rep.Message, "memory") {
		t.Fatalf("lease = %+v, want no_capacity for memory", rep)
	}
	if n := gather(t, h.w)["tandem_worker_sessions"]; n != 0 {
		t.Errorf("%v sessions started", n)
	}
}

// The machine's pressure readings parse where the kernel has them.
func TestPressureReadings(t *testing.T) {
	if avail, ok := memAvailable(); !ok || avail <= 0 {
		t.Errorf("MemAvailable = %d, %v", avail, ok)
	}
	if _, err := os.Stat("/proc/pressure/cpu"); err != nil {
		t.Skip("no PSI here")
	}
	if p, ok := cpuPressure(); !ok || p < 0 || p > 100 {
		t.Errorf("CPU pressure = %v, %v", p, ok)
	}
	if err := (Config{MaxCPUPressure: 101}).Validate(); err == nil {
		t.Error("a CPU pressure over 100% was accepted")
	}
}
