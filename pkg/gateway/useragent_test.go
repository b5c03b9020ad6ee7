package gateway

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

func TestClientOf(t *testing.T) {
	for _, tc := range []struct {
		name, ua string
		want     *tenant.Client
	}{
		{"Chrome on Android", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
			&tenant.Client{Browser: "Chrome", OS: "Android", Device: "phone"}},
		{"Chrome on an Android tablet", "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
			&tenant.Client{Browser: "Chrome", OS: "Android", Device: "tablet"}},
		{"Samsung Internet", "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
			&tenant.Client{Browser: "Samsung Internet", OS: "Android", Device: "phone"}},
		{"Safari on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
			&tenant.Client{Browser: "Safari", OS: "iOS", Device: "phone"}},
		{"Chrome on iPad", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
			&tenant.Client{Browser: "Chrome", OS: "iPadOS", Device: "tablet"}},
		{"Firefox on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15",
			&tenant.Client{Browser: "Firefox", OS: "iOS", Device: "phone"}},
		{"Edge on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.56",
			&tenant.Client{Browser: "Edge", OS: "Windows", Device: "desktop"}},
		{"Firefox on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
			&tenant.Client{Browser: "Firefox", OS: "Windows", Device: "desktop"}},
		{"Safari on a Mac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
			&tenant.Client{Browser: "Safari", OS: "macOS", Device: "desktop"}},
		{"Opera on Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0",
			&tenant.Client{Browser: "Opera", OS: "Linux", Device: "desktop"}},
		{"Chromebook", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
			&tenant.Client{Browser: "Chrome", OS: "ChromeOS", Device: "desktop"}},
		{"headless Chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36",
			&tenant.Client{Browser: "Chrome", OS: "Linux", Device: "desktop"}},
		{"curl", "curl/8.5.0", nil},
		{"empty", "", nil},
		{"junk", strings.Repeat("\x00<script>", 500), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, clientOf(tc.ua)); d != "" {
				t.Errorf("clientOf(%q) (-want +got):\n%s", tc.ua, d)
			}
		})
	}
}

// FuzzClientOf: whatever the header, the result holds only words of the
// fixed vocabulary.
func FuzzClientOf(f *testing.F) {
	f.Add("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36")
	f.Add("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Version/17.5 Mobile/15E148 Safari/604.1")
	known := map[string]bool{"": true, "phone": true, "tablet": true, "desktop": true, "Safari": true}
	for _, b := range browserMarkers {
		known[b.name] = true
	}
	for _, o := range osMarkers {
		known[o.name] = true
	}
	f.Fuzz(func(t *testing.T, ua string) {
		c := clientOf(ua)
		if c == nil {
			return
		}
		for _, v := range []string{c.Browser, c.OS, c.Device} {
			if !known[v] {
				t.Fatalf("clientOf(%q) = %+v: %q is not in the vocabulary", ua, c, v)
			}
		}
	})
}
