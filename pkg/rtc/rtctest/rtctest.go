// Package rtctest holds test helpers for the media network: a real TURN
// server (pion/turn) with the shared-secret auth Tandem mints credentials
// for.
package rtctest

import (
	"net"
	"testing"

	"github.com/pion/turn/v5"
)

// Realm is the TURN realm of TURNServer.
const Realm = "tandem.test"

// TURNServer runs a pion TURN server on loopback UDP that authenticates
// with the TURN REST scheme (coturn's use-auth-secret, what --turn-secret
// mints for) and relays from loopback, until the test ends. It returns the
// server's address.
func TURNServer(t testing.TB, secret string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := turn.NewServer(turn.ServerConfig{
		Realm:       Realm,
		AuthHandler: turn.LongTermTURNRESTAuthHandler(secret, nil),
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1"},
		}},
	})
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return pc.LocalAddr().String()
}
