package tenant

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
)

func (e *env) session(company string) Session {
	e.t.Helper()
	s, err := e.store.CreateSession(e.ctx, Session{Company: company, StartURL: "https://example.com/", CreatedBy: "a_x"})
	if err != nil {
		e.t.Fatalf("CreateSession(%s): %v", company, err)
	}
	return s
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

func TestCreateSession(t *testing.T) {
	e := newEnv(t, Config{PINLifetime: 3 * time.Minute})
	ctx, s := e.ctx, e.store
	e.company("acme")
	got, err := s.CreateSession(ctx, Session{
		Company: "acme", StartURL: "https://example.com/x", CreatedBy: "a_1", WorkerID: "w1",
		State: SessionEnded, EndReason: "junk", PIN: "000000", // ignored
	})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	now := e.clock.Now()
	if !strings.HasPrefix(got.ID, "s_") || len(got.PIN) != 6 || !isDigits(got.PIN) {
		t.Errorf("CreateSession: id %q, PIN of %d chars; want s_..., 6 digits", got.ID, len(got.PIN))
	}
	want := Session{
		ID: got.ID, Company: "acme", StartURL: "https://example.com/x", CreatedBy: "a_1", WorkerID: "w1",
		State: SessionWaiting, CreatedAt: now, PINExpiresAt: now.Add(3 * time.Minute), PIN: got.PIN,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("CreateSession (-want +got):\n%s", d)
	}
	if g, err := s.GetSession(ctx, "acme", got.ID); err != nil || !cmp.Equal(g, want) {
		t.Errorf("GetSession = %+v, %v; want %+v", g, err, want)
	}
	// The PIN entry carries a server-side TTL, so an abandoned PIN does not
	// stay in the bucket.
	st, err := e.bus.JetStream().Stream(ctx, "KV_"+bucketPINs)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, "$KV."+bucketPINs+"."+pinKey("acme", got.PIN))
	if err != nil || m.Header.Get("Nats-TTL") == "" {
		t.Errorf("PIN entry: %v, header %v; want a Nats-TTL header", err, m)
	}

	// Caller-chosen ID.
	mine, err := s.CreateSession(ctx, Session{ID: "s_mine", Company: "acme", StartURL: "http://x.test"})
	if err != nil || mine.ID != "s_mine" {
		t.Errorf("CreateSession(ID s_mine) = %+v, %v", mine, err)
	}
	if _, err := s.CreateSession(ctx, Session{ID: "s_mine", Company: "acme", StartURL: "http://x.test"}); !errors.Is(err, ErrExists) {
		t.Errorf("CreateSession(taken ID) error = %v, want ErrExists", err)
	}
	for _, tc := range []struct {
		name string
		sess Session
		want error
	}{
		{"unknown company", Session{Company: "ghost", StartURL: "https://x.test"}, ErrNotFound},
		{"bad company", Session{Company: "a.*", StartURL: "https://x.test"}, ErrNotFound},
		{"bad id", Session{ID: "s.1", Company: "acme", StartURL: "https://x.test"}, ErrInvalid},
		{"wildcard id", Session{ID: "*", Company: "acme", StartURL: "https://x.test"}, ErrInvalid},
		{"no url", Session{Company: "acme"}, ErrInvalid},
		{"relative url", Session{Company: "acme", StartURL: "/x"}, ErrInvalid},
		{"file url", Session{Company: "acme", StartURL: "file:///etc/passwd"}, ErrInvalid},
		{"javascript url", Session{Company: "acme", StartURL: "javascript:alert(1)"}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.CreateSession(ctx, tc.sess); !errors.Is(err, tc.want) {
				t.Errorf("CreateSession error = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := s.UpdateCompany(ctx, "acme", func(c *Company) error { c.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSession(ctx, Session{Company: "acme", StartURL: "https://x.test"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateSession(disabled company) error = %v, want ErrInvalid", err)
	}
}

func TestPINLengthAndDigits(t *testing.T) {
	e := newEnv(t, Config{PINLength: 7})
	e.company("acme")
	if _, err := e.store.CreateCompany(e.ctx, Company{Slug: "long", Name: "Long", PINLength: 10}); err != nil {
		t.Fatal(err)
	}
	for company, want := range map[string]int{"acme": 7, "long": 10} {
		seen := map[string]bool{}
		for range 25 {
			p := e.session(company).PIN
			if len(p) != want || !isDigits(p) {
				t.Errorf("%s: PIN %q, want %d digits", company, p, want)
			}
			if seen[p] {
				t.Errorf("%s: PIN %q issued twice while live", company, p)
			}
			seen[p] = true
		}
	}
}

func TestRedeemPIN(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	e.company("beta")
	sess := e.session("acme")
	other := e.session("beta")

	// Another company's slug, malformed input: the same error, and the PIN
	// still works for its own company afterwards.
	for _, tc := range []struct{ company, pin string }{
		{"beta", sess.PIN},
		{"acme", other.PIN},
		{"ghost", sess.PIN},
		{"", sess.PIN},
		{"acme.*", sess.PIN},
		{">", sess.PIN},
		{"acme", ""},
		{"acme", sess.PIN[:5]},
		{"acme", sess.PIN + "0"},
		{"acme", " " + sess.PIN},
		{"acme", "abcdef"},
		{"acme", "12.4*>"},
		{"acme", strings.Repeat("1", 13)},
	} {
		if got, err := s.RedeemPIN(ctx, tc.company, tc.pin); err != ErrInvalidPIN || got != (Session{}) {
			t.Errorf("RedeemPIN(%q, %q) = %+v, %v; want exactly ErrInvalidPIN", tc.company, tc.pin, got, err)
		}
	}
	got, err := s.RedeemPIN(ctx, "acme", sess.PIN)
	if err != nil {
		t.Fatalf("RedeemPIN: %v", err)
	}
	want := sess
	joined := e.clock.Now()
	want.State, want.PIN, want.JoinedAt = SessionActive, "", &joined
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("RedeemPIN (-want +got):\n%s", d)
	}
	if g, err := s.GetSession(ctx, "acme", sess.ID); err != nil || !cmp.Equal(g, want) {
		t.Errorf("GetSession after redeem = %+v, %v; want %+v", g, err, want)
	}
	if _, err := s.RedeemPIN(ctx, "acme", sess.PIN); err != ErrInvalidPIN {
		t.Errorf("second RedeemPIN error = %v, want exactly ErrInvalidPIN", err)
	}
	if _, err := s.pins.Get(ctx, pinKey("acme", sess.PIN)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("PIN entry after redeem: %v, want gone", err)
	}
	if _, err := s.RedeemPIN(ctx, "beta", other.PIN); err != nil {
		t.Errorf("RedeemPIN(beta): %v", err)
	}
}

func TestRedeemExpiredPIN(t *testing.T) {
	e := newEnv(t, Config{PINLifetime: 10 * time.Minute})
	ctx, s := e.ctx, e.store
	if _, err := s.CreateCompany(ctx, Company{Slug: "fast", Name: "Fast", PINLifetime: time.Minute}); err != nil {
		t.Fatal(err)
	}
	e.company("acme")
	fast := e.session("fast")
	slow := e.session("acme")
	if want := e.clock.Now().Add(time.Minute); !fast.PINExpiresAt.Equal(want) {
		t.Errorf("PINExpiresAt = %v, want %v (company lifetime)", fast.PINExpiresAt, want)
	}
	e.clock.Advance(time.Minute)
	if _, err := s.RedeemPIN(ctx, "fast", fast.PIN); err != ErrInvalidPIN {
		t.Errorf("RedeemPIN(expired) error = %v, want exactly ErrInvalidPIN", err)
	}
	if g, _ := s.GetSession(ctx, "fast", fast.ID); g.State != SessionWaiting {
		t.Errorf("expired session state = %s, want still waiting (ending it is the gateway's call)", g.State)
	}
	e.clock.Advance(9*time.Minute - time.Millisecond)
	if _, err := s.RedeemPIN(ctx, "acme", slow.PIN); err != nil {
		t.Errorf("RedeemPIN 1ms before expiry: %v", err)
	}
}

func TestRedeemPINConcurrently(t *testing.T) {
	e := newEnv(t, Config{})
	e.company("acme")
	sess := e.session("acme")
	const n = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = e.store.RedeemPIN(e.ctx, "acme", sess.PIN)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch err {
		case nil:
			ok++
		case ErrInvalidPIN:
		default:
			t.Errorf("RedeemPIN error = %v, want nil or exactly ErrInvalidPIN", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent redemptions of one PIN succeeded, want exactly 1", ok, n)
	}
}

func TestPINCollisions(t *testing.T) {
	e := newEnv(t, Config{PINLifetime: time.Minute})
	ctx, s := e.ctx, e.store
	e.company("acme")
	e.company("beta")
	var mu sync.Mutex
	var draws []string
	script := func(pins ...string) {
		mu.Lock()
		defer mu.Unlock()
		draws = pins
	}
	s.newPIN = func(int) string {
		mu.Lock()
		defer mu.Unlock()
		if len(draws) == 0 {
			return "999999"
		}
		p := draws[0]
		draws = draws[1:]
		return p
	}
	script("111111")
	first := e.session("acme")
	script("111111", "111111", "222222")
	second := e.session("acme")
	if first.PIN != "111111" || second.PIN != "222222" {
		t.Errorf("PINs %q, %q; want 111111, then 222222 after two collisions", first.PIN, second.PIN)
	}
	// Another company may hold the same PIN at the same time.
	script("111111")
	if p := e.session("beta").PIN; p != "111111" {
		t.Errorf("beta's PIN %q, want 111111 (PINs are per company)", p)
	}
	// Every draw live: give up.
	script(strings.Split(strings.Repeat("111111,", maxPINTries), ",")...)
	if _, err := s.CreateSession(ctx, Session{Company: "acme", StartURL: "https://x.test"}); err == nil {
		t.Errorf("CreateSession with every PIN taken succeeded")
	}
	// An expired PIN frees its number.
	e.clock.Advance(time.Minute)
	script("111111", "111111")
	third := e.session("acme")
	if third.PIN != "111111" {
		t.Errorf("PIN after the holder expired = %q, want 111111 again", third.PIN)
	}
	got, err := s.RedeemPIN(ctx, "acme", "111111")
	if err != nil || got.ID != third.ID {
		t.Errorf("RedeemPIN(reissued PIN) = %s, %v; want session %s", got.ID, err, third.ID)
	}
}

func TestEndSession(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	e.company("beta")
	waiting := e.session("acme")

	if _, err := s.EndSession(ctx, "beta", waiting.ID, "agent_ended"); !errors.Is(err, ErrNotFound) {
		t.Errorf("EndSession(other company) error = %v, want ErrNotFound", err)
	}
	if _, err := s.EndSession(ctx, "acme", waiting.ID, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("EndSession(no reason) error = %v, want ErrInvalid", err)
	}
	e.clock.Advance(time.Second)
	ended, err := s.EndSession(ctx, "acme", waiting.ID, "agent_ended")
	if err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	if ended.State != SessionEnded || ended.PIN != "" || ended.EndReason != "agent_ended" ||
		ended.EndedAt == nil || !ended.EndedAt.Equal(e.clock.Now()) {
		t.Errorf("EndSession = %+v", ended)
	}
	if _, err := s.pins.Get(ctx, pinKey("acme", waiting.PIN)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("PIN entry after EndSession: %v, want gone", err)
	}
	if _, err := s.RedeemPIN(ctx, "acme", waiting.PIN); err != ErrInvalidPIN {
		t.Errorf("RedeemPIN(ended session) error = %v, want ErrInvalidPIN", err)
	}
	// Idempotent: a second end changes nothing.
	e.clock.Advance(time.Second)
	again, err := s.EndSession(ctx, "acme", waiting.ID, "idle")
	if err != nil || !cmp.Equal(again, ended) {
		t.Errorf("second EndSession = %+v, %v; want unchanged %+v", again, err, ended)
	}
	// Ended stays ended.
	if _, err := s.UpdateSession(ctx, "acme", waiting.ID, func(s *Session) error { s.State = SessionActive; return nil }); !errors.Is(err, ErrInvalid) {
		t.Errorf("UpdateSession(revive) error = %v, want ErrInvalid", err)
	}
}

func TestCustomerTokens(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	sess := e.session("acme")
	if _, err := s.CreateCustomerToken(ctx, "acme", sess.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("CreateCustomerToken(waiting) error = %v, want ErrNotFound", err)
	}
	if _, err := s.RedeemPIN(ctx, "acme", sess.PIN); err != nil {
		t.Fatal(err)
	}
	tok, err := s.CreateCustomerToken(ctx, "acme", sess.ID)
	if err != nil {
		t.Fatalf("CreateCustomerToken: %v", err)
	}
	tok2, err := s.CreateCustomerToken(ctx, "acme", sess.ID)
	if err != nil || tok2 == tok || len(tok) != 43 {
		t.Fatalf("CreateCustomerToken: %d-char token, second %v; want 43 chars, distinct", len(tok), err)
	}
	for _, tk := range []string{tok, tok2} {
		if co, id, err := s.LookupCustomerToken(ctx, tk); err != nil || co != "acme" || id != sess.ID {
			t.Errorf("LookupCustomerToken = %q, %q, %v; want acme, %s", co, id, err, sess.ID)
		}
	}
	for _, bad := range []string{"", tok + "x", tok[1:]} {
		if _, _, err := s.LookupCustomerToken(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupCustomerToken(bad) error = %v, want ErrNotFound", err)
		}
	}
	if _, err := s.EndSession(ctx, "acme", sess.ID, "customer_left"); err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{tok, tok2} {
		if _, _, err := s.LookupCustomerToken(ctx, tk); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupCustomerToken after end error = %v, want ErrNotFound", err)
		}
		if _, err := s.secrets.Get(ctx, customerKey(tk)); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("customer token entry after end: %v, want gone", err)
		}
	}
	if _, err := s.CreateCustomerToken(ctx, "acme", sess.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("CreateCustomerToken(ended) error = %v, want ErrNotFound", err)
	}
	if _, err := s.CreateCustomerToken(ctx, "acme", "s_ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CreateCustomerToken(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestListSessionsNewestFirst(t *testing.T) {
	e := newEnv(t, Config{})
	e.company("acme")
	e.company("beta")
	var want []string
	for range 5 {
		e.clock.Advance(time.Second)
		want = append([]string{e.session("acme").ID}, want...)
		e.session("beta")
	}
	if _, err := e.store.EndSession(e.ctx, "acme", want[2], "idle"); err != nil {
		t.Fatal(err)
	}
	list, err := e.store.ListSessions(e.ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.ID)
		if s.Company != "acme" {
			t.Errorf("ListSessions(acme) returned a session of %s", s.Company)
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ListSessions order (-want +got):\n%s", d)
	}
	if list, err := e.store.ListSessions(e.ctx, "ghost"); err != nil || len(list) != 0 {
		t.Errorf("ListSessions(ghost) = %v, %v; want none", list, err)
	}
}

func TestUpdateSession(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	sess := e.session("acme")
	for name, fn := range map[string]func(*Session){
		"company":   func(s *Session) { s.Company = "beta" },
		"id":        func(s *Session) { s.ID = "s_other" },
		"start url": func(s *Session) { s.StartURL = "https://evil.test" },
		"state":     func(s *Session) { s.State = "paused" },
		"pin":       func(s *Session) { s.PIN += "0" },
	} {
		if _, err := s.UpdateSession(ctx, "acme", sess.ID, func(s *Session) error { fn(s); return nil }); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpdateSession(change %s) error = %v, want ErrInvalid", name, err)
		}
	}
	boom := errors.New("boom")
	if _, err := s.UpdateSession(ctx, "acme", sess.ID, func(*Session) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("UpdateSession(fn fails) error = %v, want boom", err)
	}
	if _, err := s.UpdateSession(ctx, "acme", "s_ghost", func(*Session) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateSession(unknown) error = %v, want ErrNotFound", err)
	}

	// Compare-and-swap: concurrent increments all land.
	const n = 10
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateSession(ctx, "acme", sess.ID, func(s *Session) error {
				v, _ := strconv.Atoi(s.WorkerID)
				s.WorkerID = strconv.Itoa(v + 1)
				return nil
			})
			if err != nil {
				t.Errorf("UpdateSession: %v", err)
			}
		}()
	}
	wg.Wait()
	got, err := s.GetSession(ctx, "acme", sess.ID)
	if err != nil || got.WorkerID != strconv.Itoa(n) || got.PIN != sess.PIN {
		t.Errorf("after %d concurrent increments: WorkerID %q, PIN kept %v, %v", n, got.WorkerID, got.PIN == sess.PIN, err)
	}

	// Leaving "waiting" by UpdateSession clears and removes the PIN too.
	got, err = s.UpdateSession(ctx, "acme", sess.ID, func(s *Session) error { s.State = SessionActive; return nil })
	if err != nil || got.PIN != "" {
		t.Errorf("UpdateSession(active) = PIN %q, %v; want cleared", got.PIN, err)
	}
	if _, err := s.pins.Get(ctx, pinKey("acme", sess.PIN)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("PIN entry after leaving waiting: %v, want gone", err)
	}
}

// TestNoRawSecretsStored reads every message left in every bucket's stream
// and looks for passwords, tokens, API key secrets and spent PINs.
func TestNoRawSecretsStored(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	// 10-digit PINs (the longest): a shorter one could turn up by chance
	// inside a hash or a timestamp.
	if _, err := s.CreateCompany(ctx, Company{Slug: "acme", Name: "Acme", PINLength: MaxPINLength}); err != nil {
		t.Fatal(err)
	}
	const password = "Very-Secret-Password-42"
	a, err := s.CreateAgent(ctx, "acme", "ann@acme.test", "Ann", password, RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	login, _, err := s.CreateLogin(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	_, apiSecret, err := s.CreateAPIKey(ctx, "acme", "CRM")
	if err != nil {
		t.Fatal(err)
	}
	redeemed := e.session("acme")
	if _, err := s.RedeemPIN(ctx, "acme", redeemed.PIN); err != nil {
		t.Fatal(err)
	}
	cust, err := s.CreateCustomerToken(ctx, "acme", redeemed.ID)
	if err != nil {
		t.Fatal(err)
	}
	ended := e.session("acme")
	if _, err := s.EndSession(ctx, "acme", ended.ID, "agent_ended"); err != nil {
		t.Fatal(err)
	}
	live := e.session("acme") // its PIN may be stored while it waits

	secrets := map[string]string{
		"password": password, "login token": login, "API key": apiSecret, "customer token": cust,
		"redeemed PIN": redeemed.PIN, "ended session's PIN": ended.PIN,
	}
	livePINSeen := false
	for _, bucket := range []string{bucketCompanies, bucketAgents, bucketEmails, bucketAPIKeys, bucketSecrets, bucketPINs, bucketSessions} {
		st, err := e.bus.JetStream().Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			blob := append([]byte(m.Subject+"\n"+fmt.Sprint(m.Header)+"\n"), m.Data...)
			for what, secret := range secrets {
				if bytes.Contains(blob, []byte(secret)) {
					t.Errorf("%s found in %s message %d (%s)", what, bucket, seq, m.Subject)
				}
			}
			if bytes.Contains(blob, []byte(live.PIN)) {
				livePINSeen = true
				if bucket != bucketSessions {
					t.Errorf("live PIN found in %s message %d (%s)", bucket, seq, m.Subject)
				}
			}
		}
	}
	if !livePINSeen {
		t.Errorf("the live PIN was not found in the sessions bucket; the scan cannot see what it looks for")
	}
}

// A list holds every session created before it, once, while other
// sessions are being written: the company's session quota counts on it.
// A KV watch alone ended its initial values early here (about one list in
// three was short by a session).
func TestListWhileWriting(t *testing.T) {
	e := newEnv(t, Config{})
	e.company("acme")
	var (
		mu   sync.Mutex
		ids  []string
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	for w := range 3 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				mu.Lock()
				var id string
				if len(ids) > 0 {
					id = ids[(n+w)%len(ids)]
				}
				mu.Unlock()
				if id == "" {
					time.Sleep(time.Millisecond)
					continue
				}
				if _, err := e.store.UpdateSession(e.ctx, "acme", id, func(s *Session) error {
					s.WorkerID = "w" + strconv.Itoa(n)
					return nil
				}); err != nil {
					t.Errorf("UpdateSession: %v", err)
					return
				}
			}
		})
	}
	defer func() { close(done); wg.Wait() }()
	short := 0
	for i := range 60 {
		s := e.session("acme")
		mu.Lock()
		ids = append(ids, s.ID)
		mu.Unlock()
		all, err := e.store.ListSessions(e.ctx, "acme")
		if err != nil {
			t.Fatalf("ListSessions: %v", err)
		}
		seen := map[string]bool{}
		for _, s := range all {
			if seen[s.ID] {
				t.Fatalf("after %d creations the list holds %s twice", i+1, s.ID)
			}
			seen[s.ID] = true
		}
		if len(seen) != i+1 {
			short++
			t.Errorf("after %d creations the list holds %d sessions", i+1, len(seen))
		}
	}
	if short > 0 {
		t.Errorf("%d of 60 lists were short", short)
	}
}
