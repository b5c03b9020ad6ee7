package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// ErrRefused is wrapped by every refusal of the checker, the proxy's and
// CheckURL's alike.
var ErrRefused = errors.New("egress: refused")

// RefusedError says why a destination was refused. Host is the host as
// parsed (no path, no query); it is safe to log.
type RefusedError struct {
	Host   string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("egress: refused %s: %s", e.Host, e.Reason)
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Unwrap() error { return ErrRefused }

func refused(host, reason string) error { return &RefusedError{Host: host, Reason: reason} }

// Resolver looks up the addresses of a name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// blocked4 are the IPv4 ranges that are not the public internet: this
// machine, private networks, link-local (and so the cloud metadata service
// at 169.254.169.254), CGNAT, IETF and documentation ranges, benchmarking,
// multicast, reserved and broadcast (IANA special-purpose registry).
var blocked4 = prefixes(map[string]string{
	"0.0.0.0/8":       "this network",
	"10.0.0.0/8":      "private",
	"100.64.0.0/10":   "CGNAT",
	"127.0.0.0/8":     "loopback",
	"169.254.0.0/16":  "link-local or metadata",
	"172.16.0.0/12":   "private",
	"192.0.0.0/24":    "IETF protocol assignments",
	"192.0.2.0/24":    "documentation",
	"192.88.99.0/24":  "6to4 relay",
	"192.168.0.0/16":  "private",
	"198.18.0.0/15":   "benchmarking",
	"198.51.100.0/24": "documentation",
	"203.0.113.0/24":  "documentation",
	"224.0.0.0/4":     "multicast",
	"240.0.0.0/4":     "reserved or broadcast",
})

// blocked6 are the IPv6 ranges refused whole. The IPv4-mapped, NAT64 and
// 6to4 ranges are not here: their embedded IPv4 address is checked instead.
var blocked6 = prefixes(map[string]string{
	"::/96":          "unspecified, loopback or IPv4-compatible",
	"100::/64":       "discard",
	"64:ff9b:1::/48": "local NAT64",
	"2001::/23":      "IETF protocol assignments (Teredo, ...)",
	"2001:db8::/32":  "documentation",
	"fc00::/7":       "unique local (ULA)",
	"fe80::/10":      "link-local",
	"fec0::/10":      "site-local",
	"ff00::/8":       "multicast",
})

var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4  = netip.MustParsePrefix("2002::/16")
	noRoute = "not a public unicast address"
)

type blockedPrefix struct {
	p      netip.Prefix
	reason string
}

func prefixes(m map[string]string) []blockedPrefix {
	var out []blockedPrefix
	for s, r := range m {
		out = append(out, blockedPrefix{netip.MustParsePrefix(s), r})
	}
	return out
}

// Internal reports whether a is not a public internet address, and why. An
// IPv4 address embedded in IPv6 (IPv4-mapped, NAT64, 6to4) is judged as
// that IPv4 address. An address with a zone is always internal.
func Internal(a netip.Addr) (reason string, internal bool) {
	if !a.IsValid() {
		return "invalid address", true
	}
	if a.Zone() != "" {
		return "scoped address", true
	}
	if a.Is4In6() {
		return Internal(a.Unmap())
	}
	if a.Is4() {
		for _, b := range blocked4 {
			if b.p.Contains(a) {
				return b.reason, true
			}
		}
		return "", false
	}
	if nat64.Contains(a) {
		b := a.As16()
		return Internal(netip.AddrFrom4([4]byte(b[12:16])))
	}
	if sixTo4.Contains(a) {
		b := a.As16()
		return Internal(netip.AddrFrom4([4]byte(b[2:6])))
	}
	for _, b := range blocked6 {
		if b.p.Contains(a) {
			return b.reason, true
		}
	}
	if !a.IsGlobalUnicast() {
		return noRoute, true
	}
	return "", false
}

// ParseHost reads a URL's host the way a browser does (WHATWG URL host
// parsing): a bracketed IPv6 literal; else, lower-cased with one trailing
// dot removed, a host whose last label is a number is an IPv4 address in
// any of its encodings (decimal 2130706433, octal 0177.0.0.1, hex 0x7f.1,
// short 127.1), and is an error if that does not parse; anything else is a
// name. Exactly one of addr and name is set when err is nil.
func ParseHost(host string) (addr netip.Addr, name string, err error) {
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return netip.Addr{}, "", fmt.Errorf("host %q: unterminated IPv6 literal", host)
		}
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}, "", fmt.Errorf("host %q: bad IPv6 literal", host)
		}
		return a, "", nil
	}
	h := strings.ToLower(host)
	if !ascii(h) {
		// Browsers map Unicode hosts first (full-width digits become
		// ASCII ones, so "１２７.０.０.１" is 127.0.0.1).
		if h, err = idna.Lookup.ToASCII(h); err != nil {
			return netip.Addr{}, "", fmt.Errorf("host %q: %v", host, err)
		}
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Is6() {
		return netip.Addr{}, "", fmt.Errorf("host %q: IPv6 literal without brackets", host)
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || strings.ContainsAny(h, " %/\\?#@[]:<>^|") {
		return netip.Addr{}, "", fmt.Errorf("host %q: not a host name", host)
	}
	labels := strings.Split(h, ".")
	if !numeric(labels[len(labels)-1]) {
		return netip.Addr{}, h, nil
	}
	a, ok := parseIPv4(labels)
	if !ok {
		return netip.Addr{}, "", fmt.Errorf("host %q: bad IPv4 address", host)
	}
	return a, "", nil
}

func ascii(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// numeric is WHATWG's "ends in a number" test for the last label.
func numeric(label string) bool {
	if label == "" {
		return false
	}
	if strings.Trim(label, "0123456789") == "" {
		return true
	}
	if hex, ok := strings.CutPrefix(label, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return false
}

// parseIPv4 is WHATWG's IPv4 parser: one to four parts, each decimal,
// octal (leading 0) or hex (0x); the last part fills the remaining bytes.
func parseIPv4(parts []string) (netip.Addr, bool) {
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case strings.HasPrefix(p, "0x"):
			p, base = p[2:], 16
			if p == "" {
				p = "0"
			}
		case len(p) > 1 && p[0] == '0':
			p, base = p[1:], 8
		}
		if p == "" {
			return netip.Addr{}, false
		}
		n, err := strconv.ParseUint(p, base, 64)
		if err != nil {
			return netip.Addr{}, false
		}
		nums[i] = n
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v := uint32(last)
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		v |= uint32(n) << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// loopbackName says whether name is localhost or under .localhost, which
// browsers resolve to loopback themselves, never through DNS; so does the
// checker.
func loopbackName(name string) bool {
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}

// refusedName says whether name is refused before any lookup: a cloud
// metadata service's name, or a name under .internal (reserved for private
// use), wherever it resolves.
func refusedName(name string) bool {
	return name == "metadata" || name == "instance-data" || strings.HasSuffix(name, ".internal")
}

// allowRule is one parsed entry of Config.Allow.
type allowRule struct {
	prefix netip.Prefix // CIDR entries
	addr   netip.Addr   // origin entries with an IP literal host
	name   string       // origin entries with a name
	port   uint16       // origin entries
}

// parseAllow reads origins (scheme://host[:port]) and CIDRs (or single
// addresses).
func parseAllow(entries []string) ([]allowRule, error) {
	var rules []allowRule
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if !strings.Contains(e, "://") {
			if p, err := netip.ParsePrefix(e); err == nil {
				rules = append(rules, allowRule{prefix: p.Masked()})
				continue
			}
			if a, err := netip.ParseAddr(e); err == nil && a.Zone() == "" {
				rules = append(rules, allowRule{prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())})
				continue
			}
			return nil, fmt.Errorf("egress allow %q: not an origin (scheme://host:port) or a CIDR", e)
		}
		u, err := url.Parse(e)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("egress allow %q: not an origin (scheme://host:port)", e)
		}
		port, err := originPort(strings.ToLower(u.Scheme), u.Port())
		if err != nil {
			return nil, fmt.Errorf("egress allow %q: %w", e, err)
		}
		host := u.Hostname()
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		a, name, err := ParseHost(host)
		if err != nil {
			return nil, fmt.Errorf("egress allow %q: %w", e, err)
		}
		rules = append(rules, allowRule{addr: a.Unmap(), name: name, port: port})
	}
	return rules, nil
}

// originPort is the port of an origin: the explicit one, or the scheme's.
func originPort(scheme, port string) (uint16, error) {
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("bad port %q", port)
		}
		return uint16(n), nil
	}
	switch scheme {
	case "http", "ws":
		return 80, nil
	case "https", "wss":
		return 443, nil
	}
	return 0, fmt.Errorf("scheme %q", scheme)
}

// Checker decides which destinations the hosted browser may reach. Its
// zero value refuses every internal address, allows no exception and
// resolves with net.DefaultResolver.
type Checker struct {
	rules    []allowRule
	resolver Resolver
}

// NewChecker parses allow (see Config.Allow); a nil resolver means a
// net.Resolver of the checker's own.
func NewChecker(allow []string, r Resolver) (*Checker, error) {
	rules, err := parseAllow(allow)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &net.Resolver{}
	}
	return &Checker{rules: rules, resolver: r}, nil
}

// target is a checked destination: the only addresses the proxy may dial
// for it. Its zero value has none, so nothing can be dialed.
type target struct {
	host  string // as parsed, for logs
	addrs []netip.Addr
	port  uint16
}

// dialAddrs are the "ip:port" strings to dial, in order.
func (t target) dialAddrs() []string {
	out := make([]string, len(t.addrs))
	for i, a := range t.addrs {
		out[i] = netip.AddrPortFrom(a, t.port).String()
	}
	return out
}

// check resolves host once and decides. The host may be in any encoding a
// URL allows; a name is resolved with the checker's resolver (localhost
// names to 127.0.0.1 and ::1 without one). Only the addresses that pass
// are kept, to be dialed; none passing is a refusal. Exceptions: an origin
// rule matching host and port (before the host is judged), a CIDR rule
// containing the address.
func (c *Checker) check(ctx context.Context, host string, port uint16) (target, error) {
	a, name, err := ParseHost(host)
	if err != nil {
		return target{}, refused(host, err.Error())
	}
	shown := name
	if a.IsValid() {
		shown = a.String()
	}
	byOrigin := c.originAllowed(a.Unmap(), name, port)
	var addrs []netip.Addr
	switch {
	case a.IsValid():
		addrs = []netip.Addr{a}
	case loopbackName(name):
		addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	case refusedName(name) && !byOrigin:
		return target{}, refused(shown, "metadata or internal name")
	default:
		r := c.resolver
		if r == nil {
			r = net.DefaultResolver
		}
		if addrs, err = r.LookupNetIP(ctx, "ip", name); err != nil {
			return target{}, refused(shown, "cannot resolve")
		}
	}
	var (
		ok     []netip.Addr
		reason = "no address"
	)
	for _, ad := range addrs {
		if ad.Zone() != "" {
			reason = "scoped address"
			continue
		}
		if !byOrigin {
			if why, bad := Internal(ad); bad && !c.cidrAllowed(ad) {
				reason = why
				if name != "" {
					reason = fmt.Sprintf("resolves to %s (%s)", ad, why)
				}
				continue
			}
		}
		ok = append(ok, ad.Unmap())
	}
	if len(ok) == 0 {
		return target{}, refused(shown, reason)
	}
	return target{host: shown, addrs: ok, port: port}, nil
}

func (c *Checker) originAllowed(a netip.Addr, name string, port uint16) bool {
	for _, r := range c.rules {
		if r.prefix.IsValid() || r.port != port {
			continue
		}
		if (name != "" && r.name == name) || (a.IsValid() && r.addr == a) {
			return true
		}
	}
	return false
}

func (c *Checker) cidrAllowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, r := range c.rules {
		if r.prefix.IsValid() && r.prefix.Contains(a) {
			return true
		}
	}
	return false
}

// CheckURL checks the destination of an http, https, ws or wss URL the way
// the proxy would check its request: for refusing a start URL before a
// browser loads it. Other schemes are refused. Errors wrap ErrRefused.
func (c *Checker) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return refused("", "not an absolute URL")
	}
	port, err := originPort(strings.ToLower(u.Scheme), u.Port())
	if err != nil {
		return refused("", err.Error())
	}
	host := u.Host
	if p := u.Port(); p != "" {
		host = strings.TrimSuffix(host, ":"+p)
	}
	_, err = c.check(ctx, host, port)
	return err
}
