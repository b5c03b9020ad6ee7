package browserpool

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
)

// Downloads (docs/files.md). The hosted browser denies downloads unless
// the lease allows them (LeaseOptions.Downloads); then each file is saved
// under the browser's own folder, named by the browser's id for it, and
// handed to the owner through Downloads once complete. Either way the
// owner hears of every download the page starts.

// MaxDownloadBytes bounds one download; a larger one is cancelled.
const MaxDownloadBytes = 20 << 20

// downloadQueue is the capacity of Downloads.
const downloadQueue = 8

// Download is a file the page downloaded, or tried to.
type Download struct {
	Name string // the name the page or server suggested, as is
	Path string // the complete file, "" when refused
	Size int64
	// Refused says why there is no file: DownloadDenied (the session does
	// not allow downloads), DownloadTooLarge, or DownloadFailed.
	Refused string
}

// Reasons of a refused Download.
const (
	DownloadDenied   = "denied"
	DownloadTooLarge = "too_large"
	DownloadFailed   = "failed"
)

// downloadState follows the downloads under way.
type downloadState struct {
	allowed bool
	dir     string
	out     chan Download
	mu      sync.Mutex
	names   map[string]string // guarded by mu: guid → suggested name
}

// Downloads returns the page's downloads (never closed; select on Done).
// A download that finds the channel full is dropped, and logged.
func (l *Lease) Downloads() <-chan Download { return l.downloads.out }

// setDownloads applies the lease's download policy; begin calls it.
func (l *Lease) setDownloads(ctx context.Context, allow bool) error {
	l.downloads.names = make(map[string]string)
	events := true
	p := browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorDeny, EventsEnabled: &events}
	if allow {
		dir := filepath.Join(l.dir, "downloads")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("downloads: %w", err)
		}
		if u := l.browserUser(); u != nil {
			if err := os.Lchown(dir, int(u.uid), int(u.gid)); err != nil {
				return fmt.Errorf("downloads: chown to %s: %w", u.name, err)
			}
		}
		l.downloads.dir, l.downloads.allowed = dir, true
		p.Behavior, p.DownloadPath = browser.SetDownloadBehaviorBehaviorAllowAndName, dir
	}
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, p); err != nil {
		return fmt.Errorf("downloads: %w", err)
	}
	return nil
}

// onDownload follows a download's events (on chromedp's browser reader:
// no blocking, no CDP calls).
func (l *Lease) onDownload(ev any) {
	d := &l.downloads
	switch ev := ev.(type) {
	case *browser.EventDownloadWillBegin:
		if !d.allowed {
			l.offerDownload(Download{Name: ev.SuggestedFilename, Refused: DownloadDenied})
			return
		}
		d.mu.Lock()
		d.names[ev.GUID] = ev.SuggestedFilename
		d.mu.Unlock()
	case *browser.EventDownloadProgress:
		d.mu.Lock()
		name, ok := d.names[ev.GUID]
		done := ev.State != browser.DownloadProgressStateInProgress
		tooLarge := ok && (ev.ReceivedBytes > MaxDownloadBytes || ev.TotalBytes > MaxDownloadBytes)
		if ok && (done || tooLarge) {
			delete(d.names, ev.GUID)
		}
		d.mu.Unlock()
		switch {
		case !ok:
		case tooLarge:
			guid := ev.GUID
			l.goTab(func() {
				ctx, cancel := context.WithTimeout(l.bctx, tabAttachTimeout)
				defer cancel()
				_, _ = chromedp.CallBrowser(ctx, browser.CancelDownload, browser.CancelDownloadParams{GUID: guid})
				_ = os.Remove(filepath.Join(d.dir, guid))
			})
			l.offerDownload(Download{Name: name, Size: int64(ev.TotalBytes), Refused: DownloadTooLarge})
		case ev.State == browser.DownloadProgressStateCompleted:
			l.offerDownload(Download{Name: name, Path: filepath.Join(d.dir, ev.GUID), Size: int64(ev.ReceivedBytes)})
		case done:
			l.offerDownload(Download{Name: name, Refused: DownloadFailed})
		}
	}
}

func (l *Lease) offerDownload(dl Download) {
	select {
	case l.downloads.out <- dl:
	default:
		l.log.Warn("download dropped: nobody takes them", zap.String("refused", dl.Refused))
	}
}
