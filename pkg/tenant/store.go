package tenant

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/auth"
)

// Sentinel errors. Wrapped errors carry detail after the sentinel's text.
var (
	// ErrNotFound: no such object for this company, or it is no longer
	// usable (an expired login, a revoked API key, an ended session's token).
	ErrNotFound = errors.New("tenant: not found")
	// ErrExists: a company slug, agent e-mail or object ID already taken.
	ErrExists = errors.New("tenant: already exists")
	// ErrInvalidPIN: the PIN cannot be redeemed, for whatever reason.
	ErrInvalidPIN = errors.New("tenant: invalid PIN")
	// ErrBadCredentials: the e-mail and password do not log anyone in.
	ErrBadCredentials = errors.New("tenant: bad credentials")
	// ErrInvalid: an argument breaks a rule (slug form, password length, ...).
	ErrInvalid = errors.New("tenant: invalid")
)

// PIN length bounds; SECURITY.md asks for at least six digits, and the join
// page takes at most ten.
const (
	MinPINLength = 6
	MaxPINLength = 10
)

// Config tunes a Store. The zero value is ready to use.
type Config struct {
	Replicas      int           // JetStream replicas of every bucket; 0 means 1
	PINLength     int           // digits of a PIN when the company sets none; 0 means 6
	PINLifetime   time.Duration // how long a PIN can be redeemed when the company sets none; 0 means 10m
	LoginLifetime time.Duration // how long an agent's login token lives; 0 means 12h
}

// Validate reports settings out of range.
func (c Config) Validate() error {
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("%w: replicas %d (want 1 to 5)", ErrInvalid, c.Replicas)
	}
	if c.PINLength != 0 && (c.PINLength < MinPINLength || c.PINLength > MaxPINLength) {
		return fmt.Errorf("%w: PIN length %d (want %d to %d)", ErrInvalid, c.PINLength, MinPINLength, MaxPINLength)
	}
	if c.PINLifetime < 0 || c.LoginLifetime < 0 {
		return fmt.Errorf("%w: negative lifetime", ErrInvalid)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.PINLength == 0 {
		c.PINLength = 6
	}
	if c.PINLifetime == 0 {
		c.PINLifetime = 10 * time.Minute
	}
	if c.LoginLifetime == 0 {
		c.LoginLifetime = 12 * time.Hour
	}
	return c
}

// Bucket names.
const (
	bucketCompanies = "tandem_companies"
	bucketAgents    = "tandem_agents"
	bucketEmails    = "tandem_emails"
	bucketAPIKeys   = "tandem_apikeys"
	bucketSecrets   = "tandem_secrets"
	bucketPINs      = "tandem_pins"
	bucketSessions  = "tandem_sessions"
)

// markerTTL is how long purge and expiry markers stay in the buckets; it is also the slack added to a PIN's or login's TTL so that
// the server never removes an entry before the store's own expiry check does.
const markerTTL = time.Minute

// maxCASTries bounds a compare-and-swap loop under contention.
const maxCASTries = 64

// Store is the tenant store. Create it with Open.
type Store struct {
	cfg     Config
	log     *zap.Logger
	streams map[string]jetstream.Stream // each bucket's stream, by bucket name (listJSON)

	companies, agents, emails, apiKeys, secrets, pins, sessions jetstream.KeyValue

	// Test hooks, set only before first use.
	now            func() time.Time
	hashPassword   func(string) (string, error)
	verifyPassword func(encoded, pw string) (bool, error)
	newPIN         func(digits int) string

	dummyOnce sync.Once
	dummyHash string // a hash no password matches; Authenticate verifies against it for unknown e-mails
}

// Open creates the buckets that do not exist yet (updating the settings of
// those that do) and returns a Store on them. It starts no goroutines.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, log *zap.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{
		cfg:            cfg,
		log:            log.Named("tenant"),
		streams:        map[string]jetstream.Stream{},
		now:            time.Now,
		hashPassword:   auth.HashPassword,
		verifyPassword: auth.VerifyPassword,
		newPIN:         auth.NewPIN,
	}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
		desc string
	}{
		{&s.companies, bucketCompanies, "Tandem companies by slug"},
		{&s.agents, bucketAgents, "Tandem agents by company and id"},
		{&s.emails, bucketEmails, "Tandem agent e-mail index (hashed)"},
		{&s.apiKeys, bucketAPIKeys, "Tandem API keys by company and id"},
		{&s.secrets, bucketSecrets, "Tandem token and API key index (hashed)"},
		{&s.pins, bucketPINs, "Tandem live PINs by company (hashed)"},
		{&s.sessions, bucketSessions, "Tandem session records by company and id"},
	} {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         b.name,
			Description:    b.desc,
			History:        1, // no old values: a cleared PIN or revoked key leaves no copy behind
			Storage:        jetstream.FileStorage,
			Replicas:       cfg.Replicas,
			LimitMarkerTTL: markerTTL, // enables per-key TTLs and expiring purge markers
		})
		if err != nil {
			return nil, fmt.Errorf("tenant: open bucket %s: %w", b.name, err)
		}
		if cfg.Replicas > 1 {
			if kv, err = leaderReads(ctx, js, b.name); err != nil {
				return nil, fmt.Errorf("tenant: open bucket %s: %w", b.name, err)
			}
		}
		*b.kv = kv
		if s.streams[b.name], err = js.Stream(ctx, "KV_"+b.name); err != nil {
			return nil, fmt.Errorf("tenant: open bucket %s: %w", b.name, err)
		}
	}
	return s, nil
}

// leaderReads turns off direct gets on a replicated bucket's stream and
// binds it again, so that every read goes to the stream's leader. Direct
// gets may be answered by a follower that has not applied the latest
// write yet (NATS does not promise reading one's own writes through them),
// and a customer who redeemed a PIN on one gateway must find the session
// changed on the next request (docs/scaling.md).
func leaderReads(ctx context.Context, js jetstream.JetStream, bucket string) (jetstream.KeyValue, error) {
	st, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Config.AllowDirect {
		cfg := info.Config
		cfg.AllowDirect = false
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("turn off direct gets: %w", err)
		}
	}
	return js.KeyValue(ctx, bucket)
}

// Names allowed in keys. A slug or ID that does not match cannot name an
// object (and could otherwise smuggle "." or wildcards into a key).
var (
	slugRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,39}$`)
	idRe   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

func validSlug(s string) bool { return slugRe.MatchString(s) }
func validID(s string) bool   { return idRe.MatchString(s) }

// objKey is the key of an object that belongs to a company.
func objKey(company, id string) string { return company + "." + id }

// getJSON reads key into v. A missing or deleted key is ErrNotFound.
func getJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", kv.Bucket(), err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("decode %s entry: %w", kv.Bucket(), err)
	}
	return e.Revision(), nil
}

// createJSON stores v under key unless the key holds a value (ErrExists).
func createJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any, opts ...jetstream.KVCreateOpt) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s entry: %w", kv.Bucket(), err)
	}
	rev, err := kv.Create(ctx, key, b, opts...)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, ErrExists
	}
	if err != nil {
		return 0, fmt.Errorf("create in %s: %w", kv.Bucket(), err)
	}
	return rev, nil
}

// errNoChange from an update function leaves the entry as it is.
var errNoChange = errors.New("tenant: no change")

// updateJSON is a compare-and-swap loop: it reads key, lets fn change the
// value, and writes it back if nobody wrote in between, else starts over. fn
// may run several times and must depend only on its argument. If fn returns
// errNoChange, nothing is written and the current value is returned.
func updateJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string, fn func(*T) error) (T, error) {
	var zero T
	for range maxCASTries {
		var v T
		rev, err := getJSON(ctx, kv, key, &v)
		if err != nil {
			return zero, err
		}
		if err := fn(&v); errors.Is(err, errNoChange) {
			return v, nil
		} else if err != nil {
			return zero, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return zero, fmt.Errorf("encode %s entry: %w", kv.Bucket(), err)
		}
		_, err = kv.Update(ctx, key, b, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return zero, fmt.Errorf("update %s: %w", kv.Bucket(), err)
		}
		return v, nil
	}
	return zero, fmt.Errorf("update %s: still contended after %d tries", kv.Bucket(), maxCASTries)
}

// listJSON decodes the current value of every key matching filter (a KV
// key pattern such as "<company>.*"), in the order they were last written.
//
// A watch alone is not an exact list: while keys it covers are written, its
// "all initial values delivered" mark can come before some of them, and it
// can deliver a key twice (TestListWhileWriting saw about one list in three
// short by a key under concurrent updates). A company's session quota counts
// on this list, so the keys are first taken from the stream's count of
// messages per subject, which holds every write finished before the call;
// the watch gives their values, a key it missed is read on its own, and a
// key it gave twice is kept once, at its newest value.
func listJSON[T any](ctx context.Context, st jetstream.Stream, kv jetstream.KeyValue, filter string) ([]T, error) {
	fail := func(err error) ([]T, error) { return nil, fmt.Errorf("list %s: %w", kv.Bucket(), err) }
	prefix := "$KV." + kv.Bucket() + "."
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+filter))
	if err != nil {
		return fail(err)
	}
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return fail(err)
	}
	defer w.Stop()
	latest := make(map[string]jetstream.KeyValueEntry, len(info.State.Subjects))
	for done := false; !done; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fail(errors.New("watcher closed"))
			}
			if e == nil { // the watch's own mark of its initial values
				done = true
			} else if old, ok := latest[e.Key()]; !ok || e.Revision() > old.Revision() {
				latest[e.Key()] = e
			}
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	for subject := range info.State.Subjects {
		key := strings.TrimPrefix(subject, prefix)
		if _, ok := latest[key]; ok {
			continue
		}
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) { // deleted, or a purge marker
			continue
		}
		if err != nil {
			return fail(err)
		}
		latest[key] = e
	}
	entries := slices.SortedFunc(maps.Values(latest), func(a, b jetstream.KeyValueEntry) int {
		return cmp.Compare(a.Revision(), b.Revision())
	})
	out := make([]T, 0, len(entries))
	for _, e := range entries {
		var v T
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			return nil, fmt.Errorf("decode %s entry %s: %w", kv.Bucket(), e.Key(), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// streamOf is kv's stream, for listJSON.
func (s *Store) streamOf(kv jetstream.KeyValue) jetstream.Stream { return s.streams[kv.Bucket()] }

// purge removes key, leaving a marker that expires after markerTTL. With
// rev > 0 it removes the key only if rev is still its latest revision, and
// reports jetstream.ErrKeyRevisionMismatch otherwise.
func purge(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64) error {
	opts := []jetstream.KVDeleteOpt{jetstream.PurgeTTL(markerTTL)}
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	if err := kv.Purge(ctx, key, opts...); err != nil {
		return fmt.Errorf("purge from %s: %w", kv.Bucket(), err)
	}
	return nil
}

// InvalidReason returns what was wrong with the input of an ErrInvalid
// error, without the operation and sentinel prefixes this package adds
// (`create agent: tenant: invalid: role "x"` gives `role "x"`), for showing
// to the client that sent it. Other errors give their whole text.
func InvalidReason(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, ErrInvalid.Error()+": "); ok && errors.Is(err, ErrInvalid) {
		return after
	}
	return msg
}
