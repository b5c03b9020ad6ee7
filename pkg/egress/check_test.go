package egress

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
)

// stubResolver answers from a table; a name with several answers gives them
// in turn, one per lookup (the last one repeats), which is how a rebinding
// DNS server behaves.
type stubResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	lookups map[string]int
}

func newStub(m map[string][]string) *stubResolver {
	s := &stubResolver{answers: map[string][][]netip.Addr{}, lookups: map[string]int{}}
	for name, seq := range m {
		for _, a := range seq {
			var addrs []netip.Addr
			for f := range strings.SplitSeq(a, ",") {
				addrs = append(addrs, netip.MustParseAddr(f))
			}
			s.answers[name] = append(s.answers[name], addrs)
		}
	}
	return s
}

func (s *stubResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq, ok := s.answers[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	i := min(s.lookups[host], len(seq)-1)
	s.lookups[host]++
	return append([]netip.Addr(nil), seq[i]...), nil
}

func (s *stubResolver) count(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups[host]
}

func TestParseHost(t *testing.T) {
	tests := []struct {
		host, addr, name string
		bad              bool
	}{
		{host: "example.com", name: "example.com"},
		{host: "EXAMPLE.com.", name: "example.com"},
		{host: "127.0.0.1", addr: "127.0.0.1"},
		{host: "127.0.0.1.", addr: "127.0.0.1"},
		{host: "2130706433", addr: "127.0.0.1"},
		{host: "0177.0.0.1", addr: "127.0.0.1"},
		{host: "0x7f.1", addr: "127.0.0.1"},
		{host: "0X7F.0.0.1", addr: "127.0.0.1"},
		{host: "0x7f000001", addr: "127.0.0.1"},
		{host: "127.1", addr: "127.0.0.1"},
		{host: "127.0.1", addr: "127.0.0.1"},
		{host: "017700000001", addr: "127.0.0.1"},
		{host: "0", addr: "0.0.0.0"},
		{host: "0x", addr: "0.0.0.0"},
		{host: "169.254.43518", addr: "169.254.169.254"},
		{host: "0xa9fea9fe", addr: "169.254.169.254"},
		{host: "[::1]", addr: "::1"},
		{host: "[::ffff:127.0.0.1]", addr: "::ffff:127.0.0.1"},
		{host: "[::FFFF:7F00:1]", addr: "::ffff:127.0.0.1"},
		{host: "１２７.０.０.１", addr: "127.0.0.1"}, // full-width digits
		{host: "foo.127.0.0.1", bad: true},     // ends in a number but is no address
		{host: "256.0.0.1", bad: true},
		{host: "1.2.3.4.5", bad: true},
		{host: "4294967296", bad: true},
		{host: "08.0.0.1", bad: true},
		{host: "::1", bad: true},
		{host: "[::1", bad: true},
		{host: "[fe80::1%25eth0]", bad: true},
		{host: "[127.0.0.1]", bad: true},
		{host: "", bad: true},
		{host: ".", bad: true},
		{host: "a b", bad: true},
		{host: "127.0.0.%31", bad: true},
		{host: "user@127.0.0.1", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			a, name, err := ParseHost(tt.host)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseHost(%q) = %v, %q, want an error", tt.host, a, name)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHost(%q): %v", tt.host, err)
			}
			var want netip.Addr
			if tt.addr != "" {
				want = netip.MustParseAddr(tt.addr)
			}
			if a != want || name != tt.name {
				t.Fatalf("ParseHost(%q) = %v, %q, want %v, %q", tt.host, a, name, want, tt.name)
			}
		})
	}
}

func TestInternal(t *testing.T) {
	internal := []string{
		"0.0.0.0", "0.1.2.3", "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.255", "192.0.0.1",
		"192.0.2.1", "198.18.0.1", "198.19.255.255", "198.51.100.1", "203.0.113.1", "224.0.0.1",
		"239.255.255.250", "240.0.0.1", "255.255.255.255",
		"::", "::1", "::127.0.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "fec0::1", "ff02::1", "100::1",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::c0a8:101", "64:ff9b:1::1",
		"2002:7f00:1::1", "2002:c0a8:101::1", "2002:a9fe:a9fe::", "2001::1", "2001:db8::1",
	}
	public := []string{
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "172.15.255.255", "172.32.0.1", "100.63.255.255",
		"100.128.0.1", "169.253.255.255", "198.17.255.255", "198.20.0.1", "223.255.255.255",
		"2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "64:ff9b::808:808",
		"2002:808:808::1",
	}
	for _, s := range internal {
		t.Run(s, func(t *testing.T) {
			if reason, bad := Internal(netip.MustParseAddr(s)); !bad {
				t.Fatalf("Internal(%s) = %q, false, want true", s, reason)
			}
		})
	}
	for _, s := range public {
		t.Run(s, func(t *testing.T) {
			if reason, bad := Internal(netip.MustParseAddr(s)); bad {
				t.Fatalf("Internal(%s) = %q, true, want false", s, reason)
			}
		})
	}
	if _, bad := Internal(netip.MustParseAddr("fe80::1%eth0")); !bad {
		t.Errorf("Internal(%s) = false, want true", "fe80::1%eth0")
	}
	if _, bad := Internal(netip.Addr{}); !bad {
		t.Error("Internal(zero) = false, want true")
	}
}

func TestCheckURL(t *testing.T) {
	res := newStub(map[string][]string{
		"public.test":   {"93.184.216.34"},
		"mixed.test":    {"93.184.216.34,10.0.0.5"},
		"loop.test":     {"127.0.0.1"},
		"mapped.test":   {"::ffff:127.0.0.1"},
		"meta.test":     {"169.254.169.254"},
		"v6.test":       {"2606:4700:4700::1111"},
		"ula.test":      {"fd00::1"},
		"intranet.test": {"10.1.2.3"},
		"lan.test":      {"192.168.7.7"},
	})
	c, err := NewChecker([]string{"http://intranet.test:8080", "192.168.7.0/24", "http://127.0.0.1:9999", "https://[::1]"}, res)
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{
		"http://public.test/",
		"https://PUBLIC.test./x?y=1",
		"http://93.184.216.34/",
		"https://v6.test/",
		"http://[2606:4700:4700::1111]/",
		"ws://public.test/socket",
		"http://intranet.test:8080/",   // origin rule
		"http://lan.test/",             // CIDR rule
		"http://192.168.7.200:81/",     // CIDR rule
		"http://[::ffff:192.168.7.1]/", // CIDR rule, mapped
		"http://127.0.0.1:9999/",       // origin rule
		"http://2130706433:9999/",      // same origin, other spelling
		"wss://[::1]/",                 // origin rule, port 443 either way
		"http://mixed.test/",           // only its public address will be dialed
	}
	refusedURLs := []string{
		"http://127.0.0.1/", "http://127.0.0.1:9998/", "http://2130706433/", "http://0177.0.0.1/",
		"http://0x7f.1/", "http://0x7f000001/", "http://127.1/", "http://127.0.0.1./", "http://LOCALHOST/",
		"http://localhost:9999/", "http://foo.localhost/", "http://[::1]/", "http://[::1]:8080/",
		"http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[64:ff9b::7f00:1]/",
		"http://[2002:7f00:1::]/", "http://[fd00::1]/", "http://[fe80::1]/", "http://0.0.0.0/", "http://0/",
		"http://169.254.169.254/latest/meta-data/", "http://0xa9fea9fe/", "http://metadata.google.internal/",
		"http://10.0.0.1/", "http://172.16.5.5/", "http://192.168.1.1/", "http://100.64.1.1/",
		"http://loop.test/", "http://mapped.test/", "http://meta.test/", "http://ula.test/",
		"http://intranet.test/", "http://intranet.test:8081/",
		"http://unknown.test/", "http://１２７.０.０.１/",
		"file:///etc/passwd", "chrome://version", "javascript:alert(1)", "view-source:http://public.test/",
		"devtools://devtools/bundled/inspector.html", "data:text/html,hi", "ftp://public.test/",
		"http://foo.127.0.0.1/", "http://256.0.0.1/",
	}
	ctx := context.Background()
	for _, u := range allowed {
		t.Run("allow "+u, func(t *testing.T) {
			if err := c.CheckURL(ctx, u); err != nil {
				t.Fatalf("CheckURL(%q) = %v, want nil", u, err)
			}
		})
	}
	for _, u := range refusedURLs {
		t.Run("refuse "+u, func(t *testing.T) {
			err := c.CheckURL(ctx, u)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("CheckURL(%q) = %v, want ErrRefused", u, err)
			}
		})
	}
}

// Only the addresses that pass are dialed: a name with a public and a
// private address keeps the public one; localhost names resolve to
// loopback without DNS, and a loopback CIDR lets their IPv4 one through.
func TestCheckKeepsOnlyPassingAddresses(t *testing.T) {
	res := newStub(map[string][]string{"mixed.test": {"10.0.0.5,93.184.216.34,::1"}, "localhost": {"93.184.216.34"}})
	c, err := NewChecker([]string{"127.0.0.1/32"}, res)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		host string
		want []string
	}{
		{"mixed.test", []string{"93.184.216.34:80"}},
		{"localhost", []string{"127.0.0.1:80"}},
		{"shop.localhost", []string{"127.0.0.1:80"}},
	}
	for _, tt := range tests {
		tg, err := c.check(ctx, tt.host, 80)
		if err != nil {
			t.Fatalf("check(%q): %v", tt.host, err)
		}
		if got := tg.dialAddrs(); !slices.Equal(got, tt.want) {
			t.Errorf("check(%q) dials %q, want %q", tt.host, got, tt.want)
		}
	}
	if n := res.count("localhost"); n != 0 {
		t.Errorf("localhost looked up %d times, want 0", n)
	}
	var strict Checker
	if _, err := strict.check(ctx, "localhost", 80); !errors.Is(err, ErrRefused) {
		t.Errorf("check(localhost) without allowance = %v, want ErrRefused", err)
	}
}

func TestCheckerZeroValueRefuses(t *testing.T) {
	var c Checker
	if _, err := c.check(context.Background(), "127.0.0.1", 80); !errors.Is(err, ErrRefused) {
		t.Fatalf("zero Checker check(127.0.0.1) = %v, want ErrRefused", err)
	}
}

func TestParseAllow(t *testing.T) {
	good := []string{"http://127.0.0.1:8080", "https://shop.internal", "10.0.0.0/8", "::1", "127.0.0.1", "http://[::1]:3000/", " 192.168.0.0/16 "}
	if _, err := parseAllow(good); err != nil {
		t.Fatalf("parseAllow(%q) = %v", good, err)
	}
	for _, bad := range []string{"localhost", "http://", "http://x/path", "ftp://x", "http://x:0", "http://x:99999", "10.0.0.0/33", "http://u@x", "http://x/?q"} {
		if _, err := parseAllow([]string{bad}); err == nil {
			t.Errorf("parseAllow(%q) = nil, want an error", bad)
		}
	}
}
