package rtc

import (
	"net"
	"net/netip"
	"strings"

	"github.com/pion/ice/v4"

	"github.com/tandem-cobrowse/tandem/pkg/egress"
)

// metadataAddrs are cloud metadata services that live inside ranges a
// viewer's candidate may otherwise use (CGNAT, ULA); link-local, where the
// usual one (169.254.169.254) lives, is refused as a whole.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),   // AWS, IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
}

// nat64 is the well-known NAT64 prefix (RFC 6052), which embeds an IPv4
// address in its last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// lanPrefixes are the internal ranges a viewer on the worker's own network,
// or behind the same NAT, really has: RFC 1918, CGNAT (RFC 6598, also what
// overlay VPNs hand out) and IPv6 unique local addresses (RFC 4193).
// docs/media-network.md says why they are allowed unless
// Config.DenyPrivatePeers.
var lanPrefixes = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"),
}

// peerPolicy says which internal addresses a viewer's candidates may name.
// The zero value allows public addresses only.
type peerPolicy struct {
	loopback bool // 127.0.0.0/8 and ::1 (Config.Loopback: tests, one-machine demo)
	private  bool // lanPrefixes
}

// remoteAllowed reports whether the ICE agent may send connectivity checks to
// a viewer's candidate address. A viewer chooses its candidates, so without
// this check it could make the worker send STUN packets to the worker's own
// loopback, to a metadata service, or to multicast groups (SECURITY.md,
// "Remote ICE candidates to reserved addresses are dropped").
//
// The classification is egress.Internal's, the one that keeps the hosted
// browsers off internal networks: what it calls public is allowed; of what
// it calls internal only loopback (with p.loopback) and the LAN ranges
// (with p.private) are, never a metadata address. So unspecified, "this
// network" (0.0.0.0/8), multicast, broadcast, reserved (240.0.0.0/4),
// link-local (169.254.0.0/16, fe80::/10), documentation, benchmarking and
// the IETF ranges are always refused, as are their IPv4-mapped, NAT64 and
// 6to4 forms.
func remoteAllowed(ip net.IP, p peerPolicy) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	if _, internal := egress.Internal(a); !internal {
		return true
	}
	a = a.Unmap()
	if nat64.Contains(a) { // judge the IPv4 address a NAT64 gateway would reach
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	for _, m := range metadataAddrs {
		if a == m {
			return false
		}
	}
	if a.IsLoopback() {
		return p.loopback
	}
	for _, l := range lanPrefixes {
		if l.Contains(a) {
			return p.private
		}
	}
	return false
}

// candidateAllowed reports whether a viewer's candidate (the candidate
// attribute's value, "candidate:..." with or without "a=") may reach the ICE
// agent: it parses, is not an mDNS name (docs/media-network.md: the worker
// never resolves them) and its address passes remoteAllowed. An active TCP
// candidate (a browser's, port 9) carries no address we would send to; it
// passes when its address does. The end-of-candidates marker (empty) is
// allowed.
func candidateAllowed(s string, p peerPolicy) bool {
	s = strings.TrimPrefix(strings.TrimSpace(s), "a=")
	if s == "" {
		return true
	}
	c, err := ice.UnmarshalCandidate(s)
	if err != nil {
		return false
	}
	addr := c.Address()
	if strings.HasSuffix(strings.TrimSuffix(addr, "."), ".local") {
		return false
	}
	ip := net.ParseIP(addr)
	return ip != nil && remoteAllowed(ip, p)
}

// filterSDP removes the candidate lines of a viewer's session description
// that candidateAllowed refuses, and reports how many it removed. The rest
// of the description is left byte for byte.
func filterSDP(sdp string, p peerPolicy) (string, int) {
	if !strings.Contains(sdp, "a=candidate:") {
		return sdp, 0
	}
	lines := strings.SplitAfter(sdp, "\n")
	kept := lines[:0]
	dropped := 0
	for _, l := range lines {
		line := strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(line, "a=candidate:") && !candidateAllowed(line, p) {
			dropped++
			continue
		}
		kept = append(kept, l)
	}
	return strings.Join(kept, ""), dropped
}
