package block

import (
	"errors"
	"strings"
	"testing"

	"github.com/tandem-cobrowse/tandem/pkg/mask"
)

// Selectors reach the page as JSON data: one that tries to close the string
// and run code stays a string.
func TestScriptCarriesPolicyAsData(t *testing.T) {
	evil := `"]});alert(1);//`
	src, err := Script(Policy{Block: []mask.Selector{{Selector: evil, URLs: []string{"https://shop.example/*"}}}, Allowlist: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(src, "__TANDEM_BLOCK_CONFIG__") {
		t.Fatal("the config placeholder is left in the script")
	}
	if !strings.Contains(src, `"selector":"\"]});alert(1);//"`) || !strings.Contains(src, `"allowlist":true`) {
		t.Fatalf("the policy is not in the script as JSON:\n%s", src[:400])
	}
}

func TestCheckExpressionQuotesItsArguments(t *testing.T) {
	got := CheckExpression(KindKey, 1.5, 2, `'); evil(); ('`, 9)
	want := `globalThis.__tandemBlock ? globalThis.__tandemBlock.check("key",1.5,2,"'); evil(); ('",9) : `
	if !strings.HasPrefix(got, want) {
		t.Fatalf("CheckExpression = %s, want prefix %s", got, want)
	}
	// Without the script the page answers a refusal.
	v, err := ParseVerdict(strings.Trim(got[len(want):], "'"))
	if err != nil || v.OK {
		t.Fatalf("the answer without the script = %+v, %v; want a refusal", v, err)
	}
}

func TestParseVerdict(t *testing.T) {
	cases := map[string]struct {
		in   string
		ok   bool
		bad  bool
		sel  string
		hand string
	}{
		"allowed":          {in: `{"ok":true}`, ok: true},
		"blocked":          {in: `{"ok":false,"selector":"[data-tandem-block]","method":"pointer"}`, sel: "[data-tandem-block]"},
		"frame hand-off":   {in: `{"ok":true,"frame":"F1","x":3,"y":4}`, hand: "F1"},
		"not JSON":         {in: `yes`, bad: true},
		"empty":            {in: ``, bad: true},
		"long selector":    {in: `{"ok":false,"selector":"` + strings.Repeat("x", 500) + `"}`, sel: strings.Repeat("x", 200)},
		"ok is not a bool": {in: `{"ok":"true"}`, bad: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := ParseVerdict(c.in)
			if c.bad {
				if !errors.Is(err, ErrVerdict) || v.OK {
					t.Fatalf("ParseVerdict(%q) = %+v, %v; want a refusing error", c.in, v, err)
				}
				return
			}
			if err != nil || v.OK != c.ok || v.Selector != c.sel || v.Frame != c.hand {
				t.Fatalf("ParseVerdict(%q) = %+v, %v", c.in, v, err)
			}
		})
	}
}

func TestParseCaught(t *testing.T) {
	c, err := ParseCaught(`[{"type":"click","selector":"#buy"},{"type":"submit","selector":"form"}]`)
	if err != nil || len(c) != 2 || c[0] != (Caught{Type: "click", Selector: "#buy"}) {
		t.Fatalf("ParseCaught = %+v, %v", c, err)
	}
	if _, err := ParseCaught(`{"type":"click"}`); !errors.Is(err, ErrVerdict) {
		t.Fatalf("an object instead of a list: %v", err)
	}
}
