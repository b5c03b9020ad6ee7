// Package urlpolicy decides which pages a session's hosted tab may open:
// the company's URL allow and deny lists (tenant.Policy url_allow,
// url_deny), enforced by the worker for every document the tab loads, the
// top page and its frames alike (docs/navigation.md).
//
// A pattern is a URL in which * stands for any run of characters, matched
// against the whole URL (scheme, host, port, path and query; never the
// fragment, which no request carries). It is the same glob the mask and
// block rules use for their URL scopes.
package urlpolicy

import (
	"net/url"
	"strings"
)

// Policy is a company's URL lists.
type Policy struct {
	// Allow, when not empty, holds the only URLs the tab may open.
	Allow []string `json:"allow,omitempty"`
	// Deny holds URLs the tab never opens, whatever Allow says.
	Deny []string `json:"deny,omitempty"`
}

// Empty says whether the policy lets every URL through.
func (p Policy) Empty() bool { return len(p.Allow) == 0 && len(p.Deny) == 0 }

// Verdict is the answer for one URL: OK, or why not (Rule is the deny
// pattern that matched, or "" when the URL is on no allow pattern).
type Verdict struct {
	OK   bool
	Rule string
}

// Check says whether the tab may open raw. Only http and https URLs are
// checked: about:blank, data: and the like carry no site of their own (the
// browser keeps them to the page that made them).
func (p Policy) Check(raw string) Verdict {
	u, err := url.Parse(raw)
	if err != nil {
		return Verdict{} // unreadable: not opened
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Verdict{OK: true}
	}
	u.Fragment, u.RawFragment = "", ""
	s := u.String()
	for _, pat := range p.Deny {
		if Match(pat, s) {
			return Verdict{Rule: pat}
		}
	}
	if len(p.Allow) == 0 {
		return Verdict{OK: true}
	}
	for _, pat := range p.Allow {
		if Match(pat, s) {
			return Verdict{OK: true}
		}
	}
	return Verdict{}
}

// Match says whether s matches pattern as a whole, * standing for any run
// of characters (none included); every other character stands for itself.
func Match(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}

// Shown is a URL as an audit record or an agent may see it: scheme, host
// and path, without the query, the fragment or any user information.
func Shown(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
