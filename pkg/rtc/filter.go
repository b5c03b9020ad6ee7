package rtc

import (
	"net"
	"net/netip"
)

// metadataAddrs are cloud metadata services that live outside the link-local
// range (which is refused as a whole).
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),   // AWS, IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
}

// nat64 is the well-known NAT64 prefix (RFC 6052), which embeds an IPv4
// address in its last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// remoteAllowed reports whether the ICE agent may send connectivity checks to
// a viewer's candidate address. A viewer chooses its candidates, so without
// this check it could make the worker send STUN packets to the worker's own
// loopback, to a metadata service, or to multicast groups (SECURITY.md,
// "Remote ICE candidates to reserved addresses are dropped"). Private and
// ULA addresses stay allowed: a viewer on the worker's LAN is legitimate.
// Loopback is allowed only when loopback is set (tests, single-machine demo).
func remoteAllowed(ip net.IP, loopback bool) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	if nat64.Contains(a) { // judge the IPv4 address a NAT64 gateway would reach
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(),
		a.IsLinkLocalUnicast(), a.IsInterfaceLocalMulticast(),
		a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return false
	case a.IsLoopback():
		return loopback
	}
	if a.Is4() && a.As4()[0] == 0 { // 0.0.0.0/8, "this network"
		return false
	}
	for _, m := range metadataAddrs {
		if a == m {
			return false
		}
	}
	return true
}
