package bus

// MaxTokenLen is the longest id Tandem puts in one NATS subject token.
const MaxTokenLen = 64

// ValidToken reports whether s can be one token of a NATS subject as Tandem
// builds them (company, session, viewer and worker ids): 1 to MaxTokenLen
// characters of [A-Za-z0-9_-]. Such a token never holds the separator "."
// or the wildcards "*" and ">", so an id from a request cannot widen a
// subscription or reach another company's subjects.
func ValidToken(s string) bool {
	if s == "" || len(s) > MaxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
