// Package mask keeps what the company masks out of the agents' video
// (SECURITY.md P1). A script in an isolated world of the hosted page
// (script.js) reports where the masked elements are; a Tracker keeps those
// reports and decides, for each captured frame, which pixels to paint over,
// or that it cannot know and the frame must be held; Apply paints the
// agent's copy. Only Apply makes the Frame type that the agents' Encoder
// accepts, so an unmasked picture cannot reach the agents' stream by
// mistake: the customer's encoder takes *media.Frame, the agents' takes
// mask.Frame. docs/masking.md has the design and its reasons.
package mask
