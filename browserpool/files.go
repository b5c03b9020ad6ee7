package browserpool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// File choosers (docs/files.md). The tab never shows its own file dialog:
// the lease intercepts every chooser of the top document's process and
// hands it to the session, whose customer picks the files on their own
// device; SetFiles puts them in the input. A chooser in a cross-origin
// frame (its own process) is not intercepted there and opens nothing.

// FileChooser is a file input of the page that asks for files.
type FileChooser struct {
	Node     cdp.BackendNodeID
	Multiple bool
}

// fileChoosers is how many open choosers wait to be read; past it the
// oldest is dropped (a page opening choosers in a loop).
const fileChoosers = 4

// interceptFileChoosers turns the tab's file dialogs into events.
func (l *Lease) interceptFileChoosers(cctx context.Context) error {
	if _, err := chromedp.Call(cctx, page.SetInterceptFileChooserDialog, page.SetInterceptFileChooserDialogParams{Enabled: true}); err != nil {
		return err
	}
	return nil
}

// onFileChooser queues a chooser (on chromedp's event goroutine: it must
// not block).
func (l *Lease) onFileChooser(ev *page.EventFileChooserOpened) {
	if ev.BackendNodeID == 0 {
		return // showOpenFilePicker and the like: no input to fill
	}
	fc := FileChooser{Node: ev.BackendNodeID, Multiple: ev.Mode == page.FileChooserOpenedModeSelectMultiple}
	for {
		select {
		case l.choosers <- fc:
			return
		default:
		}
		select {
		case <-l.choosers:
		default:
		}
	}
}

// FileChoosers gets a value each time the page opens a file chooser. The
// channel is never closed; select on Done as well.
func (l *Lease) FileChoosers() <-chan FileChooser { return l.choosers }

// SetFiles gives the chooser's input the files at paths (none: the
// customer cancelled), as if picked in a dialog: the page gets its input
// and change events.
func (l *Lease) SetFiles(ctx context.Context, fc FileChooser, paths []string) error {
	const what = "set files"
	if err := l.live(what); err != nil {
		return err
	}
	cctx, cancel := l.callCtx(ctx)
	defer cancel()
	if paths == nil {
		paths = []string{}
	}
	if _, err := chromedp.Call(cctx, dom.SetFileInputFiles, dom.SetFileInputFilesParams{Files: paths, BackendNodeID: fc.Node}); err != nil {
		return l.callErr(ctx, what, err)
	}
	return nil
}

// CreateUpload creates the file name (one path element) for the page, in a
// new directory of its own under the browser's own folder, so that the
// page sees name as the file's name. Both belong to the browser's user, who
// must read them; they go with the browser when the lease closes.
func (l *Lease) CreateUpload(name string) (path string, f *os.File, err error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return "", nil, fmt.Errorf("upload: bad file name %q", name)
	}
	if l.dir == "" {
		return "", nil, errors.New("upload: the browser has no folder")
	}
	base := filepath.Join(l.dir, "uploads")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", nil, fmt.Errorf("upload: %w", err)
	}
	dir, err := os.MkdirTemp(base, "f")
	if err != nil {
		return "", nil, fmt.Errorf("upload: %w", err)
	}
	path = filepath.Join(dir, name)
	f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("upload: %w", err)
	}
	if u := l.browserUser(); u != nil {
		for _, p := range []string{base, dir, path} {
			if err := os.Lchown(p, int(u.uid), int(u.gid)); err != nil {
				_ = f.Close()
				return "", nil, fmt.Errorf("upload: chown to %s: %w", u.name, err)
			}
		}
	}
	return path, f, nil
}

// browserUser is the unprivileged user the browser runs as, or nil when it
// runs as Tandem's own.
func (l *Lease) browserUser() *browserUser {
	if l.pool == nil {
		return nil
	}
	return l.pool.spec.user
}
