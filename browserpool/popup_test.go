package browserpool

import (
	"bytes"
	"context"
	"errors"
	"image/color"
	"image/jpeg"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Native popups (a <select>'s list) are separate widgets that the
// screencast does not capture: whatever a masked select holds never reaches
// any picture through its list (docs/masking.md).
func TestSelectPopupIsNotCaptured(t *testing.T) {
	const page = `<!doctype html><body style="margin:0;background:#fff">
<select id="s" style="position:absolute;left:50px;top:50px;width:200px;height:30px">
<option style="background:#f0f;color:#f0f">one</option><option style="background:#f0f;color:#f0f">two</option>
<option style="background:#f0f;color:#f0f">three</option></select>
<script>document.getElementById('s').addEventListener('mousedown', () => { document.title = 'pressed'; });</script></body>`
	l := lease(t, LeaseOptions{Width: 600, Height: 400})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := l.Navigate(ctx, "data:text/html,"+url.PathEscape(page)); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, l, "the page", isColour(color.RGBA{255, 255, 255, 255}))
	dispatch(t, l, click(150, 65)...) // opens the list under the select
	magenta := color.RGBA{255, 0, 255, 255}
	deadline := time.After(3 * time.Second)
	for {
		select {
		case c := <-l.Frames():
			img, err := jpeg.Decode(bytes.NewReader(c.JPEG))
			if err != nil {
				t.Fatal(err)
			}
			for y := 80; y < 200; y += 5 {
				if near(colourAt(img, 150.0/600, float64(y)/400), magenta) {
					t.Fatalf("the select's list is in the screencast at y=%d", y)
				}
			}
		case <-deadline:
			title, err := chromedp.Run(l.bctx, chromedp.Evaluate[string](`document.title`))
			if err != nil || title != "pressed" {
				t.Fatalf("the press never reached the select (title %q, %v): the check saw nothing", title, err)
			}
			return
		case <-l.Done():
			t.Fatal(errors.New("browser lost"))
		}
	}
}
