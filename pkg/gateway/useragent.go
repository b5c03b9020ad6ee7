package gateway

import (
	"strings"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// maxUserAgent bounds how much of a User-Agent header is looked at.
const maxUserAgent = 1024

// Markers of browsers, in the order they are tested: many browsers also
// name the one they are built on ("Chrome/... Safari/..."), so the more
// specific come first.
var browserMarkers = []struct{ marker, name string }{
	{"SamsungBrowser/", "Samsung Internet"},
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"Edge/", "Edge"},
	{"OPR/", "Opera"}, {"OPiOS/", "Opera"}, {"Opera", "Opera"},
	{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"}, {"Chrome/", "Chrome"}, {"Chromium/", "Chrome"},
}

var osMarkers = []struct{ marker, name string }{
	{"Android", "Android"},
	{"iPad", "iPadOS"}, {"iPhone", "iOS"}, {"iPod", "iOS"},
	{"CrOS", "ChromeOS"},
	{"Windows", "Windows"},
	{"Macintosh", "macOS"}, {"Mac OS X", "macOS"},
	{"Linux", "Linux"},
}

// clientOf reduces a User-Agent header to a browser, an operating system
// and a kind of device, each from a fixed vocabulary, so that nothing of
// the header itself is kept, logged or audited. It returns nil when it
// recognises nothing.
func clientOf(ua string) *tenant.Client {
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	var c tenant.Client
	for _, b := range browserMarkers {
		if strings.Contains(ua, b.marker) {
			c.Browser = b.name
			break
		}
	}
	if c.Browser == "" && strings.Contains(ua, "Safari/") && strings.Contains(ua, "Version/") {
		c.Browser = "Safari"
	}
	for _, o := range osMarkers {
		if strings.Contains(ua, o.marker) {
			c.OS = o.name
			break
		}
	}
	switch {
	case c.OS == "iPadOS" || strings.Contains(ua, "Tablet") || (c.OS == "Android" && !strings.Contains(ua, "Mobile")):
		c.Device = "tablet"
	case c.OS == "iOS" || c.OS == "Android" || strings.Contains(ua, "Mobile"):
		c.Device = "phone"
	case c.OS != "":
		c.Device = "desktop"
	}
	if c == (tenant.Client{}) {
		return nil
	}
	return &c
}

// clientDetails adds the client's fields to audit details.
func clientDetails(c *tenant.Client, details map[string]string) {
	if c == nil {
		return
	}
	for k, v := range map[string]string{"browser": c.Browser, "os": c.OS, "device": c.Device} {
		if v != "" {
			details[k] = v
		}
	}
}
