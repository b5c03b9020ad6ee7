package demo

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed templates static
var files embed.FS

// Headers of every answer. The shop has no inline script or style.
var headers = map[string]string{
	"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
}

var staticTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
}

// product is one article of the shop.
type product struct {
	ID      string
	Name    string // English
	NameJA  string // Japanese subtitle
	Price   int    // yen
	Text    string
	TextJA  string
	Popular bool
}

var products = []product{
	{ID: "mug", Name: "Hasami Ceramic Mug", NameJA: "波佐見焼のマグカップ", Price: 2800, Popular: true,
		Text:   "Stoneware from Hasami, Nagasaki, glazed in a soft indigo. Holds 350 ml and feels right in the hand.",
		TextJA: "長崎・波佐見の磁器。やわらかな藍色の釉薬で仕上げた、手になじむ350 mlのマグです。"},
	{ID: "tote", Name: "Linen Tote Bag", NameJA: "リネンのトートバッグ", Price: 4200,
		Text:   "Washed linen with a cotton lining and an inner pocket. Fits a laptop and a lunch.",
		TextJA: "洗いをかけたリネンに綿の裏地と内ポケット。ノートPCとお弁当が入ります。"},
	{ID: "notebook", Name: "Dot Grid Notebook", NameJA: "ドット方眼ノート", Price: 1100,
		Text:   "A5, 160 pages of fountain-pen friendly paper, lay-flat binding.",
		TextJA: "A5判160ページ。万年筆でもにじみにくい紙と、平らに開く製本。"},
	{ID: "tea", Name: "Sencha Tea Sampler", NameJA: "煎茶の飲み比べセット", Price: 3600, Popular: true,
		Text:   "Three first-flush senchas from Shizuoka, Kagoshima and Uji, 50 g each.",
		TextJA: "静岡・鹿児島・宇治の一番茶を各50 g。香りと甘みの違いをお楽しみください。"},
	{ID: "furoshiki", Name: "Furoshiki Wrapping Cloth", NameJA: "風呂敷", Price: 2400,
		Text:   "A 70 cm square of printed cotton: wrap a gift, a bottle or your groceries.",
		TextJA: "70 cm角のプリント綿。贈り物やボトル、日々のお買い物を包めます。"},
	{ID: "chopsticks", Name: "Walnut Chopsticks", NameJA: "くるみ材のお箸", Price: 1800,
		Text:   "Hand-planed walnut, finished with food-safe oil. A pair, 23 cm.",
		TextJA: "手で削り出したくるみ材に、食品用オイルで仕上げ。23 cm、一膳。"},
}

func productByID(id string) (product, bool) {
	for _, p := range products {
		if p.ID == id {
			return p, true
		}
	}
	return product{}, false
}

// yen formats a price as the shop shows it: ¥12,800.
func yen(n int) string {
	digits := strconv.Itoa(n)
	var b strings.Builder
	b.WriteString("¥")
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}

// shop is the state of one Handler.
type shop struct {
	pages  *template.Template
	static map[string][]byte

	mu     sync.Mutex
	bought int // purchases so far; guarded by mu
}

// Handler returns the demo shop. It answers paths under /demo/:
//
//	GET  /demo/                 product list
//	GET  /demo/product/{id}     one product
//	GET  /demo/checkout         checkout form with card fields and "Buy now"
//	GET  /demo/account          sign-in form and masked member details
//	POST /demo/api/buy          counts a purchase → {"bought": n}
//	GET  /demo/api/stats        → {"bought": n}
//	GET  /demo/static/...       stylesheet, script, images
//
// Each Handler has its own purchase count, starting at zero. Other paths
// answer 404.
func Handler() http.Handler {
	s := &shop{
		pages:  template.Must(template.New("").Funcs(template.FuncMap{"yen": yen}).ParseFS(files, "templates/*.html")),
		static: map[string][]byte{},
	}
	_ = fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			s.static[strings.TrimPrefix(p, "static/")], err = files.ReadFile(p)
		}
		return err
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/demo/", http.StatusFound)
	})
	mux.HandleFunc("GET /demo/{$}", s.list)
	mux.HandleFunc("GET /demo/product/{id}", s.product)
	mux.HandleFunc("GET /demo/checkout", s.checkout)
	mux.HandleFunc("GET /demo/account", s.account)
	mux.HandleFunc("POST /demo/api/buy", s.buy)
	mux.HandleFunc("GET /demo/api/stats", s.stats)
	mux.HandleFunc("GET /demo/static/", s.asset)
	// A help page that opens in a new tab and a receipt to download: what
	// a visitor tries tabs and downloads with (docs/tabs.md, docs/files.md).
	mux.HandleFunc("GET /demo/help", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(helpPage))
	})
	mux.HandleFunc("GET /demo/receipt.txt", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="komorebi-receipt.txt"`)
		_, _ = w.Write([]byte("Komorebi Goods / 木漏れ日雑貨店\nSample receipt: nothing was sold.\n"))
	})
	mux.HandleFunc("/", s.notFound)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		mux.ServeHTTP(w, r)
	})
}

// count returns the number of purchases so far.
func (s *shop) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bought
}

type pageData struct {
	Title    string
	Nav      string
	Products []product
	Product  product
	Bought   int
	Done     bool
}

func (s *shop) render(w http.ResponseWriter, status int, name string, data pageData) {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *shop) list(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "list.html", pageData{Title: "Products", Nav: "list", Products: products})
}

func (s *shop) product(w http.ResponseWriter, r *http.Request) {
	p, ok := productByID(r.PathValue("id"))
	if !ok {
		s.notFound(w, r)
		return
	}
	s.render(w, http.StatusOK, "product.html", pageData{Title: p.Name, Nav: "list", Product: p})
}

func (s *shop) checkout(w http.ResponseWriter, r *http.Request) {
	p, ok := productByID(r.URL.Query().Get("item"))
	if !ok {
		p = products[0]
	}
	s.render(w, http.StatusOK, "checkout.html", pageData{
		Title: "Checkout", Nav: "checkout", Product: p, Bought: s.count(), Done: r.URL.Query().Has("bought"),
	})
}

func (s *shop) account(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "account.html", pageData{Title: "Account", Nav: "account"})
}

// buy counts one purchase. The page's script posts with no body and reads
// the JSON answer; a plain form post (no script) is sent back to the
// checkout page. The request body is never read: the shop keeps no form data.
func (s *shop) buy(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.bought++
	n := s.bought
	s.mu.Unlock()
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data" {
		http.Redirect(w, r, "/demo/checkout?bought=1#bought", http.StatusSeeOther)
		return
	}
	writeJSON(w, n)
}

func (s *shop) stats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.count())
}

func writeJSON(w http.ResponseWriter, bought int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]int{"bought": bought})
}

func (s *shop) asset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/demo/static/")
	b, ok := s.static[name]
	if !ok {
		s.notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", staticTypes[path.Ext(name)])
	w.Header().Set("Cache-Control", "public, max-age=300")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func (s *shop) notFound(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.render(w, http.StatusNotFound, "notfound.html", pageData{Title: "Not found"})
}

// helpPage is the demo's help page, opened in a tab of its own.
const helpPage = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Help · ヘルプ — Komorebi Goods</title>
<link rel="stylesheet" href="/demo/static/shop.css"></head><body><main class="wrap">
<h1>Help</h1><p>This page opened in a new tab. Switch back to the shop with the tab strip above the picture, or close this tab.</p>
<h1 lang="ja">ヘルプ</h1><p lang="ja">このページは新しいタブで開きました。画面上のタブからショップに戻るか、このタブを閉じてください。</p>
</main></body></html>`
