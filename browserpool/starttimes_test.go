package browserpool

import (
	"testing"
	"time"
)

func TestStartTimes(t *testing.T) {
	var h StartTimes
	h.add(true, 100*time.Millisecond)
	h.add(true, 3*time.Second)
	h.add(false, time.Minute)
	if h.Counts[0][0] != 1 || h.Counts[0][4] != 1 || h.Counts[1][len(StartBuckets)] != 1 {
		t.Errorf("counts = %v", h.Counts)
	}
	if h.Sum[0] != 3100*time.Millisecond || h.Sum[1] != time.Minute {
		t.Errorf("sums = %v", h.Sum)
	}
}
