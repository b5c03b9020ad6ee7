package tenant

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandem-cobrowse/tandem/pkg/auth"
	"github.com/tandem-cobrowse/tandem/pkg/bus"
)

func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			fmt.Fprintf(os.Stderr, "goroutines left behind: %d, started with %d\n", n, before)
			buf := make([]byte, 1<<20)
			os.Stderr.Write(buf[:runtime.Stack(buf, true)])
			code = 1
		}
	}
	os.Exit(code)
}

// clock is a settable time source for the store's now hook.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// cheap argon2 parameters keep the race-instrumented tests fast; the
// encoding carries them, so verification runs the same code.
var cheap = auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// env is a store on a real embedded NATS server in a temp dir.
type env struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	bus   *bus.Bus
	store *Store
	clock *clock
	cfg   Config
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, dir: t.TempDir(), clock: &clock{t: time.Now().UTC()}, cfg: cfg}
	e.start()
	return e
}

// start starts the bus on e.dir and opens the store on it.
func (e *env) start() {
	e.t.Helper()
	b, err := bus.Start(e.ctx, bus.Config{Dir: e.dir}, zap.NewNop())
	if err != nil {
		e.t.Fatalf("bus.Start: %v", err)
	}
	e.t.Cleanup(func() { b.Close() })
	s, err := Open(e.ctx, b.JetStream(), e.cfg, zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	s.now = e.clock.Now
	s.hashPassword = func(pw string) (string, error) { return auth.HashPasswordWith(pw, cheap) }
	e.bus, e.store = b, s
}

// restart stops the bus and starts it again on the same directory.
func (e *env) restart() {
	e.t.Helper()
	if err := e.bus.Close(); err != nil {
		e.t.Fatalf("bus.Close: %v", err)
	}
	e.start()
}

func (e *env) company(slug string) Company {
	e.t.Helper()
	c, err := e.store.CreateCompany(e.ctx, Company{Slug: slug, Name: "Company " + slug})
	if err != nil {
		e.t.Fatalf("CreateCompany(%q): %v", slug, err)
	}
	return c
}

func (e *env) agent(company, email string) Agent {
	e.t.Helper()
	a, err := e.store.CreateAgent(e.ctx, company, email, "Agent "+email, "password-"+email, RoleAgent)
	if err != nil {
		e.t.Fatalf("CreateAgent(%q, %q): %v", company, email, err)
	}
	return a
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"set", Config{Replicas: 3, PINLength: 8, PINLifetime: time.Minute, LoginLifetime: time.Hour}, true},
		{"replicas", Config{Replicas: 6}, false},
		{"negative replicas", Config{Replicas: -1}, false},
		{"short PIN", Config{PINLength: 4}, false},
		{"long PIN", Config{PINLength: 13}, false},
		{"negative PIN lifetime", Config{PINLifetime: -1}, false},
		{"negative login lifetime", Config{LoginLifetime: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", tc.cfg, err, tc.ok)
			}
		})
	}
}

func TestOpenTwiceBindsSameBuckets(t *testing.T) {
	e := newEnv(t, Config{})
	e.company("acme")
	s2, err := Open(e.ctx, e.bus.JetStream(), Config{}, zap.NewNop())
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if _, err := s2.GetCompany(e.ctx, "acme"); err != nil {
		t.Errorf("GetCompany through second store: %v", err)
	}
	st, err := s2.sessions.Status(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BackingStore() != "JetStream" || st.History() != 1 || st.Config().Storage != jetstream.FileStorage {
		t.Errorf("sessions bucket: history %d, storage %v; want 1, file", st.History(), st.Config().Storage)
	}
}

func TestCompanies(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	got, err := s.CreateCompany(ctx, Company{
		Slug: "acme", Name: "  Acme Inc. ", PINLength: 8, PINLifetime: 5 * time.Minute,
		AllowedOrigins: []string{"https://Shop.Example.com", "http://localhost:8080/"},
	})
	if err != nil {
		t.Fatalf("CreateCompany: %v", err)
	}
	want := Company{
		Slug: "acme", Name: "Acme Inc.", PINLength: 8, PINLifetime: 5 * time.Minute,
		AllowedOrigins: []string{"https://shop.example.com", "http://localhost:8080"},
		CreatedAt:      e.clock.Now(),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("CreateCompany (-want +got):\n%s", d)
	}
	if g, err := s.GetCompany(ctx, "acme"); err != nil || !cmp.Equal(g, want) {
		t.Errorf("GetCompany = %+v, %v; want %+v", g, err, want)
	}
	if _, err := s.CreateCompany(ctx, Company{Slug: "acme", Name: "Other"}); !errors.Is(err, ErrExists) {
		t.Errorf("CreateCompany(duplicate) error = %v, want ErrExists", err)
	}
	e.company("beta")
	e.company("a1")
	list, err := s.ListCompanies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var slugs []string
	for _, c := range list {
		slugs = append(slugs, c.Slug)
	}
	if d := cmp.Diff([]string{"a1", "acme", "beta"}, slugs); d != "" {
		t.Errorf("ListCompanies slugs (-want +got):\n%s", d)
	}
	for _, slug := range []string{"", "nope", "ACME", "a.b", "*", ">", "acme.x"} {
		if _, err := s.GetCompany(ctx, slug); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetCompany(%q) error = %v, want ErrNotFound", slug, err)
		}
	}

	upd, err := s.UpdateCompany(ctx, "acme", func(c *Company) error {
		c.Name = "Acme Corp"
		c.Disabled = true
		return nil
	})
	if err != nil || upd.Name != "Acme Corp" || !upd.Disabled {
		t.Errorf("UpdateCompany = %+v, %v", upd, err)
	}
	if _, err := s.UpdateCompany(ctx, "acme", func(c *Company) error { c.Slug = "other"; return nil }); !errors.Is(err, ErrInvalid) {
		t.Errorf("UpdateCompany(change slug) error = %v, want ErrInvalid", err)
	}
	if _, err := s.UpdateCompany(ctx, "acme", func(c *Company) error { c.Name = ""; return nil }); !errors.Is(err, ErrInvalid) {
		t.Errorf("UpdateCompany(empty name) error = %v, want ErrInvalid", err)
	}
	if _, err := s.UpdateCompany(ctx, "ghost", func(c *Company) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateCompany(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestCreateCompanyInvalid(t *testing.T) {
	e := newEnv(t, Config{})
	for _, c := range []Company{
		{Slug: "", Name: "x"},
		{Slug: "a", Name: "x"},
		{Slug: "-ab", Name: "x"},
		{Slug: "Ab", Name: "x"},
		{Slug: "a.b", Name: "x"},
		{Slug: "a_b", Name: "x"},
		{Slug: strings.Repeat("a", 41), Name: "x"},
		{Slug: "ok", Name: "  "},
		{Slug: "ok", Name: "x", PINLength: 5},
		{Slug: "ok", Name: "x", PINLength: 11},
		{Slug: "ok", Name: "x", PINLifetime: -time.Second},
		{Slug: "ok", Name: "x", PINLifetime: 25 * time.Hour},
		{Slug: "ok", Name: "x", AllowedOrigins: []string{"ftp://x"}},
		{Slug: "ok", Name: "x", AllowedOrigins: []string{"https://x/path"}},
		{Slug: "ok", Name: "x", AllowedOrigins: []string{"https://"}},
		{Slug: "ok", Name: "x", AllowedOrigins: []string{"https://u:p@x"}},
	} {
		if _, err := e.store.CreateCompany(e.ctx, c); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateCompany(%+v) error = %v, want ErrInvalid", c, err)
		}
	}
	if _, err := e.store.CreateCompany(e.ctx, Company{Slug: "ok", Name: "x"}); err != nil {
		t.Errorf("CreateCompany(valid after invalid tries) error = %v", err)
	}
}

func TestAgents(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	e.company("beta")
	a, err := s.CreateAgent(ctx, "acme", "  Ann@Acme.Test ", "Ann", "s3cret-pass", RoleAdmin)
	if err != nil {
		t.Fatalf("CreateAgent: %v", err)
	}
	if !strings.HasPrefix(a.ID, "a_") || a.Company != "acme" || a.Email != "ann@acme.test" || a.Role != RoleAdmin ||
		!strings.HasPrefix(a.PasswordHash, "$argon2id$") || strings.Contains(a.PasswordHash, "s3cret-pass") {
		t.Errorf("CreateAgent = %+v", a)
	}
	if g, err := s.GetAgent(ctx, "acme", a.ID); err != nil || !cmp.Equal(g, a) {
		t.Errorf("GetAgent = %+v, %v; want %+v", g, err, a)
	}
	if _, err := s.GetAgent(ctx, "beta", a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetAgent(other company) error = %v, want ErrNotFound", err)
	}
	// The e-mail is unique across companies, whatever its case.
	for _, tc := range []struct{ company, email string }{{"acme", "ann@acme.test"}, {"beta", "ANN@acme.test"}} {
		if _, err := s.CreateAgent(ctx, tc.company, tc.email, "x", "password1", RoleAgent); !errors.Is(err, ErrExists) {
			t.Errorf("CreateAgent(%s, %s) error = %v, want ErrExists", tc.company, tc.email, err)
		}
	}
	e.clock.Advance(time.Second)
	b, err := s.CreateAgent(ctx, "acme", "bob@acme.test", "", "password2", "")
	if err != nil {
		t.Fatalf("CreateAgent(defaults): %v", err)
	}
	if b.Name != "bob@acme.test" || b.Role != RoleAgent {
		t.Errorf("CreateAgent defaults: name %q role %q; want e-mail and agent", b.Name, b.Role)
	}
	e.agent("beta", "carl@beta.test")
	list, err := s.ListAgents(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Errorf("ListAgents(acme) = %+v, want ann then bob", list)
	}
	for _, tc := range []struct {
		name                            string
		company, email, password, agent string
		role                            Role
		want                            error
	}{
		{"short password", "acme", "d@acme.test", "1234567", "", RoleAgent, ErrInvalid},
		{"long password", "acme", "d@acme.test", strings.Repeat("p", auth.MaxPasswordLen+1), "", RoleAgent, ErrInvalid},
		{"bad email", "acme", "not-an-email", "password", "", RoleAgent, ErrInvalid},
		{"named email", "acme", "Dan <d@acme.test>", "password", "", RoleAgent, ErrInvalid},
		{"bad role", "acme", "d@acme.test", "password", "", Role("root"), ErrInvalid},
		{"unknown company", "ghost", "d@acme.test", "password", "", RoleAgent, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.CreateAgent(ctx, tc.company, tc.email, tc.agent, tc.password, tc.role); !errors.Is(err, tc.want) {
				t.Errorf("CreateAgent error = %v, want %v", err, tc.want)
			}
		})
	}
	// A refused agent did not claim its address.
	e.agent("acme", "d@acme.test")
}

func TestConcurrentSameEmail(t *testing.T) {
	e := newEnv(t, Config{})
	e.company("acme")
	e.company("beta")
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.store.CreateAgent(e.ctx, []string{"acme", "beta"}[i%2], "same@x.test", "", "password", RoleAgent)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrExists):
			t.Errorf("CreateAgent error = %v, want nil or ErrExists", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of 10 concurrent CreateAgent with one e-mail succeeded, want 1", ok)
	}
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	a := e.agent("acme", "ann@acme.test")
	var verifies int
	var mu sync.Mutex
	s.verifyPassword = func(enc, pw string) (bool, error) {
		mu.Lock()
		verifies++
		mu.Unlock()
		return auth.VerifyPassword(enc, pw)
	}
	got, err := s.Authenticate(ctx, " ANN@acme.test", "password-ann@acme.test")
	if err != nil || got.ID != a.ID {
		t.Fatalf("Authenticate(right) = %+v, %v; want agent %s", got, err, a.ID)
	}
	for _, tc := range []struct{ name, email, pw string }{
		{"wrong password", "ann@acme.test", "password-ann@acme.tesT"},
		{"empty password", "ann@acme.test", ""},
		{"unknown email", "nobody@acme.test", "password-ann@acme.test"},
		{"empty email", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifies = 0
			_, err := s.Authenticate(ctx, tc.email, tc.pw)
			if err != ErrBadCredentials {
				t.Errorf("Authenticate error = %v, want exactly ErrBadCredentials", err)
			}
			if verifies != 1 {
				t.Errorf("Authenticate ran %d argon2 verifications, want 1 (same work for every failure)", verifies)
			}
		})
	}
	if _, err := s.UpdateAgent(ctx, "acme", a.ID, func(a *Agent) error { a.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "ann@acme.test", "password-ann@acme.test"); err != ErrBadCredentials {
		t.Errorf("Authenticate(disabled agent) error = %v, want ErrBadCredentials", err)
	}
	b := e.agent("acme", "bob@acme.test")
	if _, err := s.UpdateCompany(ctx, "acme", func(c *Company) error { c.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, b.Email, "password-bob@acme.test"); err != ErrBadCredentials {
		t.Errorf("Authenticate(disabled company) error = %v, want ErrBadCredentials", err)
	}
}

func TestSetPasswordAndUpdateAgent(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	a := e.agent("acme", "ann@acme.test")
	if err := s.SetPassword(ctx, "acme", a.ID, "short"); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetPassword(short) error = %v, want ErrInvalid", err)
	}
	if err := s.SetPassword(ctx, "acme", a.ID, "a new password"); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	if _, err := s.Authenticate(ctx, a.Email, "password-ann@acme.test"); err != ErrBadCredentials {
		t.Errorf("Authenticate(old password) error = %v, want ErrBadCredentials", err)
	}
	if _, err := s.Authenticate(ctx, a.Email, "a new password"); err != nil {
		t.Errorf("Authenticate(new password): %v", err)
	}
	for name, fn := range map[string]func(*Agent){
		"email":   func(a *Agent) { a.Email = "x@y.test" },
		"company": func(a *Agent) { a.Company = "beta" },
		"id":      func(a *Agent) { a.ID = "a_other" },
		"role":    func(a *Agent) { a.Role = "root" },
	} {
		if _, err := s.UpdateAgent(ctx, "acme", a.ID, func(a *Agent) error { fn(a); return nil }); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpdateAgent(change %s) error = %v, want ErrInvalid", name, err)
		}
	}
	up, err := s.UpdateAgent(ctx, "acme", a.ID, func(a *Agent) error { a.Role = RoleSupervisor; return nil })
	if err != nil || up.Role != RoleSupervisor {
		t.Errorf("UpdateAgent(role) = %+v, %v", up, err)
	}
}

func TestRestartKeepsData(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := e.ctx
	c := e.company("acme")
	a := e.agent("acme", "ann@acme.test")
	k, secret, err := e.store.CreateAPIKey(ctx, "acme", "CRM")
	if err != nil {
		t.Fatal(err)
	}
	login, _, err := e.store.CreateLogin(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := e.store.CreateSession(ctx, Session{Company: "acme", StartURL: "https://example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	active, err := e.store.CreateSession(ctx, Session{Company: "acme", StartURL: "https://example.com/2"})
	if err != nil {
		t.Fatal(err)
	}
	if active, err = e.store.RedeemPIN(ctx, "acme", active.PIN); err != nil {
		t.Fatal(err)
	}
	cust, err := e.store.CreateCustomerToken(ctx, "acme", active.ID)
	if err != nil {
		t.Fatal(err)
	}

	e.restart()
	s := e.store
	if got, err := s.GetCompany(ctx, "acme"); err != nil || !cmp.Equal(got, c) {
		t.Errorf("GetCompany after restart = %+v, %v; want %+v", got, err, c)
	}
	if got, err := s.Authenticate(ctx, "ann@acme.test", "password-ann@acme.test"); err != nil || !cmp.Equal(got, a) {
		t.Errorf("Authenticate after restart = %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.CreateAgent(ctx, "acme", "ann@acme.test", "", "password", RoleAgent); !errors.Is(err, ErrExists) {
		t.Errorf("CreateAgent(taken e-mail) after restart error = %v, want ErrExists", err)
	}
	if got, err := s.LookupAPIKey(ctx, secret); err != nil || !cmp.Equal(got, k) {
		t.Errorf("LookupAPIKey after restart = %+v, %v; want %+v", got, err, k)
	}
	if got, err := s.LookupLogin(ctx, login); err != nil || got.ID != a.ID {
		t.Errorf("LookupLogin after restart = %+v, %v", got, err)
	}
	if co, id, err := s.LookupCustomerToken(ctx, cust); err != nil || co != "acme" || id != active.ID {
		t.Errorf("LookupCustomerToken after restart = %q, %q, %v", co, id, err)
	}
	list, err := s.ListSessions(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("ListSessions after restart: %d sessions, want 2", len(list))
	}
	if got, err := s.RedeemPIN(ctx, "acme", waiting.PIN); err != nil || got.ID != waiting.ID {
		t.Errorf("RedeemPIN after restart = %+v, %v; want session %s", got, err, waiting.ID)
	}
}

func TestInvalidReason(t *testing.T) {
	err := fmt.Errorf("create agent: %w", fmt.Errorf("%w: role %q", ErrInvalid, "boss"))
	if got, want := InvalidReason(err), `role "boss"`; got != want {
		t.Errorf("InvalidReason(%v) = %q, want %q", err, got, want)
	}
	other := errors.New("nats: timeout")
	if got := InvalidReason(other); got != other.Error() {
		t.Errorf("InvalidReason(%v) = %q, want the whole text", other, got)
	}
}
