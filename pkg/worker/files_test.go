package worker

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// uploadPage has a multiple file input at the top and a single one below;
// on change it reports "name:size:first bytes" of each file, joined by |.
const uploadPage = `<!doctype html><html><body style="margin:0">
<input type="file" id="many" multiple style="position:absolute;left:10px;top:10px;width:300px;height:40px">
<input type="file" id="one" style="position:absolute;left:10px;top:80px;width:300px;height:40px">
<script>
for (const el of document.querySelectorAll('input[type=file]')) {
  el.addEventListener('change', async () => {
    const parts = [];
    for (const f of el.files) parts.push(f.name + ':' + f.size + ':' + (await f.text()).slice(0, 5));
    fetch('/typed?v=' + encodeURIComponent(el.id + '=' + parts.join('|')));
  });
}
</script></body></html>`

func uploadRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/upload", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, uploadPage) })
}

// waitChooser waits for a file_chooser notice of state to v from index from
// on, and returns the index after it.
func waitChooser(ctx context.Context, t *testing.T, v *botviewer.Viewer, who, state string, from int) int {
	t.Helper()
	_, i, err := v.WaitNotice(ctx, from, func(n string) bool {
		return strings.Contains(n, `"type":"`+protocol.TypeFileChooser+`"`) && strings.Contains(n, `"state":"`+state+`"`)
	})
	if err != nil {
		t.Fatalf("%s: no file chooser notice %q: %v; got %q", who, state, err, v.Notices())
	}
	return i + 1
}

// A file chooser the page opens is the customer's to fill, whoever clicked
// it: the files the customer sends arrive in the input with their names
// and bytes; a file over the limit is refused; a cancel leaves the input
// empty; agents are told the customer is choosing (also one who joins
// while it is open) and when it is over, and cannot send files.
func TestFileChooser(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	customer, agent, s := h.sessionOn(ctx, t, LeaseRequest{SessionID: "s_files", StartURL: "/upload"})

	if err := customer.Click(ctx, 100, 30); err != nil {
		t.Fatal(err)
	}
	c := waitChooser(ctx, t, customer, "the customer", ChooserOpen, 0)
	if !strings.Contains(customer.Notices()[c-1], `"multiple":true`) {
		t.Errorf("the chooser of a multiple input: %s", customer.Notices()[c-1])
	}
	a := waitChooser(ctx, t, agent, "the agent", ChooserCustomer, 0)
	// An agent who joins while the chooser is open learns it too.
	late := h.join(ctx, t, "acme", "s_files", RoleAgent)
	waitChooser(ctx, t, late, "the agent who joined late", ChooserCustomer, 0)
	big := bytes.Repeat([]byte("0123456789"), 4000)
	if err := customer.SendFiles(ctx, []botviewer.File{{Name: "見積書.txt", Data: []byte("hello, 世界")}, {Name: "../../big.bin", Data: big}}); err != nil {
		t.Fatal(err)
	}
	waitTyped(ctx, t, h.typed, "many=見積書.txt:13:hello|_.._big.bin:40000:01234")
	c = waitChooser(ctx, t, customer, "the customer", ChooserClosed, c)
	a = waitChooser(ctx, t, agent, "the agent", ChooserClosed, a)

	// Too large, then cancelled: the single input stays empty.
	if err := customer.Click(ctx, 100, 100); err != nil {
		t.Fatal(err)
	}
	c = waitChooser(ctx, t, customer, "the customer", ChooserOpen, c)
	if err := customer.SendFileHeader(ctx, "huge.iso", MaxFileBytes+1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := customer.WaitNotice(ctx, c, func(n string) bool { return strings.Contains(n, RefusedFileTooLarge) }); err != nil {
		t.Errorf("a file over the limit was not refused: %v", err)
	}
	// The agent, in control, cannot send files either.
	grantControl(ctx, t, customer, agent)
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	_ = agent.SendFiles(actx, []botviewer.File{{Name: "agent.txt", Data: []byte("from the agent")}})
	acancel()
	if err := customer.SendFiles(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitChooser(ctx, t, customer, "the customer", ChooserClosed, c)
	if got := evalPage(ctx, t, s, `String(document.getElementById('one').files.length)`); got != "0" {
		t.Errorf("the cancelled input has %s files", got)
	}
	if a == 0 {
		t.Error("the agent was not told")
	}

	// The agent clicks the chooser: the customer is asked.
	if err := agent.Click(ctx, 100, 100); err != nil {
		t.Fatal(err)
	}
	c = waitChooser(ctx, t, customer, "the customer", ChooserOpen, c)
	if err := customer.SendFiles(ctx, []botviewer.File{{Name: "id.pdf", Data: []byte("%PDF-1.7")}}); err != nil {
		t.Fatal(err)
	}
	waitTyped(ctx, t, h.typed, "one=id.pdf:8:%PDF-")
}
