package demo

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func do(t *testing.T, h http.Handler, method, target, contentType string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return res, string(b)
}

func TestRoutes(t *testing.T) {
	h := Handler()
	tests := []struct {
		name     string
		method   string
		target   string
		status   int
		contains []string
	}{
		{name: "product list", method: "GET", target: "/demo/", status: 200,
			contains: []string{`href="/demo/product/mug"`, "Hasami Ceramic Mug", "波佐見焼のマグカップ", "¥2,800"}},
		{name: "redirect without slash", method: "GET", target: "/demo", status: http.StatusFound},
		{name: "product page", method: "GET", target: "/demo/product/tea", status: 200,
			contains: []string{"Sencha Tea Sampler", `href="/demo/checkout?item=tea"`}},
		{name: "unknown product", method: "GET", target: "/demo/product/nope", status: 404},
		{name: "checkout", method: "GET", target: "/demo/checkout?item=tote", status: 200,
			contains: []string{
				"Linen Tote Bag",
				`autocomplete="cc-name"`, `autocomplete="cc-number"`, `autocomplete="cc-exp"`, `autocomplete="cc-csc"`,
				`id="buy" type="submit" accesskey="b" data-tandem-block`,
				`<label class="buy-label" for="buy">`,
				`bought: <span id="bought-count">0</span>`,
			}},
		{name: "checkout default item", method: "GET", target: "/demo/checkout", status: 200, contains: []string{"Hasami Ceramic Mug"}},
		{name: "account", method: "GET", target: "/demo/account", status: 200,
			contains: []string{`type="password" autocomplete="current-password"`, `data-tandem-mask id="member-number"`}},
		{name: "stats", method: "GET", target: "/demo/api/stats", status: 200, contains: []string{`{"bought":0}`}},
		{name: "stylesheet", method: "GET", target: "/demo/static/shop.css", status: 200},
		{name: "script", method: "GET", target: "/demo/static/shop.js", status: 200},
		{name: "image", method: "GET", target: "/demo/static/img/mug.svg", status: 200},
		{name: "unknown asset", method: "GET", target: "/demo/static/nope.css", status: 404},
		{name: "unknown page", method: "GET", target: "/demo/nope", status: 404, contains: []string{"Page not found"}},
		{name: "outside demo", method: "GET", target: "/elsewhere", status: 404},
		{name: "buy with GET", method: "GET", target: "/demo/api/buy", status: 404},
		{name: "post to checkout", method: "POST", target: "/demo/checkout", status: http.StatusMethodNotAllowed},
		{name: "post to stats", method: "POST", target: "/demo/api/stats", status: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, b := do(t, h, tt.method, tt.target, "")
			if res.StatusCode != tt.status {
				t.Fatalf("%s %s = %d, want %d", tt.method, tt.target, res.StatusCode, tt.status)
			}
			for _, want := range tt.contains {
				if !strings.Contains(b, want) {
					t.Errorf("%s %s body lacks %q", tt.method, tt.target, want)
				}
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%s %s X-Content-Type-Options = %q", tt.method, tt.target, got)
			}
		})
	}
}

func stats(t *testing.T, h http.Handler) int {
	t.Helper()
	_, b := do(t, h, "GET", "/demo/api/stats", "")
	var v struct{ Bought int }
	if err := json.Unmarshal([]byte(b), &v); err != nil {
		t.Fatalf("stats %q: %v", b, err)
	}
	return v.Bought
}

func TestBuyCountsConcurrently(t *testing.T) {
	h := Handler()
	const n = 64
	var wg sync.WaitGroup
	seen := make([]int, n)
	for i := range n {
		wg.Go(func() {
			req := httptest.NewRequest("POST", "/demo/api/buy", nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var v struct{ Bought int }
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code != 200 {
				t.Errorf("POST /demo/api/buy = %d %q", rec.Code, rec.Body.String())
			}
			seen[i] = v.Bought
		})
	}
	wg.Wait()
	if got := stats(t, h); got != n {
		t.Errorf("after %d buys stats = %d", n, got)
	}
	// Each buy saw a distinct count: no two increments raced.
	counts := map[int]bool{}
	for _, c := range seen {
		if c < 1 || c > n || counts[c] {
			t.Errorf("buy answered count %d twice or out of range", c)
		}
		counts[c] = true
	}
	// The checkout page shows the count.
	_, page := do(t, h, "GET", "/demo/checkout", "")
	if !strings.Contains(page, `bought: <span id="bought-count">64</span>`) {
		t.Errorf("checkout does not show bought: 64")
	}
	// Another Handler has its own count.
	if got := stats(t, Handler()); got != 0 {
		t.Errorf("a new Handler starts at %d, want 0", got)
	}
}

func TestBuyFormPostRedirects(t *testing.T) {
	h := Handler()
	res, _ := do(t, h, "POST", "/demo/api/buy", "application/x-www-form-urlencoded")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/demo/checkout?bought=1") {
		t.Fatalf("form POST = %d to %q, want 303 to the checkout", res.StatusCode, res.Header.Get("Location"))
	}
	if got := stats(t, h); got != 1 {
		t.Errorf("stats after a form post = %d, want 1", got)
	}
}

// The shop's fields carry no name, so no form post can carry what a visitor
// typed (card numbers included) to the server.
func TestFieldsHaveNoNames(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/demo/checkout", "/demo/account"} {
		_, b := do(t, h, "GET", target, "")
		if namedField.MatchString(b) {
			t.Errorf("%s has a named field", target)
		}
	}
}

var namedField = regexp.MustCompile(`<(?:input|select|textarea)\b[^>]*\sname=`)

var refRe = regexp.MustCompile(`(?:src|href)="(/demo/static/[^"]+)"`)

func TestReferencedAssetsExist(t *testing.T) {
	h := Handler()
	for _, page := range []string{"/demo/", "/demo/product/mug", "/demo/checkout", "/demo/account"} {
		_, b := do(t, h, "GET", page, "")
		refs := refRe.FindAllStringSubmatch(b, -1)
		if len(refs) < 3 {
			t.Errorf("%s references only %d assets", page, len(refs))
		}
		for _, m := range refs {
			if res, _ := do(t, h, "GET", m[1], ""); res.StatusCode != 200 {
				t.Errorf("%s references %s, which answers %d", page, m[1], res.StatusCode)
			}
		}
	}
	for _, p := range products {
		if res, _ := do(t, h, "GET", "/demo/static/img/"+p.ID+".svg", ""); res.StatusCode != 200 {
			t.Errorf("product %s has no image", p.ID)
		}
	}
}

// Every page links a help page that opens in a new tab and a receipt to
// download, for trying tabs and downloads in a session.
func TestHelpTabAndReceipt(t *testing.T) {
	h := Handler()
	if _, body := do(t, h, "GET", "/demo/", ""); !strings.Contains(body, `href="/demo/help" target="_blank"`) || !strings.Contains(body, `href="/demo/receipt.txt"`) {
		t.Errorf("the shop links no help tab or receipt")
	}
	res, body := do(t, h, "GET", "/demo/help", "")
	if res.StatusCode != 200 || !strings.Contains(body, "new tab") || !strings.Contains(body, "新しいタブ") {
		t.Errorf("help = %d %q", res.StatusCode, body)
	}
	res, body = do(t, h, "GET", "/demo/receipt.txt", "")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(body, "Sample receipt") {
		t.Errorf("receipt = %d %q %q", res.StatusCode, res.Header.Get("Content-Disposition"), body)
	}
}
