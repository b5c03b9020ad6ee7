package rtc

import (
	"net"
	"net/netip"
	"testing"
)

// FuzzRemoteAllowed checks the remote candidate filter on arbitrary address
// bytes: no panic, an IPv4 address and its IPv4-mapped and NAT64 forms get
// the same answer, reserved addresses are never allowed, and private ones
// only when the policy says so.
func FuzzRemoteAllowed(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "169.254.169.254", "192.0.2.10", "::1", "fe80::1",
		"2001:db8::1", "224.0.0.251", "0.0.0.0", "fd00:ec2::254", "64:ff9b::7f00:1"} {
		f.Add([]byte(net.ParseIP(s)), false)
	}
	f.Add([]byte{127, 0, 0, 1}, true)
	f.Add([]byte{240, 0, 0, 1}, true)
	f.Add([]byte{10, 0, 0, 1}, false)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, loopback bool) {
		// loopback drives both switches: everything allowed vs. public only.
		pol := peerPolicy{loopback: loopback, private: loopback}
		got := remoteAllowed(net.IP(b), pol)
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			if got {
				t.Fatalf("remoteAllowed(%x) = true for bytes that are no address", b)
			}
			return
		}
		a = a.Unmap()
		if got && (a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() ||
			(a.Is4() && (a.As4()[0] == 0 || a.As4()[0] >= 240)) ||
			(a.IsLoopback() && !loopback) || (a.IsPrivate() && !loopback)) {
			t.Fatalf("remoteAllowed(%s, %+v) = true for a reserved or private address", a, pol)
		}
		if a.Is4() {
			v4 := a.As4()
			mapped := netip.AddrFrom16(netip.AddrFrom4(v4).As16()) // ::ffff:a.b.c.d
			var n64 [16]byte
			copy(n64[:], netip.MustParseAddr("64:ff9b::").AsSlice())
			copy(n64[12:], v4[:])
			for _, alt := range []netip.Addr{mapped, netip.AddrFrom16(n64)} {
				if other := remoteAllowed(net.IP(alt.AsSlice()), pol); other != got {
					t.Fatalf("remoteAllowed(%s) = %v but remoteAllowed(%s) = %v", a, got, alt, other)
				}
			}
		}
	})
}
