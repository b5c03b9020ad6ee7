// Package signaling relays WebRTC signaling between a viewer's WebSocket on a
// gateway and the worker that hosts the viewer's session, over NATS.
//
// # Subjects and messages
//
// Each viewer has two subjects (docs/architecture.md):
//
//	tandem.sig.<company>.<session>.<viewer>.up    gateway → worker
//	tandem.sig.<company>.<session>.<viewer>.down  worker → gateway
//
// Company, session and viewer ids, and roles, are subject tokens: 1 to 64
// characters of [A-Za-z0-9_-] (ValidToken), so none can add a subject level
// or a wildcard. Every message body is one protocol.Signal in JSON, except
// the join.
//
// The join is the first message on .up, sent by the gateway (never by the
// viewer: protocol.DecodeClientSignal refuses the type) as a NATS request:
//
//	body:    {"type":"join"}
//	headers: Tandem-Role: customer            (a subject token)
//	         Tandem-Name: Hanako%20Yamada     (optional display name, UTF-8,
//	                                           percent-encoded as a URL path
//	                                           segment; at most 128 bytes,
//	                                           no control characters)
//
// The worker's reply has an empty body when the viewer is admitted. A refusal
// carries the header Tandem-Error: <code> and, as its body, the message for
// the viewer: {"type":"error","error":"join_refused"|"already_joined"|
// "bad_join",...} or {"type":"ended","reason":...} when the session is over.
// A join nobody answers (nats.ErrNoResponders) means no worker hosts the
// session; the viewer gets {"type":"error","error":"session_unavailable"}.
// Using a request for the join also orders it: the gateway relays the
// viewer's offer only after the worker took the join.
//
// After the join, .up carries the viewer's offer, candidates and bye, and
// .down the worker's answer, candidates, state, errors
// ({"type":"error","error":"negotiation_failed"} when Peers.Offer fails,
// "restart_failed" when it fails for an ICE-restart offer) and
// finally {"type":"ended","reason":...}.
//
// # Gateway side
//
// Relay.Bridge runs one viewer: join, then the viewer's messages up (checked
// by protocol.DecodeClientSignal, re-encoded, at most 20 per second with
// bursts of 60; a refused message is answered with
// {"type":"error","error":"bad_message"|"rate_limited"} and more than
// MaxBadMessages end the bridge) and the worker's messages down. Bridge
// returns when its context ends, the connection fails, the viewer says bye
// or "ended" went down; it publishes "bye" up on its way out and leaves no
// goroutine behind.
//
// # Worker side
//
// A Host serves one session: NewHost subscribes to every viewer's .up
// subject, and applies each viewer's messages to the worker's Peers in order
// (join, offer, candidates, bye) on a goroutine of that viewer, so a slow
// viewer never delays another. Host.Send publishes to a viewer; candidates
// the worker sends while an offer is being answered are held and follow the
// answer. Host.End tells every viewer that the session ended; Host.Close
// unsubscribes, calls Peers.Leave for every viewer still joined and waits for
// the viewers' goroutines. All methods of Relay and Host are safe for
// concurrent use; neither closes the NATS connection it was given.
package signaling
