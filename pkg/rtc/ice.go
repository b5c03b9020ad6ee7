package rtc

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST scheme (coturn use-auth-secret) is HMAC-SHA1 by definition
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// DefaultTURNTTL is how long a viewer's TURN credentials live when
// Config.TURNTTL is 0: longer than a support session, because a TURN
// server checks the credentials again on every allocation refresh, and a
// relayed connection whose credentials expired drops (the viewer then
// reconnects with fresh ones). docs/media-network.md.
const DefaultTURNTTL = 12 * time.Hour

// maxTURNTTL bounds Config.TURNTTL: credentials are bearer tokens for the
// relay, handed to anonymous customers.
const maxTURNTTL = 7 * 24 * time.Hour

// validateICEServers checks the STUN and TURN settings of c.
func (c Config) validateICEServers() error {
	for _, s := range c.STUN {
		u, err := stun.ParseURI(s)
		if err != nil {
			return fmt.Errorf("%w: stun url %q: %w", ErrInvalidConfig, s, err)
		}
		if u.Scheme != stun.SchemeTypeSTUN && u.Scheme != stun.SchemeTypeSTUNS {
			return fmt.Errorf("%w: stun url %q is not stun: or stuns:", ErrInvalidConfig, s)
		}
	}
	for _, s := range c.TURN {
		u, err := stun.ParseURI(s)
		if err != nil {
			return fmt.Errorf("%w: turn url %q: %w", ErrInvalidConfig, s, err)
		}
		if u.Scheme != stun.SchemeTypeTURN && u.Scheme != stun.SchemeTypeTURNS {
			return fmt.Errorf("%w: turn url %q is not turn: or turns:", ErrInvalidConfig, s)
		}
	}
	if len(c.TURN) > 0 && c.TURNSecret == "" {
		return fmt.Errorf("%w: turn servers need the shared secret", ErrInvalidConfig)
	}
	if len(c.TURN) == 0 && c.TURNSecret != "" {
		return fmt.Errorf("%w: a turn secret without turn servers", ErrInvalidConfig)
	}
	if c.TURNTTL < 0 || c.TURNTTL > maxTURNTTL {
		return fmt.Errorf("%w: turn credential lifetime %v out of range (0 to %v)", ErrInvalidConfig, c.TURNTTL, maxTURNTTL)
	}
	if c.TURNTTL > 0 && c.TURNTTL < time.Minute {
		return fmt.Errorf("%w: turn credential lifetime %v is under a minute", ErrInvalidConfig, c.TURNTTL)
	}
	return nil
}

// ViewerICEServers returns the ICE servers a viewer's RTCPeerConnection
// uses: the STUN servers, and the TURN servers with credentials minted for
// this viewer that expire Config.TURNTTL after now. It is what the gateway
// puts into the viewer's hello (docs/protocol.md); nil when none are
// configured. The credentials are secrets: never log them.
func (c Config) ViewerICEServers(viewerID string, now time.Time) []protocol.ICEServer {
	var out []protocol.ICEServer
	if len(c.STUN) > 0 {
		out = append(out, protocol.ICEServer{URLs: append([]string(nil), c.STUN...)})
	}
	if len(c.TURN) > 0 && c.TURNSecret != "" {
		ttl := c.TURNTTL
		if ttl == 0 {
			ttl = DefaultTURNTTL
		}
		user, cred := TURNCredentials(c.TURNSecret, viewerID, now.Add(ttl))
		out = append(out, protocol.ICEServer{URLs: append([]string(nil), c.TURN...), Username: user, Credential: cred})
	}
	return out
}

// TURNCredentials mints time-limited TURN credentials in the TURN REST
// scheme that coturn's use-auth-secret and pion/turn's
// LongTermTURNRESTAuthHandler check (draft-uberti-behave-turn-rest-00,
// section 2.2): the username is "<unix expiry>:<id>", the password is
// base64(HMAC-SHA1(secret, username)).
func TURNCredentials(secret, id string, expires time.Time) (username, credential string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + id
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username)) // a hash never fails to write
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// workerICEServers are the ICE servers of the worker's own peers: the STUN
// servers only, for a server-reflexive address when the worker sits behind
// a NAT without Config.PublicIPs. The worker allocates no relay: viewers
// relay to it (docs/media-network.md).
func (c Config) workerICEServers() []webrtc.ICEServer {
	if len(c.STUN) == 0 {
		return nil
	}
	return []webrtc.ICEServer{{URLs: append([]string(nil), c.STUN...)}}
}
