// Package rtc owns the worker's WebRTC side: one pion PeerConnection per
// viewer, sending its role's shared VP8 track and receiving the viewer's
// input over DataChannels.
//
// An API is built once per worker from a Config (NewAPI). It registers VP8
// only, the NACK responder and RTCP sender-report interceptors, restricts
// SRTP to the AEAD AES-GCM profiles and DTLS to AEAD suites, applies the ICE
// settings (one UDP port through the ICE UDP mux, optionally one TCP port
// through the ICE TCP mux, NAT 1:1 addresses for both, STUN servers,
// loopback for tests; no mDNS, no outgoing TCP) and adapts pion's logs onto
// zap. API.NewTrack makes a role's track; the role's encoder writes RTP to
// it and every peer of that role sends it. Config.ViewerICEServers mints a
// viewer's TURN credentials (the TURN REST scheme) for its hello.
//
// A Peer is made by API.NewPeer and negotiated with Peer.Answer: the viewer
// offers (one recvonly video transceiver and the DataChannels "input" and
// "pointer"), the peer answers and trickles its candidates to
// PeerConfig.OnCandidate. The viewer's candidates, trickled, in its offer
// or learned from its checks, are dropped when they name a reserved,
// link-local, metadata, multicast or (unless Config.Loopback) loopback
// address, an mDNS name, or (with Config.DenyPrivatePeers) a private one,
// so a viewer cannot aim connectivity checks at the worker's own network
// services (docs/media-network.md).
//
// Goroutines: NewPeer starts the peer's dispatch goroutine, which runs every
// PeerConfig callback, one at a time and in order; pion's own goroutines only
// copy and queue. Answer runs the negotiation on a goroutine (so a context
// can bound it) and starts the RTCP read loop of the track's sender, which
// turns PLI and FIR into OnKeyFrame and lets the NACK responder work.
// Peer.Close closes the PeerConnection and waits for all of them; it is
// idempotent and must not be called from a callback. API.Close releases the
// UDP and TCP ports; close the peers first.
//
// All methods of API and Peer are safe for concurrent use.
package rtc
