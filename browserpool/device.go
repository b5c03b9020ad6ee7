package browserpool

import (
	"context"
	"math"
	"regexp"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Device is what the tab emulates besides its size: a phone (a mobile
// viewport, touch, a mobile user agent) or not, and the pixel ratio.
type Device struct {
	Mobile bool
	Scale  float64 // device pixel ratio; clamped to 1…MaxScale
}

// MaxScale caps the emulated pixel ratio: a phone's 3 would render nine
// times the pixels for a picture that is sent at CSS size anyway.
const MaxScale = 2

// Clamped returns d as SetView applies it.
func (d Device) Clamped() Device {
	if math.IsNaN(d.Scale) || d.Scale < 1 {
		d.Scale = 1
	}
	d.Scale = math.Round(min(d.Scale, MaxScale)*4) / 4
	return d
}

// mobileUA turns the browser's own user agent into the one of the same
// Chrome on an Android phone (the form Chrome itself sends, with the
// reduced platform).
var chromeVersion = regexp.MustCompile(`(?:Headless)?Chrome/([0-9.]+)`)

func mobileUA(desktop string) string {
	ver := "0.0.0.0"
	if m := chromeVersion.FindStringSubmatch(desktop); m != nil {
		ver = m[1]
	}
	return "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/" + ver + " Mobile Safari/537.36"
}

// emulate applies d to the tab at w×h (the caller holds viewSem); touch
// and the user agent only when the device kind changed, or when full (a
// tab that has not had them yet).
func (l *Lease) emulate(cctx context.Context, w, h int, d Device, full bool) error {
	if _, err := chromedp.Call(cctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: int64(w), Height: int64(h), DeviceScaleFactor: d.Scale, Mobile: d.Mobile,
	}); err != nil {
		return err
	}
	l.mu.Lock()
	was := l.device
	l.mu.Unlock()
	if was.Mobile == d.Mobile && !full {
		return nil
	}
	if _, err := chromedp.Call(cctx, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: d.Mobile, MaxTouchPoints: 5}); err != nil {
		return err
	}
	v, err := chromedp.Call(cctx, browser.GetVersion, cdp.Empty{})
	if err != nil {
		return err
	}
	ua := v.UserAgent
	if d.Mobile {
		ua = mobileUA(ua)
	}
	_, err = chromedp.Call(cctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua})
	return err
}
