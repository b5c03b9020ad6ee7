package tenant

import (
	"fmt"
	"strings"
	"unicode"
)

// Policy is a company's masking, blocking and navigation rules. The store
// keeps and validates them; the masking, blocking and hosted-browser parts
// enforce them. The zero Policy means the built-in defaults only.
type Policy struct {
	// Mask lists the company's own CSS selectors masked in the agents'
	// stream, on top of the built-in ones.
	Mask []ScopedSelector `json:"mask,omitempty"`
	// PrivateByDefault masks every form field and the text of
	// [data-tandem-private] containers unless marked [data-tandem-unmask]
	// or matched by Unmask.
	PrivateByDefault bool             `json:"private_by_default,omitempty"`
	Unmask           []ScopedSelector `json:"unmask,omitempty"`
	// MaskFrameOrigins are iframe origins always masked whole (payment
	// providers).
	MaskFrameOrigins []string `json:"mask_frame_origins,omitempty"`
	// Block lists selectors agents may not activate; in "allowlist" mode
	// agents may operate only [data-tandem-allow] and Allow matches.
	Block     []ScopedSelector `json:"block,omitempty"`
	BlockMode string           `json:"block_mode,omitempty"` // "" or "denylist" (default), "allowlist"
	Allow     []ScopedSelector `json:"allow,omitempty"`
	// BlockRequests are URL patterns whose requests fail while an agent
	// controls the tab (the request guard).
	BlockRequests []string `json:"block_requests,omitempty"`
	// URLAllow, when not empty, is the only URLs the hosted browser may
	// open; URLDeny is refused always. Patterns are URLs with * wildcards.
	URLAllow []string `json:"url_allow,omitempty"`
	URLDeny  []string `json:"url_deny,omitempty"`
	// Control is how agents get control of the tab: "" or "ask" (the
	// customer grants it), "auto" (granted on request), "never" (agents
	// only watch and point).
	Control string `json:"control,omitempty"`
	// AgentClipboard lets agents paste into the tab and copy from it;
	// customers always may.
	AgentClipboard bool `json:"agent_clipboard,omitempty"`
	// Screenshare is whether agents may ask to see the customer's screen:
	// "" or "ask" (the customer allows each request), "never".
	Screenshare string `json:"screenshare,omitempty"`
	// Downloads lets the page's downloads go to the customer's device
	// (never to agents); off by default.
	Downloads bool `json:"downloads,omitempty"`
}

// ScopedSelector is a CSS selector that applies on the pages whose URL
// matches one of URLs (patterns with * wildcards); no URLs means every page.
type ScopedSelector struct {
	Selector string   `json:"selector"`
	URLs     []string `json:"urls,omitempty"`
}

// Bounds of a policy.
const (
	maxPolicyRules  = 200
	maxSelectorLen  = 500
	maxPatternLen   = 1000
	maxRulePatterns = 50
)

func (p *Policy) validate() error {
	switch p.BlockMode {
	case "", "denylist", "allowlist":
	default:
		return fmt.Errorf("%w: block_mode %q (want denylist or allowlist)", ErrInvalid, p.BlockMode)
	}
	switch p.Control {
	case "", "ask", "auto", "never":
	default:
		return fmt.Errorf("%w: control %q (want ask, auto or never)", ErrInvalid, p.Control)
	}
	switch p.Screenshare {
	case "", "ask", "never":
	default:
		return fmt.Errorf("%w: screenshare %q (want ask or never)", ErrInvalid, p.Screenshare)
	}
	for name, rules := range map[string][]ScopedSelector{"mask": p.Mask, "unmask": p.Unmask, "block": p.Block, "allow": p.Allow} {
		if len(rules) > maxPolicyRules {
			return fmt.Errorf("%w: more than %d %s rules", ErrInvalid, maxPolicyRules, name)
		}
		for i := range rules {
			if err := rules[i].validate(); err != nil {
				return fmt.Errorf("%s rule %d: %w", name, i+1, err)
			}
		}
	}
	for name, pats := range map[string][]string{"url_allow": p.URLAllow, "url_deny": p.URLDeny, "block_requests": p.BlockRequests} {
		if len(pats) > maxPolicyRules {
			return fmt.Errorf("%w: more than %d %s patterns", ErrInvalid, maxPolicyRules, name)
		}
		for _, pat := range pats {
			if err := validPattern(pat); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if len(p.MaskFrameOrigins) > maxOrigins {
		return fmt.Errorf("%w: more than %d mask_frame_origins", ErrInvalid, maxOrigins)
	}
	for i, o := range p.MaskFrameOrigins {
		norm, err := normOrigin(o)
		if err != nil {
			return fmt.Errorf("mask_frame_origins: %w", err)
		}
		p.MaskFrameOrigins[i] = norm
	}
	return nil
}

func (s *ScopedSelector) validate() error {
	s.Selector = strings.TrimSpace(s.Selector)
	if s.Selector == "" || len(s.Selector) > maxSelectorLen {
		return fmt.Errorf("%w: a selector must be 1 to %d bytes", ErrInvalid, maxSelectorLen)
	}
	if !balanced(s.Selector) {
		return fmt.Errorf("%w: selector %q has unbalanced brackets or quotes", ErrInvalid, s.Selector)
	}
	if len(s.URLs) > maxRulePatterns {
		return fmt.Errorf("%w: more than %d URL patterns on one rule", ErrInvalid, maxRulePatterns)
	}
	for _, pat := range s.URLs {
		if err := validPattern(pat); err != nil {
			return err
		}
	}
	return nil
}

// validPattern accepts a URL pattern: printable, no spaces, at most
// maxPatternLen bytes, starting with http(s):// or *.
func validPattern(p string) error {
	if p == "" || len(p) > maxPatternLen {
		return fmt.Errorf("%w: a URL pattern must be 1 to %d bytes", ErrInvalid, maxPatternLen)
	}
	for _, r := range p {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return fmt.Errorf("%w: URL pattern %q must be printable ASCII without spaces", ErrInvalid, p)
		}
	}
	if !strings.HasPrefix(p, "http://") && !strings.HasPrefix(p, "https://") && !strings.HasPrefix(p, "*") {
		return fmt.Errorf("%w: URL pattern %q must start with http://, https:// or *", ErrInvalid, p)
	}
	return nil
}

// balanced checks that brackets, parentheses and quotes of a selector pair
// up; the browser parses the rest, and a rule it cannot parse masks or
// blocks nothing more than its own matches.
func balanced(sel string) bool {
	var stack []rune
	var quote rune
	escaped := false
	for _, r := range sel {
		switch {
		case escaped:
			escaped = false
		case r == '\\':
			escaped = true
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '[' || r == '(':
			stack = append(stack, r)
		case r == ']' || r == ')':
			want := map[rune]rune{']': '[', ')': '('}[r]
			if len(stack) == 0 || stack[len(stack)-1] != want {
				return false
			}
			stack = stack[:len(stack)-1]
		case r < ' ':
			return false
		}
	}
	return quote == 0 && len(stack) == 0 && !escaped
}
