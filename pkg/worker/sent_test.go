package worker

import (
	"testing"

	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// Only a customer's page events go without waiting for the answers before
// them. An agent's event never does: its block check must see the page as
// every event before it left it (SECURITY.md P3).
func TestPipelined(t *testing.T) {
	mouse := input.Event{Kind: input.KindMouse, Action: input.ActionDown, X: 1, Y: 1, Button: input.ButtonLeft, Buttons: 1}
	for _, tc := range []struct {
		name string
		in   queuedInput
		want bool
	}{
		{"customer mouse", queuedInput{role: RoleCustomer, ev: mouse}, true},
		{"customer key", queuedInput{role: RoleCustomer, ev: input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: "a", Code: "KeyA"}}, true},
		{"customer text", queuedInput{role: RoleCustomer, ev: input.Event{Kind: input.KindText, Text: "あ"}}, true},
		{"customer touch", queuedInput{role: RoleCustomer, ev: input.Event{Kind: input.KindTouch, Action: input.ActionStart}}, true},
		{"customer wheel", queuedInput{role: RoleCustomer, ev: input.Event{Kind: input.KindWheel, DeltaY: 100}}, false},
		{"customer viewport", queuedInput{role: RoleCustomer, ev: input.Event{Kind: input.KindViewport, Width: 800, Height: 600}}, false},
		{"customer navigation", queuedInput{role: RoleCustomer, nav: &protocol.Navigate{URL: "https://example.com/"}}, false},
		{"handover", queuedInput{role: RoleCustomer, releaseHeld: true}, false},
		{"agent mouse", queuedInput{role: RoleAgent, ev: mouse}, false},
		{"agent key", queuedInput{role: RoleAgent, ev: input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: "Enter", Code: "Enter"}}, false},
		{"agent text", queuedInput{role: RoleAgent, ev: input.Event{Kind: input.KindText, Text: "x"}}, false},
	} {
		if got := pipelined(tc.in); got != tc.want {
			t.Errorf("%s: pipelined = %v, want %v", tc.name, got, tc.want)
		}
	}
}
