package worker

import (
	"context"
	"mime"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
)

// Downloads (docs/files.md): the hosted browser denies them unless the
// company allows them (LeaseRequest.Downloads, off by default). An allowed
// download goes to the session's customers only, on their "files"
// channel, and is removed from the worker once sent; agents never get it,
// nor its name. A refused one tells the customers why.

// EventDownload is a download the page made (Event.Reason "sent", or why
// it was refused; Event.Size its bytes). Its name is never published.
const EventDownload = "download"

// Refusals of a download, told to customers.
const (
	RefusedDownloadDenied   = "download_denied"
	RefusedDownloadTooLarge = "download_too_large"
	RefusedDownloadFailed   = "download_failed"
)

// downloadSendTimeout bounds sending one download to one customer.
const downloadSendTimeout = 2 * time.Minute

// DownloadHeader is the header of a download on the files channel; the
// bytes follow in binary messages, then {"type":"download_done"}.
type DownloadHeader struct {
	Type string `json:"type"` // "download"
	Name string `json:"name"`
	Size int64  `json:"size"`
	MIME string `json:"mime"`
}

// downloadLoop hands the page's downloads to the customers until ctx ends.
func (s *session) downloadLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case d := <-s.lease().Downloads():
			s.deliver(ctx, d)
		}
	}
}

// deliver sends one download to every customer, or tells them why not.
func (s *session) deliver(ctx context.Context, d browserpool.Download) {
	ev := Event{Type: EventDownload, Company: s.req.Company, SessionID: s.req.SessionID, Role: RoleCustomer, Size: d.Size}
	if d.Refused != "" {
		reason := map[string]string{
			browserpool.DownloadDenied:   RefusedDownloadDenied,
			browserpool.DownloadTooLarge: RefusedDownloadTooLarge,
		}[d.Refused]
		if reason == "" {
			reason = RefusedDownloadFailed
		}
		n := protocol.Notice{Type: "refused", Reason: reason, Message: refusalMessages[reason]}
		s.tellRoles(n, protocol.Notice{})
		ev.Reason = reason
		s.w.publishEvent(ev)
		return
	}
	defer os.Remove(d.Path)
	name, ok := cleanFileName(d.Name)
	if !ok {
		name = "download"
	}
	kind := mime.TypeByExtension(filepath.Ext(name))
	if kind == "" {
		kind = "application/octet-stream"
	}
	header := protocol.Encode(DownloadHeader{Type: "download", Name: name, Size: d.Size, MIME: kind})
	trailer := protocol.Encode(protocol.Notice{Type: "download_done"})
	var peers []*rtc.Peer
	s.mu.Lock()
	for _, vw := range s.viewers {
		if vw.v.Role == RoleCustomer && vw.peer != nil {
			peers = append(peers, vw.peer)
		}
	}
	s.mu.Unlock()
	sent := 0
	for _, p := range peers {
		f, err := os.Open(d.Path)
		if err != nil {
			s.log.Warn("open a download", zap.Error(err))
			return
		}
		sctx, cancel := context.WithTimeout(ctx, downloadSendTimeout)
		err = p.SendFile(sctx, header, f, trailer)
		cancel()
		_ = f.Close()
		if err != nil {
			s.log.Debug("send a download to a customer", zap.Error(err))
			continue
		}
		sent++
	}
	ev.Reason = "sent"
	if sent == 0 {
		ev.Reason = RefusedDownloadFailed
	}
	s.log.Info("download", zap.Int64("bytes", d.Size), zap.Int("customers", sent))
	s.w.publishEvent(ev)
}
