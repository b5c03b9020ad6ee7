package worker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/media"
)

// totals accumulates the counters of ended sessions, so that the worker's
// counters stay monotonic when a session goes away. Guarded by Worker.mu.
type totals struct {
	captured, decodeErrors, droppedInput, refusedInput uint64
	screenRelay, screenDrop                            uint64
	roles                                              map[string]media.RoleStats
	mask                                               maskStats
}

func (t *totals) addMask(st maskStats) {
	m := &t.mask
	m.Frames += st.Frames
	m.Masked += st.Masked
	m.Held += st.Held
	m.Flushes += st.Flushes
	m.Pauses += st.Pauses
	m.Refused += st.Refused
	m.MaskTime += st.MaskTime
}

func (t *totals) addRole(st media.RoleStats) {
	if t.roles == nil {
		t.roles = make(map[string]media.RoleStats)
	}
	r := t.roles[st.Role]
	r.Role = st.Role
	r.Frames += st.Frames
	r.KeyFrames += st.KeyFrames
	r.Repeats += st.Repeats
	r.Bytes += st.Bytes
	r.Packets += st.Packets
	r.Dropped += st.Dropped
	r.EncodeErrors += st.EncodeErrors
	r.EncodeTime += st.EncodeTime
	r.Followed += st.Followed
	r.FollowBreaks += st.FollowBreaks
	r.Viewers += st.Viewers
	t.roles[st.Role] = r
}

var (
	descSessions = prometheus.NewDesc("tandem_worker_sessions", "Sessions hosted now.", nil, nil)
	descPaused   = prometheus.NewDesc("tandem_sessions_capture_paused", "Sessions whose capture is paused because nobody watches them.", nil, nil)
	descReduced  = prometheus.NewDesc("tandem_sessions_capture_reduced", "Sessions whose page is captured at 3/4 size because it moves faster than the capture keeps up with.", nil, nil)
	descSwitches = prometheus.NewDesc("tandem_session_capture_switches_total", "Times the session's capture changed size (reduced while its page moved, or back to full size).", []string{"company_id", "session_id"}, nil)
	descCapacity = prometheus.NewDesc("tandem_worker_max_sessions", "Sessions this worker may host at once.", nil, nil)
	descViewers  = prometheus.NewDesc("tandem_viewers", "Viewers watching now, by role.", []string{"role"}, nil)
	descCaptured = prometheus.NewDesc("tandem_frames_captured_total", "Screencast frames received from Chromium and decoded.", nil, nil)
	descDecodeEr = prometheus.NewDesc("tandem_frame_decode_errors_total", "Screencast frames that did not decode.", nil, nil)
	descInputDr  = prometheus.NewDesc("tandem_input_dropped_total", "Viewer input events refused as malformed or dropped under load.", nil, nil)
	descInputRf  = prometheus.NewDesc("tandem_input_refused_total", "Viewer input events held back because the customer had not agreed or been admitted.", nil, nil)
	descEncoded  = prometheus.NewDesc("tandem_frames_encoded_total", "VP8 frames encoded and sent, by role.", []string{"role"}, nil)
	descKeys     = prometheus.NewDesc("tandem_key_frames_total", "VP8 key frames sent, by role.", []string{"role"}, nil)
	descFollowed = prometheus.NewDesc("tandem_frames_followed_total", "Frames of the agents' stream that were the customers' encoding, sent while the mask painted nothing.", nil, nil)
	descFollowBr = prometheus.NewDesc("tandem_follow_breaks_total", "Times the agents' stream stopped following the customers' encoding (a painted picture, a missed one, no customer watching).", nil, nil)
	descDropped  = prometheus.NewDesc("tandem_frames_dropped_total", "Frames replaced by a newer one before encoding, by role.", []string{"role"}, nil)
	descBytes    = prometheus.NewDesc("tandem_video_bytes_total", "VP8 bytes sent, by role (once per role, whatever the viewer count).", []string{"role"}, nil)
	descEncodeS  = prometheus.NewDesc("tandem_encode_seconds_total", "Time spent in the VP8 encoder, by role.", []string{"role"}, nil)
	descBrowserC = prometheus.NewDesc("tandem_session_browser_cpu_seconds_total", "CPU time of each live session's browser processes.", []string{"company_id", "session_id"}, nil)
	descSessCap  = prometheus.NewDesc("tandem_session_frames_captured_total", "Screencast frames received and decoded, per live session.", []string{"company_id", "session_id"}, nil)
	descBrowserM = prometheus.NewDesc("tandem_session_browser_memory_bytes", "Memory (PSS) of each live session's browser processes.", []string{"company_id", "session_id"}, nil)
	descStartH   = prometheus.NewDesc("tandem_browser_start_seconds", "How long browser starts took, by kind (warm: ahead of demand, cold: for a waiting session).", []string{"kind"}, nil)
	descWarm     = prometheus.NewDesc("tandem_browsers_warm", "Started browsers waiting for a session.", nil, nil)
	descStarts   = prometheus.NewDesc("tandem_browser_starts_total", "Browser starts, by kind (warm, cold, failed).", []string{"kind"}, nil)
	descStartS   = prometheus.NewDesc("tandem_browser_last_start_seconds", "How long the latest browser start took.", nil, nil)
	descMaskF    = prometheus.NewDesc("tandem_mask_frames_total", "Captured frames that went through the agents' mask.", nil, nil)
	descMaskOK   = prometheus.NewDesc("tandem_mask_masked_total", "Frames masked and safe for the agents.", nil, nil)
	descMaskHeld = prometheus.NewDesc("tandem_mask_held_total", "Frames the mask could not vouch for: never shown to agents.", nil, nil)
	descMaskPull = prometheus.NewDesc("tandem_mask_flushes_total", "Reports pulled from pages for frames newer than their reports.", nil, nil)
	descMaskP    = prometheus.NewDesc("tandem_mask_pauses_total", "Times agents were told masking paused.", nil, nil)
	descMaskRf   = prometheus.NewDesc("tandem_mask_refused_total", "Agent events refused in masked content.", nil, nil)
	descMaskS    = prometheus.NewDesc("tandem_mask_seconds_total", "Time spent planning and painting masks.", nil, nil)
	descRestart  = prometheus.NewDesc("tandem_browser_restarts_total", "Sessions' dead browsers, by result (restarted; failed: the session ended as browser_failed).", []string{"result"}, nil)
	descLimits   = prometheus.NewDesc("tandem_browser_limits_info", "What holds each browser (placement: cgroup or process-group) and enforces its memory limit (memory: cgroup, the kernel's memory.max, or watchdog, PSS polled); always 1 (docs/limits.md).", []string{"memory", "placement"}, nil)
	descScreen   = prometheus.NewDesc("tandem_screenshare_packets_total", "RTP packets of customers' shared screens, by result (relayed to agents, or dropped: no share on).", []string{"result"}, nil)
)

// Describe implements prometheus.Collector.
func (w *Worker) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descPaused, descReduced, descSwitches, descCapacity, descViewers, descCaptured, descDecodeEr,
		descInputDr, descInputRf, descEncoded, descKeys, descFollowed, descFollowBr, descDropped, descBytes, descEncodeS, descWarm, descStarts, descStartS,
		descBrowserC, descBrowserM, descSessCap, descStartH,
		descMaskF, descMaskOK, descMaskHeld, descMaskPull, descMaskP, descMaskRf, descMaskS, descScreen, descRestart, descLimits} {
		ch <- d
	}
	w.serverTime.Describe(ch)
}

// Paths of tandem_server_seconds.
const (
	pathInput = "input" // a viewer's event received → handed to the tab
	pathFrame = "frame" // a screencast frame received → its RTP written, per role
)

// newServerTime is the histogram of Tandem's own time on its two hot paths,
// without Chromium's part (docs/benchmarks.md): from 0.25 ms to 0.6 s in
// steps of 25 %, so that a median read from the buckets is within a few
// tenths of a millisecond around the 10 ms target.
func newServerTime() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_server_seconds",
		Help:    "Tandem's own time: a viewer's input event received to dispatched to the tab (path=input), a screencast frame received from Chromium to its RTP written (path=frame); by role.",
		Buckets: prometheus.ExponentialBuckets(0.00025, 1.25, 36),
	}, []string{"path", "role"})
}

// Collect implements prometheus.Collector: the ended sessions' totals plus
// the live sessions' counters, read at scrape time.
func (w *Worker) Collect(ch chan<- prometheus.Metric) {
	w.serverTime.Collect(ch)
	w.mu.Lock()
	sum := totals{captured: w.done.captured, decodeErrors: w.done.decodeErrors, droppedInput: w.done.droppedInput,
		refusedInput: w.done.refusedInput, mask: w.done.mask, screenRelay: w.done.screenRelay, screenDrop: w.done.screenDrop}
	for _, st := range w.done.roles {
		st.Viewers = 0
		sum.addRole(st)
	}
	live := make([]*session, 0, len(w.sessions))
	for _, s := range w.sessions {
		live = append(live, s)
	}
	w.mu.Unlock()
	for _, s := range live {
		s.addTo(&sum)
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	gauge(descSessions, float64(len(live)))
	gauge(descCapacity, float64(w.cfg.MaxSessions))
	counter(descCaptured, float64(sum.captured))
	counter(descDecodeEr, float64(sum.decodeErrors))
	counter(descInputDr, float64(sum.droppedInput))
	counter(descInputRf, float64(sum.refusedInput))
	for _, role := range roles {
		st := sum.roles[role]
		gauge(descViewers, float64(st.Viewers), role)
		counter(descEncoded, float64(st.Frames), role)
		counter(descKeys, float64(st.KeyFrames), role)
		counter(descDropped, float64(st.Dropped), role)
		counter(descBytes, float64(st.Bytes), role)
		counter(descEncodeS, st.EncodeTime.Seconds(), role)
	}
	counter(descFollowed, float64(sum.roles[RoleAgent].Followed))
	counter(descFollowBr, float64(sum.roles[RoleAgent].FollowBreaks))
	counter(descMaskF, float64(sum.mask.Frames))
	counter(descMaskOK, float64(sum.mask.Masked))
	counter(descMaskHeld, float64(sum.mask.Held))
	counter(descMaskPull, float64(sum.mask.Flushes))
	counter(descMaskP, float64(sum.mask.Pauses))
	counter(descMaskRf, float64(sum.mask.Refused))
	counter(descMaskS, sum.mask.MaskTime.Seconds())
	paused, reduced := 0, 0
	for _, s := range live {
		if s.lease().CapturePaused() {
			paused++
		}
		if s.lease().CaptureReduced() {
			reduced++
		}
		u := s.lease().Usage()
		counter(descBrowserC, u.CPU.Seconds(), s.req.Company, s.req.SessionID)
		gauge(descBrowserM, float64(u.Memory), s.req.Company, s.req.SessionID)
		counter(descSessCap, float64(s.captured.Load()), s.req.Company, s.req.SessionID)
		counter(descSwitches, float64(s.lease().CaptureSwitches()), s.req.Company, s.req.SessionID)
	}
	gauge(descPaused, float64(paused))
	gauge(descReduced, float64(reduced))
	counter(descScreen, float64(sum.screenRelay), "relayed")
	counter(descScreen, float64(sum.screenDrop), "dropped")
	counter(descRestart, float64(w.restarted.Load()), "restarted")
	counter(descRestart, float64(w.restartFailed.Load()), "failed")
	st := w.pool.Stats()
	gauge(descWarm, float64(st.Warm))
	if st.MemoryLimit != "" {
		gauge(descLimits, 1, st.MemoryLimit, st.Placement)
	}
	counter(descStarts, float64(st.WarmStarts), "warm")
	counter(descStarts, float64(st.ColdStarts), "cold")
	counter(descStarts, float64(st.FailedStarts), "failed")
	gauge(descStartS, st.LastStart.Seconds())
	for k, kind := range []string{"warm", "cold"} {
		buckets := map[float64]uint64{}
		var n uint64
		for i, bound := range browserpool.StartBuckets {
			n += st.StartTimes.Counts[k][i]
			buckets[bound] = n
		}
		n += st.StartTimes.Counts[k][len(browserpool.StartBuckets)]
		ch <- prometheus.MustNewConstHistogram(descStartH, n, st.StartTimes.Sum[k].Seconds(), buckets, kind)
	}
}

// addTo adds the session's counters to sum.
func (s *session) addTo(sum *totals) {
	sum.captured += s.captured.Load()
	sum.decodeErrors += s.decodeErrors.Load()
	sum.droppedInput += uint64(s.droppedInput.Load())
	sum.refusedInput += uint64(s.refusedInput.Load())
	sum.screenRelay += s.screenRelay.Load()
	sum.screenDrop += s.screenDrop.Load()
	for _, role := range roles {
		sum.addRole(s.enc[role].Stats())
	}
	if s.mask != nil {
		sum.addMask(s.mask.snapshot())
	}
}
