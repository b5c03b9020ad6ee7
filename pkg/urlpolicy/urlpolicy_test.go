package urlpolicy

import "testing"

func TestMatch(t *testing.T) {
	for _, tt := range []struct {
		pat, s string
		want   bool
	}{
		{"https://shop.example/*", "https://shop.example/", true},
		{"https://shop.example/*", "https://shop.example/cart?x=1", true},
		{"https://shop.example/*", "https://shop.example.evil/", false},
		{"https://shop.example/*", "http://shop.example/", false},
		{"*://*.example/*", "https://a.b.example/x", true},
		{"*://*.example/*", "https://example/x", false},
		{"https://a/*/b", "https://a/x/y/b", true},
		{"https://a/*/b", "https://a/b", false},
		{"a*b*b", "abb", true},
		{"a*b*b", "ab", false},
		{"a*a", "a", false},
		{"*", "", true},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"https://a/?q", "https://a/?q", true}, // ? is a character, not a wildcard
		{"https://a/?q", "https://a/xq", false},
	} {
		if got := Match(tt.pat, tt.s); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	p := Policy{Allow: []string{"https://shop.example/*", "https://pay.example/checkout*"}, Deny: []string{"https://shop.example/admin*"}}
	for _, tt := range []struct {
		url  string
		ok   bool
		rule string
	}{
		{"https://shop.example/", true, ""},
		{"https://shop.example/item#reviews", true, ""},
		{"https://shop.example/admin/users", false, "https://shop.example/admin*"},
		{"https://pay.example/checkout?id=1", true, ""},
		{"https://pay.example/account", false, ""},
		{"https://evil.example/", false, ""},
		{"about:blank", true, ""},
		{"data:text/html,hi", true, ""},
		{"https://shop.example/%zz", false, ""}, // unreadable
	} {
		v := p.Check(tt.url)
		if v.OK != tt.ok || v.Rule != tt.rule {
			t.Errorf("Check(%q) = %+v, want ok %v rule %q", tt.url, v, tt.ok, tt.rule)
		}
	}
	if v := (Policy{}).Check("https://anything.example/"); !v.OK {
		t.Errorf("an empty policy refused a URL")
	}
	if v := (Policy{Deny: []string{"*://*.evil.example/*"}}).Check("https://www.evil.example/x"); v.OK {
		t.Errorf("a deny-only policy let a denied URL through")
	}
}

func TestShown(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@shop.example/cart?card=4111#top": "https://shop.example/cart",
		"http://a.example": "http://a.example",
		"about:blank":      "",
		"%zz":              "",
	} {
		if got := Shown(in); got != want {
			t.Errorf("Shown(%q) = %q, want %q", in, got, want)
		}
	}
}
