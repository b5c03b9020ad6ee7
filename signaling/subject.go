package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/tandem-cobrowse/tandem/pkg/bus"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// Errors callers act on.
var (
	// ErrBadToken means a company, session, viewer id or role is not a
	// valid subject token (see ValidToken).
	ErrBadToken = errors.New("signaling: bad subject token")
	// ErrBadName means a viewer's display name is too long, not UTF-8 or
	// holds control characters.
	ErrBadName = errors.New("signaling: bad display name")
)

// Limits of the values carried in subjects and join headers.
const (
	MaxTokenLen = bus.MaxTokenLen // a company, session, viewer id or role
	MaxNameLen  = 128             // a display name, in bytes of UTF-8
)

// The join message (docs in doc.go).
const (
	typeJoin    = "join"
	headerRole  = "Tandem-Role"
	headerName  = "Tandem-Name"  // percent-encoded UTF-8
	headerError = "Tandem-Error" // in a join reply: the refusal's error code
)

var joinBody = []byte(`{"type":"join"}`)

// ValidToken reports whether s can be one token of a NATS subject: 1 to
// MaxTokenLen characters of [A-Za-z0-9_-]. Tokens can therefore never hold
// the separator "." or the wildcards "*" and ">".
func ValidToken(s string) bool { return bus.ValidToken(s) }

func validName(s string) bool {
	if len(s) > MaxNameLen || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// Viewer is one viewer of a session: where its signaling goes (Company,
// Session, ID are subject tokens) and who it is (Role, a token such as
// "customer" or "agent", and an optional display Name).
type Viewer struct {
	Company, Session, ID, Role, Name string
}

// Validate reports a Viewer that cannot be carried on NATS.
func (v Viewer) Validate() error {
	for _, f := range []struct{ name, val string }{
		{"company", v.Company}, {"session", v.Session}, {"viewer id", v.ID}, {"role", v.Role},
	} {
		if !ValidToken(f.val) {
			return fmt.Errorf("%w: %s %q", ErrBadToken, f.name, f.val)
		}
	}
	if !validName(v.Name) {
		return ErrBadName
	}
	return nil
}

func upSubject(company, session, viewer string) string {
	return "tandem.sig." + company + "." + session + "." + viewer + ".up"
}

func downSubject(company, session, viewer string) string {
	return "tandem.sig." + company + "." + session + "." + viewer + ".down"
}

// parseUpSubject returns the viewer id of an up subject of the given
// session, or false.
func parseUpSubject(subject, company, session string) (string, bool) {
	t := strings.Split(subject, ".")
	if len(t) != 6 || t[0] != "tandem" || t[1] != "sig" || t[2] != company || t[3] != session ||
		t[5] != "up" || !ValidToken(t[4]) {
		return "", false
	}
	return t[4], true
}

// joinMsg builds the join message of v on its up subject.
func joinMsg(v Viewer) *nats.Msg {
	m := nats.NewMsg(upSubject(v.Company, v.Session, v.ID))
	m.Header.Set(headerRole, v.Role)
	if v.Name != "" {
		m.Header.Set(headerName, url.PathEscape(v.Name))
	}
	m.Data = joinBody
	return m
}

// upMessage is one decoded message on an up subject: a join (with the
// viewer's role and name from the headers) or a client signal.
type upMessage struct {
	join       bool
	role, name string
	sig        protocol.Signal
}

// decodeUp decodes a message from an up subject. A join is exactly the body
// {"type":"join"} (whitespace aside) with a valid Tandem-Role header; any
// other body must be a client signal (protocol.DecodeClientSignal).
func decodeUp(data []byte, hdr nats.Header) (upMessage, error) {
	if isJoin(data) {
		role := hdr.Get(headerRole)
		if !ValidToken(role) {
			return upMessage{}, fmt.Errorf("%w: join role %q", ErrBadToken, role)
		}
		name, err := url.PathUnescape(hdr.Get(headerName))
		if err != nil || !validName(name) {
			return upMessage{}, ErrBadName
		}
		return upMessage{join: true, role: role, name: name}, nil
	}
	s, err := protocol.DecodeClientSignal(data)
	if err != nil {
		return upMessage{}, err
	}
	return upMessage{sig: s}, nil
}

// isJoin reports whether data is the join body.
func isJoin(data []byte) bool {
	if len(data) > 64 {
		return false
	}
	var j struct {
		Type string `json:"type"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil || j.Type != typeJoin {
		return false
	}
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

// errorSignal is a protocol error message for a viewer.
func errorSignal(code, message string) protocol.Signal {
	return protocol.Signal{Type: protocol.TypeError, Error: code, Message: message}
}
