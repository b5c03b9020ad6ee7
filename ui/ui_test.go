package ui

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestRoutes(t *testing.T) {
	h := Handler()
	tests := []struct {
		name     string
		method   string
		target   string
		status   int
		contains string // in the body
		location string // for redirects
		ctype    string
	}{
		{name: "root redirects", method: "GET", target: "/", status: http.StatusFound, location: "/agent/"},
		{name: "agent without slash redirects", method: "GET", target: "/agent", status: http.StatusFound, location: "/agent/"},
		{name: "agent console", method: "GET", target: "/agent/", status: 200, contains: `src="/assets/agent.js"`, ctype: "text/html; charset=utf-8"},
		{name: "agent session", method: "GET", target: "/agent/s/s_abc-123", status: 200, contains: `src="/assets/agent.js"`},
		{name: "agent session head", method: "HEAD", target: "/agent/s/s_abc", status: 200},
		{name: "admin without slash redirects", method: "GET", target: "/admin", status: http.StatusFound, location: "/admin/"},
		{name: "admin pages", method: "GET", target: "/admin/", status: 200, contains: `src="/assets/admin.js"`, ctype: "text/html; charset=utf-8"},
		{name: "admin unknown subpath", method: "GET", target: "/admin/x", status: 404},
		{name: "join page", method: "GET", target: "/join/demo", status: 200, contains: `src="/assets/join.js"`},
		{name: "join page odd slug", method: "GET", target: "/join/acme.co-jp", status: 200, contains: `src="/assets/join.js"`},
		{name: "customer view", method: "GET", target: "/s/s_abc", status: 200, contains: `src="/assets/customer.js"`},
		{name: "embed script", method: "GET", target: "/embed.js", status: 200, contains: "/api/v1/companies/", ctype: "text/javascript; charset=utf-8"},
		{name: "embed script is not an asset", method: "GET", target: "/assets/embed.js", status: 404},
		{name: "asset js", method: "GET", target: "/assets/viewer.js", status: 200, contains: "export class Viewer", ctype: "text/javascript; charset=utf-8"},
		{name: "asset css", method: "GET", target: "/assets/style.css", status: 200, ctype: "text/css; charset=utf-8"},
		{name: "asset json", method: "GET", target: "/assets/i18n/ja.json", status: 200, ctype: "application/json; charset=utf-8"},
		{name: "asset svg", method: "GET", target: "/assets/icon.svg", status: 200, ctype: "image/svg+xml"},
		{name: "unknown asset", method: "GET", target: "/assets/nope.js", status: 404, contains: `data-i18n="notfound.title"`},
		{name: "asset dir", method: "GET", target: "/assets/", status: 404},
		{name: "asset subdir", method: "GET", target: "/assets/i18n/", status: 404},
		{name: "pages are not assets", method: "GET", target: "/assets/%2e%2e/pages/agent.html", status: 404},
		{name: "unknown path", method: "GET", target: "/nope", status: 404, contains: `data-i18n="notfound.title"`, ctype: "text/html; charset=utf-8"},
		{name: "join without company", method: "GET", target: "/join/", status: 404},
		{name: "join nested", method: "GET", target: "/join/demo/extra", status: 404},
		{name: "join bad slug", method: "GET", target: "/join/%3Cscript%3E", status: 404},
		{name: "session bad id", method: "GET", target: "/s/a%20b", status: 404},
		{name: "session too long", method: "GET", target: "/s/" + strings.Repeat("a", 129), status: 404},
		{name: "customer without id", method: "GET", target: "/s/", status: 404},
		{name: "agent unknown subpath", method: "GET", target: "/agent/x", status: 404},
		{name: "api is not ours", method: "GET", target: "/api/v1/auth/me", status: 404},
		{name: "post to page", method: "POST", target: "/agent/", status: http.StatusMethodNotAllowed},
		{name: "post to unknown", method: "POST", target: "/nope", status: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, h, tt.method, tt.target, nil)
			b := body(t, res)
			if res.StatusCode != tt.status {
				t.Fatalf("%s %s = %d, want %d", tt.method, tt.target, res.StatusCode, tt.status)
			}
			if tt.contains != "" && !strings.Contains(b, tt.contains) {
				t.Errorf("%s %s body lacks %q", tt.method, tt.target, tt.contains)
			}
			if tt.location != "" && res.Header.Get("Location") != tt.location {
				t.Errorf("%s %s Location = %q, want %q", tt.method, tt.target, res.Header.Get("Location"), tt.location)
			}
			if tt.ctype != "" && res.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("%s %s Content-Type = %q, want %q", tt.method, tt.target, res.Header.Get("Content-Type"), tt.ctype)
			}
			if tt.method == "HEAD" && b != "" {
				t.Errorf("HEAD %s has a body of %d bytes", tt.target, len(b))
			}
			// Every answer, error or not, carries the security headers.
			for k, want := range securityHeaders {
				if k == "Content-Security-Policy" && res.StatusCode == http.StatusOK && strings.HasPrefix(tt.target, "/join/") {
					want = joinContentSecurityPolicy // https: logos on the join page only
				}
				if got := res.Header.Get(k); got != want {
					t.Errorf("%s %s header %s = %q, want %q", tt.method, tt.target, k, got, want)
				}
			}
		})
	}
}

func TestSecurityHeaderValues(t *testing.T) {
	csp := securityHeaders["Content-Security-Policy"]
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "media-src 'self' blob:"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows inline code", csp)
	}
	if got := securityHeaders["Referrer-Policy"]; got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q", got)
	}
	if got := securityHeaders["X-Content-Type-Options"]; got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
}

// TestJoinPageCSP: the join page alone may load https: images (the
// company's logo); never http:, and every other directive stays as strict.
func TestJoinPageCSP(t *testing.T) {
	want := strings.Replace(contentSecurityPolicy, "img-src 'self' data: blob:;", "img-src 'self' data: blob: https:;", 1)
	if joinContentSecurityPolicy != want || want == contentSecurityPolicy {
		t.Fatalf("join CSP = %q, want the strict CSP with https: images", joinContentSecurityPolicy)
	}
	if strings.Contains(joinContentSecurityPolicy, "http:") {
		t.Errorf("join CSP %q allows http:", joinContentSecurityPolicy)
	}
	h := Handler()
	if got := get(t, h, "GET", "/join/demo", nil).Header.Get("Content-Security-Policy"); got != joinContentSecurityPolicy {
		t.Errorf("join page CSP = %q", got)
	}
	for _, p := range []string{"/agent/", "/s/s_x", "/join/%3Cx%3E", "/assets/join.js"} {
		if got := get(t, h, "GET", p, nil).Header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
			t.Errorf("%s CSP = %q, want the strict one", p, got)
		}
	}
}

func TestAssetRevalidation(t *testing.T) {
	h := Handler()
	res := get(t, h, "GET", "/assets/viewer.js", nil)
	etag := res.Header.Get("ETag")
	if etag == "" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag = %q, Cache-Control = %q; want an ETag and no-cache", etag, res.Header.Get("Cache-Control"))
	}
	res = get(t, h, "GET", "/assets/viewer.js", map[string]string{"If-None-Match": etag})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match = %d, want 304", res.StatusCode)
	}
	res = get(t, h, "GET", "/assets/viewer.js", map[string]string{"If-None-Match": `"other"`})
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET with a stale ETag = %d, want 200", res.StatusCode)
	}
	if other := get(t, h, "GET", "/assets/agent.js", nil).Header.Get("ETag"); other == etag {
		t.Errorf("two files share the ETag %s", etag)
	}
}

var (
	htmlRefRe   = regexp.MustCompile(`(?:src|href)="(/[^"]*)"`)
	jsImportRe  = regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"](\.[^'"]+)['"]`)
	cssURLRe    = regexp.MustCompile(`url\("?(/[^")]+)"?\)`)
	inlineRe    = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\sstyle="|\son[a-z]+="|javascript:`)
	scriptTagRe = regexp.MustCompile(`(?i)<script\b[^>]*>`)
)

// TestAssetsReferencedExist follows every reference of the pages (src, href,
// module imports, CSS urls, the dictionaries that i18n.js fetches) and checks
// that the handler serves it.
func TestAssetsReferencedExist(t *testing.T) {
	h := Handler()
	seen := map[string]bool{}
	var queue []string
	add := func(from, ref string) {
		if seen[ref] {
			return
		}
		seen[ref] = true
		res := get(t, h, "GET", ref, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s references %s, which answers %d", from, ref, res.StatusCode)
			return
		}
		queue = append(queue, ref)
	}
	pages, err := fs.Glob(files, "pages/*.html")
	if err != nil || len(pages) < 4 {
		t.Fatalf("pages = %v, %v", pages, err)
	}
	for _, p := range pages {
		b, _ := files.ReadFile(p)
		for _, m := range htmlRefRe.FindAllStringSubmatch(string(b), -1) {
			if strings.HasPrefix(m[1], "/assets/") {
				add(p, m[1])
			}
		}
	}
	for _, lang := range []string{"en", "ja"} {
		add("assets/i18n.js", "/assets/i18n/"+lang+".json")
	}
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		b, err := files.ReadFile(strings.TrimPrefix(ref, "/"))
		if err != nil {
			t.Fatalf("read %s: %v", ref, err)
		}
		switch path.Ext(ref) {
		case ".js":
			for _, m := range jsImportRe.FindAllStringSubmatch(string(b), -1) {
				add(ref, path.Join(path.Dir(ref), m[1]))
			}
		case ".css":
			for _, m := range cssURLRe.FindAllStringSubmatch(string(b), -1) {
				add(ref, m[1])
			}
		}
	}
	for _, want := range []string{"/assets/viewer.js", "/assets/i18n.js", "/assets/api.js", "/assets/style.css"} {
		if !seen[want] {
			t.Errorf("no page reaches %s", want)
		}
	}
	// Nothing in the embedded assets is unreachable.
	_ = fs.WalkDir(files, "assets", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !seen["/"+p] {
			t.Errorf("%s is embedded but no page uses it", p)
		}
		return nil
	})
}

// TestNoInlineCode keeps the pages inside the CSP: no inline script, no style
// attribute, no event handler attribute.
func TestNoInlineCode(t *testing.T) {
	pages, _ := fs.Glob(files, "pages/*.html")
	for _, p := range pages {
		b, _ := files.ReadFile(p)
		if m := inlineRe.FindString(string(b)); m != "" {
			t.Errorf("%s has inline code: %q", p, m)
		}
		for _, tag := range scriptTagRe.FindAllString(string(b), -1) {
			if !strings.Contains(tag, `type="module"`) || !strings.Contains(tag, `src="/assets/`) {
				t.Errorf("%s: script tag %s is not an asset module", p, tag)
			}
		}
	}
}

func loadDict(t *testing.T, lang string) map[string]string {
	t.Helper()
	b, err := files.ReadFile("assets/i18n/" + lang + ".json")
	if err != nil {
		t.Fatalf("read %s dictionary: %v", lang, err)
	}
	var d map[string]string
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parse %s dictionary: %v", lang, err)
	}
	return d
}

var placeholderRe = regexp.MustCompile(`\{\w+\}`)

func placeholders(s string) []string {
	p := placeholderRe.FindAllString(s, -1)
	sort.Strings(p)
	return p
}

func TestDictionariesMatch(t *testing.T) {
	en, ja := loadDict(t, "en"), loadDict(t, "ja")
	for k, v := range en {
		jv, ok := ja[k]
		if !ok {
			t.Errorf("key %q is in en.json but not in ja.json", k)
			continue
		}
		if strings.TrimSpace(v) == "" || strings.TrimSpace(jv) == "" {
			t.Errorf("key %q has an empty string", k)
		}
		if !slices.Equal(placeholders(v), placeholders(jv)) {
			t.Errorf("key %q: placeholders en %v, ja %v", k, placeholders(v), placeholders(jv))
		}
	}
	for k := range ja {
		if _, ok := en[k]; !ok {
			t.Errorf("key %q is in ja.json but not in en.json", k)
		}
	}
}

var (
	htmlKeyRe  = regexp.MustCompile(`data-i18n="([^"]+)"`)
	htmlAttrRe = regexp.MustCompile(`data-i18n-attr="([^"]+)"`)
	jsKeyRe    = regexp.MustCompile(`\bt\(\s*'([A-Za-z0-9_.]+)'`)
)

// TestKeysUsedExist checks that every key the pages and modules name is in
// the dictionaries, including the families the code builds at run time.
func TestKeysUsedExist(t *testing.T) {
	en := loadDict(t, "en")
	need := map[string]string{}
	walk := func(glob string, fn func(name, text string)) {
		names, _ := fs.Glob(files, glob)
		for _, n := range names {
			b, _ := files.ReadFile(n)
			fn(n, string(b))
		}
	}
	walk("pages/*.html", func(name, text string) {
		for _, m := range htmlKeyRe.FindAllStringSubmatch(text, -1) {
			need[m[1]] = name
		}
		for _, m := range htmlAttrRe.FindAllStringSubmatch(text, -1) {
			for pair := range strings.SplitSeq(m[1], ";") {
				if _, key, ok := strings.Cut(pair, "="); ok {
					need[strings.TrimSpace(key)] = name
				}
			}
		}
	})
	walk("assets/*.js", func(name, text string) {
		for _, m := range jsKeyRe.FindAllStringSubmatch(text, -1) {
			need[m[1]] = name
		}
	})
	// Keys built from server values (docs/api.md) and viewer states.
	for _, s := range []string{"waiting", "active", "ended", "unknown"} {
		need["state."+s] = "session states"
	}
	for _, r := range []string{"agent_ended", "customer_left", "idle", "max_length", "pin_expired", "browser_lost", "browser_failed", "error", "left", "unknown"} {
		need["reason."+r] = "end reasons"
	}
	for _, s := range []string{"connecting", "live", "reconnecting", "failed", "ended"} {
		need["viewer.state."+s] = "viewer states"
	}
	for _, s := range []string{"session.created", "session.ended", "pin.issued", "pin.redeemed", "pin.failed",
		"customer.joined", "customer.left", "agent.joined", "agent.left", "consent.given", "customer.admitted", "browser.restarted"} {
		need["audit.type."+s] = "audit event types"
	}
	for _, k := range []string{"agent.list.consent", "agent.list.admit", "viewer.waiting.consent", "viewer.waiting.admit",
		"client.device.phone", "client.device.tablet", "client.device.desktop",
		"viewer.refusedReason.no_consent", "viewer.refusedReason.not_admitted", "viewer.refusedReason.masked_field"} {
		need[k] = "keys built at run time"
	}
	// The worker's reasons for holding the agent's picture (masking paused).
	for _, r := range []string{"navigating", "unmeasured", "script_gone", "error"} {
		need["viewer.masking.reason."+r] = "masking reasons"
	}
	if len(need) < 50 {
		t.Fatalf("found only %d keys in use; the scan is broken", len(need))
	}
	for k, where := range need {
		if _, ok := en[k]; !ok {
			t.Errorf("%s uses key %q, which the dictionaries lack", where, k)
		}
	}
}
