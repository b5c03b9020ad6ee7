package mask

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

// The isolated world the script runs in and the binding it reports
// through. The binding exists only in contexts of this world, so page
// scripts can neither call it nor see it.
const (
	World   = "tandem-mask"
	Binding = "__tandemMaskReport"
)

// FlushExpression, evaluated in the world, measures now, sends the report
// through the binding (behind every report sent before it) and returns it as
// a JSON string ("" when the script is not there).
const FlushExpression = `globalThis.__tandemMask ? globalThis.__tandemMask.flush() : ""`

// GuardExpression returns the expression that, evaluated in the world just
// before an agent's event of this kind ("key" or "down") is dispatched,
// answers "refuse" or "ok" (see guard in script.js). Without the script the
// answer is "refuse".
func GuardExpression(kind string) string {
	k, _ := json.Marshal(kind)
	return `globalThis.__tandemMask ? (globalThis.__tandemMask.guard(` + string(k) + `) ? "refuse" : "ok") : "refuse"`
}

//go:embed script.js
var scriptSource string

// Selector is a company's CSS selector, applied on pages whose URL matches
// one of URLs (* is a wildcard); no URLs means every page.
type Selector struct {
	Selector string   `json:"selector"`
	URLs     []string `json:"urls,omitempty"`
}

// Policy is what a company adds to the built-in masking rules.
type Policy struct {
	Mask             []Selector `json:"mask,omitempty"`
	Unmask           []Selector `json:"unmask,omitempty"` // exempts only what PrivateByDefault masks
	PrivateByDefault bool       `json:"private,omitempty"`
	// FrameOrigins are origins whose frames are masked whole, always.
	FrameOrigins []string `json:"frame_origins,omitempty"`
}

// Script returns the page script for p. Selectors are passed as data, never
// spliced into code.
func Script(p Policy) (string, error) {
	cfg := struct {
		Policy
		Binding string `json:"binding"`
	}{p, Binding}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("mask script config: %w", err)
	}
	return strings.Replace(scriptSource, "__TANDEM_MASK_CONFIG__", string(b), 1), nil
}
