package audit

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tandem-cobrowse/tandem/pkg/bus"
)

// ErrInvalid is returned for an event or argument that breaks a rule (a
// company or session that is not a subject token, an unknown actor form, a
// retention under MinRetention, ...). Wrapped errors say which rule.
var ErrInvalid = errors.New("audit: invalid")

// Event is one audit record. It holds metadata only: never a PIN, password,
// token, typed text or page content.
type Event struct {
	ID      string            `json:"id"`                // set by Record when empty
	Time    time.Time         `json:"time"`              // set by Record when zero; UTC
	Company string            `json:"company"`           // the company's slug
	Session string            `json:"session,omitempty"` // "" for an event of the company (pin.failed)
	Actor   string            `json:"actor"`             // who: "agent:<id>", "apikey:<id>", "customer", "system"
	Type    string            `json:"type"`              // what: one of the Type constants
	Details map[string]string `json:"details,omitempty"` // more metadata, such as "reason"
}

// Event types.
const (
	TypeSessionCreated    = "session.created"     // details: start_url (without query or fragment)
	TypeSessionEnded      = "session.ended"       // details: reason
	TypePINIssued         = "pin.issued"          // details: expires_at; never the PIN
	TypePINRedeemed       = "pin.redeemed"        // details: network; browser, os, device (reduced, never the User-Agent) when known
	TypePINFailed         = "pin.failed"          // of the company, not a session; details: network; never the PIN
	TypeCustomerJoined    = "customer.joined"     // details: viewer_id
	TypeCustomerLeft      = "customer.left"       // details: viewer_id
	TypeAgentJoined       = "agent.joined"        // details: viewer_id, name
	TypeAgentLeft         = "agent.left"          // details: viewer_id, name
	TypeConsentGiven      = "consent.given"       // by the customer: agents may now see the tab
	TypeCustomerAdmitted  = "customer.admitted"   // by an agent, when the company makes agents admit customers
	TypeMaskPaused        = "mask.paused"         // by the system: the agents' picture was held; details: reason
	TypeInputRefused      = "input.refused"       // an agent's event was refused; details: reason, viewer_id; never the input
	TypeControlGranted    = "control.granted"     // an agent got control of the tab; details: viewer_id
	TypeControlEnded      = "control.ended"       // an agent's control ended; details: viewer_id, reason (revoked, released)
	TypeNavigationBlocked = "navigation.blocked"  // by the system: the URL policy refused a document; details: url (no query), where (top, frame), rule
	TypeScreenshareStart  = "screenshare.started" // by the customer: agents see the customer's shared screen; details: viewer_id of the agent that asked
	TypeScreenshareEnd    = "screenshare.ended"   // the share ended; details: reason, viewer_id
	TypeBrowserRestarted  = "browser.restarted"   // by the system: the session's browser died and a fresh one reopened its page; details: reason (crashed, lost), url (no query)
)

// Actors without an ID.
const (
	ActorCustomer = "customer" // the customer of a session, or whoever typed a PIN
	ActorSystem   = "system"   // Tandem itself: a worker, a timeout, an error
)

// AgentActor is the actor of an agent.
func AgentActor(id string) string { return "agent:" + id }

// APIKeyActor is the actor of an integration's API key.
func APIKeyActor(id string) string { return "apikey:" + id }

// Limits of an event's fields.
const (
	MaxDetails     = 16  // entries in Details
	MaxDetailValue = 512 // bytes of one detail value
)

var (
	actorRE     = regexp.MustCompile(`^(customer|system|(agent|apikey):[A-Za-z0-9_-]{1,64})$`)
	typeRE      = regexp.MustCompile(`^[a-z][a-z_]{0,30}(\.[a-z][a-z_]{0,30}){1,2}$`)
	detailKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

// ValidToken reports whether s can be one token of a NATS subject, as
// companies and sessions must: 1 to 64 characters of [A-Za-z0-9_-].
func ValidToken(s string) bool { return bus.ValidToken(s) }

// validate checks an event that Record filled in.
func (ev *Event) validate() error {
	switch {
	case !ValidToken(ev.ID):
		return fmt.Errorf("%w: event id %q", ErrInvalid, ev.ID)
	case !ValidToken(ev.Company):
		return fmt.Errorf("%w: company %q", ErrInvalid, ev.Company)
	case ev.Session != "" && !ValidToken(ev.Session):
		return fmt.Errorf("%w: session %q", ErrInvalid, ev.Session)
	case !actorRE.MatchString(ev.Actor):
		return fmt.Errorf("%w: actor %q", ErrInvalid, ev.Actor)
	case !typeRE.MatchString(ev.Type):
		return fmt.Errorf("%w: type %q", ErrInvalid, ev.Type)
	case len(ev.Details) > MaxDetails:
		return fmt.Errorf("%w: %d details (at most %d)", ErrInvalid, len(ev.Details), MaxDetails)
	}
	for k, v := range ev.Details {
		if !detailKeyRE.MatchString(k) {
			return fmt.Errorf("%w: detail key %q", ErrInvalid, k)
		}
		if len(v) > MaxDetailValue || !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
			return fmt.Errorf("%w: detail %s: at most %d bytes of UTF-8 without control characters", ErrInvalid, k, MaxDetailValue)
		}
	}
	return nil
}
