package annotate

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScriptDefinesTheTracker(t *testing.T) {
	src := Script()
	for _, want := range []string{"__tandemAnnotate", "pick(id, x, y)", "rects(ids)", "Object.freeze"} {
		if !strings.Contains(src, want) {
			t.Errorf("the script lacks %q", want)
		}
	}
}

// Ids and coordinates reach the page as JSON data, never as code.
func TestExpressionsQuoteTheirArguments(t *testing.T) {
	got := PickExpression(`h1"); evil(); ("`, 1.5, -2)
	want := `globalThis.__tandemAnnotate ? globalThis.__tandemAnnotate.pick("h1\"); evil(); (\"",1.5,-2) : '{"none":true}'`
	if got != want {
		t.Errorf("PickExpression = %s\nwant %s", got, want)
	}
	got = RectsExpression([]string{"h1", `h2"]);evil();//`})
	want = `globalThis.__tandemAnnotate ? globalThis.__tandemAnnotate.rects(["h1","h2\"]);evil();//"]) : "{}"`
	if got != want {
		t.Errorf("RectsExpression = %s\nwant %s", got, want)
	}
	if got := RectsExpression(nil); !strings.Contains(got, ".rects([])") {
		t.Errorf("RectsExpression(nil) = %s, want an empty list", got)
	}
	// Without the script: nothing to pick, every element gone.
	if _, ok, err := ParsePick(`{"none":true}`); ok || err != nil {
		t.Errorf("the pick answer without the script = %v, %v", ok, err)
	}
	if _, gone, err := ParseRects(`{}`, []string{"h1"}); err != nil || len(gone) != 1 {
		t.Errorf("the rects answer without the script = %v, %v", gone, err)
	}
}

func TestParsePick(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Rect
		ok   bool
		bad  bool
	}{
		{in: `{"rect":[10,1500.5,200,60]}`, want: Rect{10, 1500.5, 200, 60}, ok: true},
		{in: `{"none":true}`},
		{in: `{"none":true,"error":"boom"}`, bad: true}, // the script failed
		{in: `{}`},
		{in: `{"rect":[10,20,0,60]}`, bad: true},
		{in: `{"rect":[10,20,30,-1]}`, bad: true},
		{in: `{"rect":[1e8,20,30,40]}`, bad: true},
		{in: `{"rect":"x"}`, bad: true},
		{in: `nope`, bad: true},
	} {
		r, ok, err := ParsePick(tt.in)
		if tt.bad {
			if !errors.Is(err, ErrAnswer) || ok {
				t.Errorf("ParsePick(%s) = %v, %v, %v; want ErrAnswer", tt.in, r, ok, err)
			}
			continue
		}
		if err != nil || ok != tt.ok || r != tt.want {
			t.Errorf("ParsePick(%s) = %v, %v, %v; want %v, %v", tt.in, r, ok, err, tt.want, tt.ok)
		}
	}
}

func TestParseRects(t *testing.T) {
	rects, gone, err := ParseRects(`{"h1":[0,10,20,30],"h2":null,"h4":[0,0,0,0],"h9":[1,2,3,4]}`, []string{"h1", "h2", "h3", "h4"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]Rect{"h1": {0, 10, 20, 30}}, rects); d != "" {
		t.Errorf("rects (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"h2", "h3", "h4"}, gone); d != "" {
		t.Errorf("gone (-want +got):\n%s", d)
	}
	if _, _, err := ParseRects(`[1]`, []string{"h1"}); !errors.Is(err, ErrAnswer) {
		t.Errorf("ParseRects of a list: %v, want ErrAnswer", err)
	}
}

func TestMoved(t *testing.T) {
	r := Rect{10, 20, 30, 40}
	if r.Moved(Rect{10.4, 19.6, 30.3, 40}) {
		t.Error("subpixel jitter counted as a move")
	}
	if !r.Moved(Rect{10, 20.5, 30, 40}) || !r.Moved(Rect{10, 20, 30, 41}) {
		t.Error("a move of half a pixel or more not seen")
	}
}
