package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// Files the page asks for (docs/files.md). A file chooser the page opens,
// whoever clicked it, is intercepted by the lease; the customers are asked,
// and a customer picks files on their own device and sends them on the
// "files" DataChannel: for each file a header
// {"type":"file","name":…,"size":…} and then its bytes as binary messages,
// and at the end {"type":"files_done"}, or {"type":"files_cancel"}. The
// worker writes them into the browser's own folder (Lease.CreateUpload),
// gone with the browser when the session ends, and puts them in the input.
// Agents never send files.

// Limits of what a customer sends for one chooser.
const (
	MaxFileBytes   = 20 << 20 // one file
	MaxUploadBytes = 50 << 20 // all the files of one chooser
	MaxUploadFiles = 20
	maxFileName    = 200 // bytes of a file name
)

// Refusals of a customer's files.
const (
	RefusedFileTooLarge = "file_too_large"
	RefusedFileBad      = "file_bad"
)

// File chooser notice states.
const (
	ChooserOpen     = "open"     // to customers: pick files (Multiple says how many)
	ChooserClosed   = "closed"   // the files went in, or the chooser is gone
	ChooserCustomer = "customer" // to agents: the customer is asked for the files
)

// fileMessage is a text message of the "files" channel.
type fileMessage struct {
	Type string `json:"type"` // "file", "files_done", "files_cancel"
	Name string `json:"name,omitempty"`
	Size int64  `json:"size,omitempty"`
}

// uploads is the session's open file chooser and the files being received
// for it. Its messages come on the customers' peers' goroutines; the CDP
// calls run in fileLoop.
type uploads struct {
	done chan upload // cap 1: a set to put in the input (fileLoop)

	mu      sync.Mutex
	chooser *browserpool.FileChooser // guarded by mu: the open chooser, nil none
	ver     int64                    // guarded by mu: bumped for each chooser
	cur     *receiving               // guarded by mu: the set a customer is sending
}

// receiving is a set of files coming from one customer viewer.
type receiving struct {
	viewerID string
	ver      int64
	paths    []string
	total    int64
	f        *os.File // the file being written; nil between files
	left     int64    // its bytes still to come
}

// upload is a finished set (nil paths: cancelled) for the chooser of ver.
type upload struct {
	ver   int64
	paths []string
}

// fileLoop takes the page's file choosers and fills them, until ctx ends.
func (s *session) fileLoop(ctx context.Context) error {
	defer func() {
		s.files.mu.Lock()
		s.files.abortLocked()
		s.files.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case fc := <-s.lease().FileChoosers():
			s.files.mu.Lock()
			s.files.chooser = &fc
			s.files.ver++
			s.files.abortLocked()
			s.files.mu.Unlock()
			s.setChooser(true, fc.Multiple)
		case up := <-s.files.done:
			s.files.mu.Lock()
			fc := s.files.chooser
			if fc == nil || up.ver != s.files.ver {
				s.files.mu.Unlock()
				continue // a newer chooser took its place
			}
			s.files.chooser = nil
			s.files.mu.Unlock()
			if err := s.lease().SetFiles(ctx, *fc, up.paths); err != nil && ctx.Err() == nil {
				s.log.Info("set the chosen files", zap.Error(err)) // the input went away meanwhile
			}
			s.setChooser(false, false)
		}
	}
}

// chooserState is what the viewers are told of the page's file chooser.
// It is told like the control and location states (masker.notify): each
// viewer once per version, again to a new peer of the same viewer, and on
// a later tick to one whose channel was not open yet. A viewer that joins
// while a chooser is open learns it too.
type chooserState struct {
	ver       int64  // bumped on every change; 0: the page never opened one
	customers []byte // the notice to customers
	agents    []byte // the notice to agents
}

// setChooser records that the page's chooser opened or closed and tells
// the viewers. Customers are asked for the files; agents learn that the
// customer is asked, and when it is over.
func (s *session) setChooser(open, multiple bool) {
	cust := protocol.Notice{Type: protocol.TypeFileChooser, State: ChooserClosed}
	agent := cust
	if open {
		cust.State, cust.Multiple, cust.MaxBytes = ChooserOpen, multiple, MaxFileBytes
		agent.State = ChooserCustomer
	}
	s.mu.Lock()
	s.chooser = chooserState{ver: s.chooser.ver + 1, customers: protocol.Encode(cust), agents: protocol.Encode(agent)}
	s.mu.Unlock()
	s.mask.notify()
}

// tellRoles sends toCustomers to every customer viewer and toAgents (when
// it has a type) to every agent. A viewer whose channel is not open misses
// it: for a state a late viewer must learn, see masker.notify.
func (s *session) tellRoles(toCustomers, toAgents protocol.Notice) {
	s.mu.Lock()
	var cust, agents []string
	for id, vw := range s.viewers {
		if vw.v.Role == RoleCustomer {
			cust = append(cust, id)
		} else {
			agents = append(agents, id)
		}
	}
	s.mu.Unlock()
	for _, id := range cust {
		s.notify(id, protocol.Encode(toCustomers))
	}
	if toAgents.Type != "" {
		for _, id := range agents {
			s.notify(id, protocol.Encode(toAgents))
		}
	}
}

// onFile takes one message of a customer's "files" channel (on its peer's
// goroutine). Anything wrong ends the set: the customer is told and may
// pick again.
func (s *session) onFile(v signaling.Viewer, data []byte, binary bool) {
	if ok, _ := s.mayInput(v, input.Event{Kind: input.KindKey}); !ok {
		return // not let in yet: the chooser was never shown to it
	}
	if reason, err := s.files.take(s, v, data, binary); err != nil {
		s.log.Info("file from the customer refused", zap.String("viewer_id", v.ID), zap.Error(err))
		n := protocol.Notice{Type: "refused", Reason: reason, Message: refusalMessages[reason]}
		s.notify(v.ID, protocol.Encode(n))
	}
}

var errNoChooser = errors.New("no file chooser is open")

func (u *uploads) take(s *session, v signaling.Viewer, data []byte, binary bool) (reason string, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.chooser == nil {
		u.abortLocked()
		if binary {
			return "", nil // the rest of a set whose chooser went away
		}
		return RefusedFileBad, errNoChooser
	}
	r := u.cur
	if r != nil && (r.viewerID != v.ID || r.ver != u.ver) {
		if r.ver == u.ver {
			// Another customer viewer is sending for this chooser.
			return RefusedFileBad, errors.New("another viewer is sending files")
		}
		u.abortLocked()
		r = nil
	}
	defer func() {
		if err != nil {
			u.abortLocked()
		}
	}()
	if binary {
		if r == nil || r.f == nil {
			return RefusedFileBad, errors.New("file data without a header")
		}
		if int64(len(data)) > r.left {
			return RefusedFileBad, errors.New("more data than the header said")
		}
		if _, err := r.f.Write(data); err != nil {
			return RefusedFileBad, err
		}
		r.left -= int64(len(data))
		if r.left == 0 {
			err := r.f.Close()
			r.f = nil
			if err != nil {
				return RefusedFileBad, err
			}
		}
		return "", nil
	}
	var m fileMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return RefusedFileBad, fmt.Errorf("bad message: %w", err)
	}
	switch m.Type {
	case "file":
		if r == nil {
			r = &receiving{viewerID: v.ID, ver: u.ver}
			u.cur = r
		}
		if r.f != nil || r.left > 0 {
			return RefusedFileBad, errors.New("a header before the last file ended")
		}
		if len(r.paths) >= MaxUploadFiles || (!u.chooser.Multiple && len(r.paths) >= 1) {
			return RefusedFileBad, errors.New("too many files")
		}
		if m.Size < 0 || m.Size > MaxFileBytes || r.total+m.Size > MaxUploadBytes {
			return RefusedFileTooLarge, fmt.Errorf("file of %d bytes", m.Size)
		}
		name, ok := cleanFileName(m.Name)
		if !ok {
			return RefusedFileBad, fmt.Errorf("file name %q", m.Name)
		}
		path, f, err := s.lease().CreateUpload(name)
		if err != nil {
			return RefusedFileBad, err
		}
		r.paths = append(r.paths, path)
		r.total += m.Size
		r.left = m.Size
		r.f = f
		if m.Size == 0 {
			r.f = nil
			if err := f.Close(); err != nil {
				return RefusedFileBad, err
			}
		}
		return "", nil
	case "files_done":
		if r == nil || r.f != nil || r.left > 0 || len(r.paths) == 0 {
			return RefusedFileBad, errors.New("the files ended early")
		}
		u.cur = nil
		u.finish(upload{ver: u.ver, paths: r.paths})
		return "", nil
	case "files_cancel":
		u.abortLocked()
		u.finish(upload{ver: u.ver})
		return "", nil
	}
	return RefusedFileBad, fmt.Errorf("message type %q", m.Type)
}

// finish hands a set to fileLoop, replacing one it has not taken yet.
func (u *uploads) finish(up upload) {
	for {
		select {
		case u.done <- up:
			return
		default:
		}
		select {
		case <-u.done:
		default:
		}
	}
}

// abortLocked drops the set being received; its files stay until the
// session ends.
func (u *uploads) abortLocked() {
	if u.cur != nil && u.cur.f != nil {
		_ = u.cur.f.Close()
	}
	u.cur = nil
}

// cleanFileName returns name as a single path element the page may see:
// no directories, no control characters, not hidden, at most maxFileName
// bytes.
func cleanFileName(name string) (string, bool) {
	if !utf8.ValidString(name) {
		return "", false
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	for len(name) > maxFileName {
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	if name == "" {
		return "", false
	}
	return name, true
}
