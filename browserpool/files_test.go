package browserpool

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// An upload is a file of its own name in a directory of its own inside the
// browser's folder, refused for names that are not one path element, and
// removed with the browser.
func TestCreateUpload(t *testing.T) {
	p := needPool(t)
	l := lease(t, LeaseOptions{})
	path, f, err := l.CreateUpload("見積書.pdf")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("%PDF"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "見積書.pdf" || !strings.HasPrefix(path, l.dir+string(filepath.Separator)) {
		t.Errorf("upload at %s, want 見積書.pdf under %s", path, l.dir)
	}
	path2, f2, err := l.CreateUpload("見積書.pdf")
	if err != nil {
		t.Fatal(err)
	}
	_ = f2.Close()
	if filepath.Dir(path2) == filepath.Dir(path) {
		t.Errorf("two uploads share %s", filepath.Dir(path))
	}
	if u := p.spec.user; u != nil {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != u.uid {
			t.Errorf("upload owned by %d, want the browser's user %d", uid, u.uid)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x"} {
		if _, _, err := l.CreateUpload(bad); err == nil {
			t.Errorf("CreateUpload(%q) accepted", bad)
		}
	}
	if err := l.Close(); err != nil { // the cleanup's second Close is a no-op
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the upload outlived the browser: %v", err)
	}
}
