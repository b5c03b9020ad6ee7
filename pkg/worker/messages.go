package worker

import (
	"fmt"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/block"
	"github.com/tandem-cobrowse/tandem/pkg/bus"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/urlpolicy"
)

// Subjects and the messages exchanged with gateways over NATS.
const (
	SubjectLease      = "tandem.pool.lease" // any worker of the queue group; gateways place by status first (LeaseSubject)
	QueueWorkers      = "workers"
	subjectLeaseFmt   = "tandem.worker.%s.lease"
	subjectEndFmt     = "tandem.worker.%s.end"
	subjectGateFmt    = "tandem.worker.%s.gate"
	subjectEventFmt   = "tandem.session.%s.%s.event"
	SubjectEventsAll  = "tandem.session.*.*.event"
	subjectStatusFmt  = "tandem.worker.%s.status"
	SubjectStatusAll  = "tandem.worker.*.status"
	StatusInterval    = 2 * time.Second
	defaultLeaseLimit = 30 * time.Second
)

// LeaseSubject is where a gateway asks worker id itself to host a session,
// once the worker's status showed it the most headroom.
func LeaseSubject(workerID string) string { return fmt.Sprintf(subjectLeaseFmt, workerID) }

// EndSubject is where a gateway asks worker id to end a session.
func EndSubject(workerID string) string { return fmt.Sprintf(subjectEndFmt, workerID) }

// GateSubject is where a gateway tells worker id what a session's customer
// allowed (a Gate, as a NATS request answered with a GateReply).
func GateSubject(workerID string) string { return fmt.Sprintf(subjectGateFmt, workerID) }

// EventSubject is where the worker hosting a session publishes its events.
func EventSubject(company, session string) string {
	return fmt.Sprintf(subjectEventFmt, company, session)
}

// LeaseRequest asks a worker to host a new session.
type LeaseRequest struct {
	Company   string    `json:"company"`
	SessionID string    `json:"session_id"`
	StartURL  string    `json:"start_url"`
	Width     int       `json:"width,omitempty"`
	Height    int       `json:"height,omitempty"`
	JoinBy    time.Time `json:"join_by"`              // no customer by then: the session ends as pin_expired
	MustAdmit bool      `json:"must_admit,omitempty"` // nothing is shown to anyone until a Gate says Admitted
	// The company's limits; zero means the worker's Config.
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	MaxDuration time.Duration `json:"max_duration,omitempty"`
	// Mask is what the company masks on top of the built-in rules.
	Mask mask.Policy `json:"mask,omitzero"`
	// Block is what agents may not activate, on top of the built-in rule.
	Block block.Policy `json:"block,omitzero"`
	// Control is how agents get control: ControlAsk, ControlAuto or
	// ControlNever.
	Control string `json:"control,omitempty"`
	// URLs is the company's URL allow and deny lists, checked for every
	// document the tab loads (navigation.go).
	URLs urlpolicy.Policy `json:"urls,omitzero"`
	// AgentClipboard lets agents paste into the tab and copy its
	// selection to their own clipboard; customers always may
	// (clipboard.go).
	AgentClipboard bool `json:"agent_clipboard,omitempty"`
	// Screenshare is whether agents may ask to see the customer's screen:
	// ScreenshareAsk or ScreenshareNever (screenshare.go).
	Screenshare string `json:"screenshare,omitempty"`
	// Downloads lets the page's downloads go to the customers, never to
	// agents (downloads.go); without it the browser denies them.
	Downloads bool `json:"downloads,omitempty"`
}

// LeaseReply answers a LeaseRequest.
type LeaseReply struct {
	WorkerID string `json:"worker_id,omitempty"`
	Error    string `json:"error,omitempty"` // "no_capacity", "invalid_request", "browser_failed"
	Message  string `json:"message,omitempty"`
}

// EndRequest asks a worker to end one of its sessions.
type EndRequest struct {
	Company   string `json:"company"`
	SessionID string `json:"session_id"`
	Reason    string `json:"reason"`
}

// Gate is what a session's customer allowed, as a gateway read it from the
// session's record (SECURITY.md P3). Until Consented, agents get no frame of
// the tab and their input is refused; with the lease's MustAdmit, until
// Admitted, nobody gets a frame and all input is refused. A gate only
// opens: false never takes back what an earlier Gate allowed (the customer
// takes everything back by leaving, which ends the session). Sending the
// same Gate again changes nothing.
type Gate struct {
	Company   string `json:"company"`
	SessionID string `json:"session_id"`
	Consented bool   `json:"consented"` // the customer agreed to share the tab
	Admitted  bool   `json:"admitted"`  // an agent let the customer in
}

// GateReply answers a Gate: empty when applied, else the error
// ("unknown_session": this worker does not host it; "invalid_request").
type GateReply struct {
	Error string `json:"error,omitempty"`
}

// Event is a session event published by the hosting worker.
type Event struct {
	Type      string    `json:"type"` // "viewers", "ended", EventViewerJoined, EventViewerLeft, EventBrowserRestarted, …
	Company   string    `json:"company"`
	SessionID string    `json:"session_id"`
	Reason    string    `json:"reason,omitempty"`
	Customers int       `json:"customers"`
	Agents    int       `json:"agents"`
	ViewerID  string    `json:"viewer_id,omitempty"` // of a viewer event
	Role      string    `json:"role,omitempty"`      // of a viewer event: RoleCustomer or RoleAgent
	Name      string    `json:"name,omitempty"`      // of a viewer event: the viewer's display name
	Selector  string    `json:"selector,omitempty"`  // of a blocked input: what blocked it
	Method    string    `json:"method,omitempty"`    // of a blocked input: how it would have activated it
	URL       string    `json:"url,omitempty"`       // of a blocked navigation or a restarted browser's page: scheme, host and path only
	Size      int64     `json:"size,omitempty"`      // of a download: its bytes
	At        time.Time `json:"at"`
}

// Viewer events: a viewer's join was admitted, and the viewer left (its bye,
// or the session closing). Each admitted viewer gets one of each, in order.
const (
	EventViewerJoined = "viewer_joined"
	EventViewerLeft   = "viewer_left"
)

// Mask events: the agents' picture was held long enough to tell them
// (Reason is the mask's hold reason), and an agent's event was refused by
// the mask guard (Reason "masked_field"; ViewerID is the agent's viewer).
const (
	EventMaskPaused    = "mask_paused"
	EventInputRefused  = "input_refused"
	RefusedMaskedField = "masked_field"
)

// Status is a worker's periodic heartbeat, also sent at once when its load
// changes. Gateways place new sessions on the worker with the most Free
// places, and forget a worker that stopped (Stopped) or whose heartbeats
// stopped (its sessions then end as ReasonWorkerLost).
type Status struct {
	WorkerID    string `json:"worker_id"`
	Sessions    int    `json:"sessions"`
	MaxSessions int    `json:"max_sessions"`
	// Free is how many more sessions the worker would take now: none while
	// it drains or its machine is short of memory or CPU.
	Free         int       `json:"free"`
	Warm         int       `json:"warm"`                    // started browsers waiting for a session
	MemAvailable int64     `json:"mem_available,omitempty"` // bytes, from /proc/meminfo
	Draining     bool      `json:"draining"`
	Stopped      bool      `json:"stopped,omitempty"` // the last status of a worker that stopped on purpose
	At           time.Time `json:"at"`
}

// Reasons a session ends.
const (
	ReasonAgentEnded    = "agent_ended"
	ReasonCustomerLeft  = "customer_left"
	ReasonIdle          = "idle"
	ReasonMaxLength     = "max_length"
	ReasonPINExpired    = "pin_expired"
	ReasonBrowserLost   = "browser_lost"   // the browser died and Config.MaxRestarts says not to replace it
	ReasonBrowserFailed = "browser_failed" // the browser died more often than Config.MaxRestarts allows (recovery.go)
	ReasonMemoryLimit   = "memory_limit"   // the browser used more memory than the pool allows (browserpool.ErrMemoryLimit)
	ReasonError         = "error"
	ReasonShutdown      = "worker_shutdown"
	ReasonWorkerLost    = "worker_lost" // gateways heard no heartbeat of the hosting worker (ended by a gateway)
)

// Reasons of a {"type":"refused"} notice for input the gate held back.
const (
	RefusedNoConsent   = "no_consent"   // an agent's input before the customer agreed
	RefusedNotAdmitted = "not_admitted" // anyone's input before an agent admitted the customer
)

func (r LeaseRequest) validate() error {
	if !bus.ValidToken(r.Company) || !bus.ValidToken(r.SessionID) {
		return fmt.Errorf("company and session_id must be 1 to 64 of [A-Za-z0-9_-]")
	}
	if r.StartURL == "" {
		return fmt.Errorf("start_url missing")
	}
	if r.Screenshare != ScreenshareAsk && r.Screenshare != ScreenshareNever {
		return fmt.Errorf("screenshare %q (want never or nothing)", r.Screenshare)
	}
	if r.IdleTimeout < 0 || r.MaxDuration < 0 {
		return fmt.Errorf("negative idle_timeout or max_duration")
	}
	return nil
}
