// Package block keeps agents from activating what a company blocks
// (SECURITY.md P3): a "Buy now" button, by any path. Its page script runs in
// the isolated world of every document of the hosted tab (next to the mask
// script) and gives the worker two layers: Check, asked before an agent's
// event is dispatched (what is under the pointer, what has the focus, what
// Enter or an accesskey would activate), and a guard, armed around the
// dispatch, that cancels click, submit and activation keys on blocked
// targets should anything slip past the check (a layout shift, a page
// script that clicks on a keypress). The customer is never blocked: the
// worker asks and arms only for agents. See docs/blocking.md.
package block

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tandem-cobrowse/tandem/pkg/mask"
)

// Policy is what a company blocks, on top of the built-in
// [data-tandem-block]. In allowlist mode agents may operate only elements
// marked [data-tandem-allow] or matching Allow.
type Policy struct {
	Block     []mask.Selector `json:"block,omitempty"`
	Allow     []mask.Selector `json:"allow,omitempty"`
	Allowlist bool            `json:"allowlist,omitempty"`
	// Requests are URL patterns (* and ? wildcards) whose requests fail
	// while an agent controls the tab: the third layer, for what a page
	// does later than the agent's event (the worker's request guard).
	Requests []string `json:"requests,omitempty"`
}

//go:embed script.js
var scriptSource string

// Script returns the page script for p. Selectors are passed as data, never
// spliced into code.
func Script(p Policy) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("block script config: %w", err)
	}
	return strings.Replace(scriptSource, "__TANDEM_BLOCK_CONFIG__", string(b), 1), nil
}

// Kinds of Check.
const (
	KindPointer = "pointer" // a button press at X, Y
	KindKey     = "key"     // a key press
	KindText    = "text"    // composed or pasted text
)

// CheckExpression returns the expression that, evaluated in the world,
// answers whether an agent's event may be dispatched (a Verdict as JSON).
// Without the script the answer refuses.
func CheckExpression(kind string, x, y float64, key string, mods int) string {
	args, _ := json.Marshal([]any{kind, x, y, key, mods})
	a := string(args[1 : len(args)-1])
	return `globalThis.__tandemBlock ? globalThis.__tandemBlock.check(` + a + `) : ` + absent
}

// absent is the verdict when the script is not there (a document that is
// not ready yet): refused.
const absent = `'{"ok":false,"selector":"page not ready","method":"check"}'`

// ArmExpression and DisarmExpression switch the guard around the dispatch
// of an agent's event; disarm answers what the guard cancelled, as JSON.
const (
	ArmExpression    = `globalThis.__tandemBlock ? globalThis.__tandemBlock.arm() : ""`
	DisarmExpression = `globalThis.__tandemBlock ? globalThis.__tandemBlock.disarm() : "[]"`
)

// Verdict is the page's answer to a check.
type Verdict struct {
	OK       bool    `json:"ok"`
	Selector string  `json:"selector,omitempty"` // what blocks the event
	Method   string  `json:"method,omitempty"`   // how it would have activated it: pointer, key, text, accesskey, implicit submission
	Frame    string  `json:"frame,omitempty"`    // ask this cross-origin frame instead
	X        float64 `json:"x,omitempty"`        // the point in that frame's viewport
	Y        float64 `json:"y,omitempty"`
}

// ErrVerdict is wrapped when the page's answer does not parse.
var ErrVerdict = errors.New("block: bad verdict")

// ParseVerdict reads a check's answer. Anything unreadable refuses.
func ParseVerdict(s string) (Verdict, error) {
	var v Verdict
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return Verdict{Selector: "unreadable answer", Method: "check"}, fmt.Errorf("%w: %v", ErrVerdict, err)
	}
	if v.Frame != "" {
		v.OK = false
	}
	v.Selector = clip(v.Selector, 200)
	v.Method = clip(v.Method, 32)
	return v, nil
}

// Caught is one event the guard cancelled.
type Caught struct {
	Type     string `json:"type"`
	Selector string `json:"selector"`
}

// ParseCaught reads a disarm's answer.
func ParseCaught(s string) ([]Caught, error) {
	var c []Caught
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVerdict, err)
	}
	for i := range c {
		c[i].Type, c[i].Selector = clip(c[i].Type, 32), clip(c[i].Selector, 200)
	}
	return c, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
