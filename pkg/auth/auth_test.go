package auth

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestHashVerifyDefault(t *testing.T) {
	enc, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=1,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(enc) {
		t.Fatalf("HashPassword = %q, not the expected PHC form", enc)
	}
	if ok, err := VerifyPassword(enc, "correct horse battery staple"); !ok || err != nil {
		t.Errorf("VerifyPassword(right) = %v, %v; want true, nil", ok, err)
	}
	if ok, err := VerifyPassword(enc, "correct horse battery stapl"); ok || err != nil {
		t.Errorf("VerifyPassword(wrong) = %v, %v; want false, nil", ok, err)
	}
}

// cheap keeps the race-instrumented tests fast; the parameters travel in the
// encoding, so verification is the same code path.
var cheap = Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	enc, err := HashPasswordWith("correct horse battery staple", cheap)
	if err != nil {
		t.Fatalf("HashPasswordWith: %v", err)
	}
	for _, tc := range []struct {
		name string
		pw   string
		want bool
	}{
		{"right", "correct horse battery staple", true},
		{"wrong", "correct horse battery stapl", false},
		{"empty", "", false},
		{"case", "Correct horse battery staple", false},
		{"too long", strings.Repeat("x", MaxPasswordLen+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyPassword(enc, tc.pw)
			if err != nil || got != tc.want {
				t.Errorf("VerifyPassword(enc, %.20q) = %v, %v; want %v, nil", tc.pw, got, err, tc.want)
			}
		})
	}
	enc2, err := HashPasswordWith("correct horse battery staple", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if enc2 == enc {
		t.Errorf("two hashes of one password are equal; salt not random")
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	if _, err := HashPassword(strings.Repeat("x", MaxPasswordLen+1)); err == nil {
		t.Errorf("HashPassword(too long) succeeded")
	}
	for _, p := range []Params{
		{},
		{Memory: 1024, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 4, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 1024, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
	} {
		if _, err := HashPasswordWith("pw", p); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("HashPasswordWith(%+v) error = %v, want ErrMalformedHash", p, err)
		}
	}
}

func TestVerifyOtherParams(t *testing.T) {
	// A hash made with other (cheaper) parameters still verifies: the
	// parameters travel in the encoding.
	enc, err := HashPasswordWith("pw-12345", Params{Memory: 1024, Time: 2, Threads: 1, SaltLen: 8, KeyLen: 16})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := VerifyPassword(enc, "pw-12345"); !ok || err != nil {
		t.Errorf("VerifyPassword(%q) = %v, %v; want true, nil", enc, ok, err)
	}
	if ok, err := VerifyPassword(enc, "pw-12346"); ok || err != nil {
		t.Errorf("VerifyPassword(wrong) = %v, %v; want false, nil", ok, err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	salt := base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef"))
	key := base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	good := "$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$" + key
	if _, err := VerifyPassword(good, "x"); err != nil {
		t.Fatalf("VerifyPassword(well-formed) error %v", err)
	}
	for _, enc := range []string{
		"",
		"plain",
		"$argon2id$v=19$m=1024,t=1,p=1$" + salt,
		"$argon2i$v=19$m=1024,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=1024,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=1,p=1,x=2$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=1,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=-1,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=1,p=256$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=1000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=1,p=1$" + salt + "==$" + key,
		"$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$" + key,
		"$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$a2V5",
		"$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$" + key + "$",
		"x$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$" + key,
	} {
		ok, err := VerifyPassword(enc, "x")
		if ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("VerifyPassword(%q) = %v, %v; want false, ErrMalformedHash", enc, ok, err)
		}
	}
}

func TestConcurrentHashing(t *testing.T) {
	// More callers than hash slots: all finish, none deadlocks.
	var wg sync.WaitGroup
	errs := make(chan error, 2*MaxConcurrentHashes)
	for i := 0; i < 2*MaxConcurrentHashes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			enc, err := HashPasswordWith("pw", Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
			if err == nil {
				var ok bool
				if ok, err = VerifyPassword(enc, "pw"); err == nil && !ok {
					err = errors.New("verify failed")
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestNewToken(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tok := NewToken()
		if !re.MatchString(tok) {
			t.Fatalf("NewToken() = %q, want 43 base64url characters", tok)
		}
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) != TokenBytes {
			t.Fatalf("NewToken() = %q decodes to %d bytes, %v; want %d", tok, len(b), err, TokenBytes)
		}
		if seen[tok] {
			t.Fatalf("NewToken() repeated %q", tok)
		}
		seen[tok] = true
	}
}

func TestHashToken(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 test vector.
	if got, want := HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("HashToken(%q) = %q, want %q", "abc", got, want)
	}
	if HashToken("a") == HashToken("b") {
		t.Errorf("HashToken collides")
	}
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^s_[a-z2-7]{20}$`)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewID("s_")
		if !re.MatchString(id) {
			t.Fatalf("NewID(%q) = %q, want s_ and 20 base32 characters", "s_", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestNewPIN(t *testing.T) {
	for _, n := range []int{0, 1, 6, 8, 12} {
		p := NewPIN(n)
		if len(p) != n || strings.Trim(p, "0123456789") != "" {
			t.Errorf("NewPIN(%d) = %q, want %d digits", n, p, n)
		}
	}
	// Every digit turns up, at a roughly uniform rate.
	var counts [10]int
	const total = 20000
	for i := 0; i < total/10; i++ {
		for _, c := range NewPIN(10) {
			counts[c-'0']++
		}
	}
	for d, c := range counts {
		if c < total/10*8/10 || c > total/10*12/10 {
			t.Errorf("digit %d appeared %d times in %d, want about %d", d, c, total, total/10)
		}
	}
}
