package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"
)

//go:embed pages assets embed
var files embed.FS

// Security headers sent with every response of the pages. The CSP allows no
// inline script or style; the live tab needs media from blob: and
// mediastream: sources, and the viewer's WebSocket goes to the same origin,
// which connect-src 'self' covers.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; " +
	"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// joinContentSecurityPolicy is the join page's CSP: the strict one, with
// https: images added for the company's logo (Company.Branding.LogoURL), which
// lives on the company's own host. Never http:, and nothing else is relaxed.
var joinContentSecurityPolicy = strings.Replace(contentSecurityPolicy,
	"img-src 'self' data: blob:;", "img-src 'self' data: blob: https:;", 1)

var securityHeaders = map[string]string{
	"Content-Security-Policy":    contentSecurityPolicy,
	"X-Content-Type-Options":     "nosniff",
	"Referrer-Policy":            "no-referrer",
	"X-Frame-Options":            "DENY",
	"Cross-Origin-Opener-Policy": "same-origin",
	"Permissions-Policy":         "camera=(), microphone=(), geolocation=(), payment=(), usb=(), display-capture=(self)",
}

// Content types by file extension, fixed here so that they do not depend on
// the host's MIME database.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".json": "application/json; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// Path parameters that the pages accept. Anything else answers 404, so a
// page never echoes an odd value back into its own URL handling.
var (
	sessionIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	companyPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	etag        string
	contentType string
}

// Handler returns the handler of the pages and their assets:
//
//	GET /assets/...               static files, revalidated by ETag
//	GET /agent/, /agent/s/{id}    the agent console
//	GET /admin/                   the company admin pages (agents, API keys, settings)
//	GET /join/{company}           the PIN form for that company
//	GET /s/{id}                   the customer's live view
//	GET /embed.js                 the help button for a company's own site
//	GET /                         redirect to /agent/
//
// Other paths answer a 404 page, other methods 405. Every response carries
// the security headers (CSP without inline scripts, frame-ancestors 'none',
// nosniff, no referrer). The handler is safe for concurrent use.
func Handler() http.Handler {
	s := &site{assets: loadFiles("assets"), pages: loadFiles("pages"), embed: loadFiles("embed")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", redirectTo("/agent/"))
	mux.HandleFunc("GET /agent", redirectTo("/agent/"))
	mux.Handle("GET /agent/{$}", s.page("agent.html", "", nil))
	mux.Handle("GET /agent/s/{id}", s.page("agent.html", "id", sessionIDPattern))
	mux.HandleFunc("GET /admin", redirectTo("/admin/"))
	mux.Handle("GET /admin/{$}", s.page("admin.html", "", nil))
	mux.Handle("GET /join/{company}", withCSP(joinContentSecurityPolicy, s.page("join.html", "company", companyPattern)))
	mux.Handle("GET /s/{id}", s.page("customer.html", "id", sessionIDPattern))
	mux.HandleFunc("GET /assets/", s.serveAsset)
	mux.HandleFunc("GET /embed.js", func(w http.ResponseWriter, r *http.Request) { serveFile(w, r, s.embed["embed.js"]) })
	mux.HandleFunc("/", s.fallback)
	return secure(mux)
}

// site holds the embedded files. It is read-only after Handler builds it.
type site struct {
	assets map[string]file // by path below assets/
	pages  map[string]file // by file name below pages/
	embed  map[string]file // the script for other sites, below embed/
}

// loadFiles reads every embedded file under dir, keyed by its path below dir.
// The embedded tree is fixed at build time, so an error here is a build
// defect that the package's tests catch.
func loadFiles(dir string) map[string]file {
	out := make(map[string]file)
	_ = fs.WalkDir(files, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := contentTypes[path.Ext(p)]
		if ct == "" {
			ct = "application/octet-stream"
		}
		out[strings.TrimPrefix(p, dir+"/")] = file{
			body:        body,
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
			contentType: ct,
		}
		return nil
	})
	return out
}

func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range securityHeaders {
			h.Set(k, v)
		}
		next.ServeHTTP(w, r)
	})
}

// withCSP replaces the CSP of next's successful answers with csp; its error
// pages keep the strict one.
func withCSP(csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&cspWriter{ResponseWriter: w, csp: csp}, r)
	})
}

// cspWriter sets its CSP just before a 2xx or 304 header goes out.
type cspWriter struct {
	http.ResponseWriter
	csp   string
	wrote bool
}

func (c *cspWriter) WriteHeader(code int) {
	if !c.wrote && (code < 300 || code == http.StatusNotModified) {
		c.Header().Set("Content-Security-Policy", c.csp)
	}
	c.wrote = true
	c.ResponseWriter.WriteHeader(code)
}

func (c *cspWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(b)
}

func redirectTo(target string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	}
}

// page answers the named page when the path parameter param (if any) matches
// valid, and the 404 page otherwise.
func (s *site) page(name, param string, valid *regexp.Regexp) http.Handler {
	f := s.pages[name]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if param != "" && !valid.MatchString(r.PathValue(param)) {
			s.notFound(w)
			return
		}
		serveFile(w, r, f)
	})
}

func (s *site) serveAsset(w http.ResponseWriter, r *http.Request) {
	f, ok := s.assets[strings.TrimPrefix(r.URL.Path, "/assets/")]
	if !ok {
		s.notFound(w)
		return
	}
	serveFile(w, r, f)
}

// fallback answers every path no route claimed: 405 for a method the pages
// never accept, the 404 page otherwise.
func (s *site) fallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.notFound(w)
}

func (s *site) notFound(w http.ResponseWriter) {
	f := s.pages["404.html"]
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write(f.body)
}

// serveFile answers f with its ETag. Browsers revalidate on each load
// (no-cache), so a new build never mixes with old modules, and an unchanged
// file costs a 304.
func serveFile(w http.ResponseWriter, r *http.Request, f file) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
