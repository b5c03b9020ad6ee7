package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/auth"
)

// Retention bounds and the default.
const (
	// MinRetention is the shortest retention a company can have, so that
	// shortening it cannot serve to wipe the trail of the last day.
	MinRetention = 24 * time.Hour
	// DefaultRetention is Config.Retention's default.
	DefaultRetention = 365 * 24 * time.Hour
)

// MaxList is the most events one List or ListCompany returns.
const MaxList = 1000

// Config tunes a Log. The zero value is ready to use.
type Config struct {
	Replicas  int           // JetStream replicas of every company's stream; 0 means 1
	Retention time.Duration // how long a company's records are kept unless SetRetention changed it; 0 means DefaultRetention
}

// Validate reports settings out of range.
func (c Config) Validate() error {
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("%w: replicas %d (want 1 to 5)", ErrInvalid, c.Replicas)
	}
	if c.Retention != 0 && c.Retention < MinRetention {
		return fmt.Errorf("%w: retention %s (want at least %s)", ErrInvalid, c.Retention, MinRetention)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	return c
}

// Log writes and lists audit records. Create it with Open.
type Log struct {
	cfg Config
	js  jetstream.JetStream
	log *zap.Logger
	now func() time.Time // test hook, set only before first use

	mu    sync.Mutex
	ready map[string]bool // guarded by mu; companies whose stream is known to exist with the deny flags
}

// Open returns a Log on js after checking that JetStream answers. Company
// streams are made on each company's first record. It starts no goroutines.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, log *zap.Logger) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return nil, fmt.Errorf("audit: reach JetStream: %w", err)
	}
	return &Log{
		cfg:   cfg.withDefaults(),
		js:    js,
		log:   log.Named("audit"),
		now:   time.Now,
		ready: make(map[string]bool),
	}, nil
}

// StreamName is the name of a company's audit stream.
func StreamName(company string) string { return "AUDIT_" + company }

// Subject is where the events of a company's session are stored; with
// session "" it is the subject of the company's own events.
func Subject(company, session string) string {
	if session == "" {
		return "tandem.audit." + company
	}
	return "tandem.audit." + company + "." + session
}

func (l *Log) streamConfig(company string, maxAge time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName(company),
		Description: "Tandem audit trail of company " + company,
		Subjects:    []string{Subject(company, ""), Subject(company, "*")},
		Storage:     jetstream.FileStorage,
		Replicas:    l.cfg.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      maxAge,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// Record stores ev in its company's stream and returns once JetStream has
// acknowledged it. It fills in an empty ID and a zero Time, and refuses
// (ErrInvalid) an event whose company or session is not a subject token or
// whose actor, type or details break the rules of Event. Other errors are
// trouble with NATS; the event was then maybe not stored.
func (l *Log) Record(ctx context.Context, ev Event) error {
	if ev.ID == "" {
		ev.ID = auth.NewID("e_")
	}
	if ev.Time.IsZero() {
		ev.Time = l.now()
	}
	ev.Time = ev.Time.UTC()
	if err := ev.validate(); err != nil {
		return err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("audit: encode event: %w", err)
	}
	for try := 0; ; try++ {
		if err := l.ensure(ctx, ev.Company); err != nil {
			return err
		}
		m := nats.NewMsg(Subject(ev.Company, ev.Session))
		m.Data = b
		_, err = l.js.PublishMsg(ctx, m, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(StreamName(ev.Company)))
		if errors.Is(err, jetstream.ErrNoStreamResponse) && try == 0 {
			l.forget(ev.Company) // the stream went away: make it again
			continue
		}
		if err != nil {
			return fmt.Errorf("audit: record %s of %s: %w", ev.Type, ev.Company, err)
		}
		return nil
	}
}

// ensure makes the company's stream unless it is known to exist, and sets
// the deny flags on a stream that lacks them.
func (l *Log) ensure(ctx context.Context, company string) error {
	l.mu.Lock()
	ok := l.ready[company]
	l.mu.Unlock()
	if ok {
		return nil
	}
	s, err := l.js.Stream(ctx, StreamName(company))
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = l.js.CreateStream(ctx, l.streamConfig(company, l.cfg.Retention))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // made by another process just now, with the same settings
		}
		if err == nil {
			l.log.Info("audit stream created", zap.String("company_id", company))
		}
	case err == nil:
		if cfg := s.CachedInfo().Config; !cfg.DenyDelete || !cfg.DenyPurge {
			_, err = l.js.UpdateStream(ctx, l.streamConfig(company, cfg.MaxAge))
			if err == nil {
				l.log.Warn("audit stream lacked its deny flags; set them", zap.String("company_id", company))
			}
		}
	}
	if err != nil {
		return fmt.Errorf("audit: open stream of %s: %w", company, err)
	}
	l.mu.Lock()
	l.ready[company] = true
	l.mu.Unlock()
	return nil
}

func (l *Log) forget(company string) {
	l.mu.Lock()
	delete(l.ready, company)
	l.mu.Unlock()
}

// List returns up to limit events of one session of company, oldest first
// (limit ≤ 0 or over MaxList means MaxList). A company or session that has
// no records gives an empty list; one that is not a subject token gives
// ErrInvalid.
func (l *Log) List(ctx context.Context, company, session string, limit int) ([]Event, error) {
	if !ValidToken(company) || !ValidToken(session) {
		return nil, fmt.Errorf("%w: company %q, session %q", ErrInvalid, company, session)
	}
	return l.list(ctx, company, Subject(company, session), time.Time{}, limit)
}

// ListCompany returns up to limit events of company, of its sessions and
// its own, stored at or after since (zero: from the oldest kept), oldest
// first. limit is as for List.
func (l *Log) ListCompany(ctx context.Context, company string, since time.Time, limit int) ([]Event, error) {
	if !ValidToken(company) {
		return nil, fmt.Errorf("%w: company %q", ErrInvalid, company)
	}
	return l.list(ctx, company, "", since, limit)
}

// listWait bounds the wait for the messages a consumer said are pending.
const listWait = 10 * time.Second

// list reads the stream through an ephemeral consumer on filter (all
// subjects when ""), which it deletes afterwards.
func (l *Log) list(ctx context.Context, company, filter string, since time.Time, limit int) ([]Event, error) {
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	s, err := l.js.Stream(ctx, StreamName(company))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return []Event{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("audit: list %s: %w", company, err)
	}
	cc := jetstream.ConsumerConfig{
		FilterSubject:     filter,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute, // the server removes it if our Delete below is lost
	}
	if !since.IsZero() {
		t := since.UTC()
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	cons, err := s.CreateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("audit: list %s: %w", company, err)
	}
	info := cons.CachedInfo()
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.DeleteConsumer(dctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			l.log.Debug("delete list consumer", zap.Error(err))
		}
	}()
	want := int(min(info.NumPending, uint64(limit)))
	out := make([]Event, 0, want)
	fctx, cancel := context.WithTimeout(ctx, listWait)
	defer cancel()
	for len(out) < want {
		batch, err := cons.Fetch(want-len(out), jetstream.FetchContext(fctx))
		if err != nil {
			return nil, fmt.Errorf("audit: list %s: %w", company, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var ev Event
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				l.log.Warn("skip undecodable audit record", zap.String("company_id", company), zap.String("subject", m.Subject()))
				want-- // counted as pending, never returned
				continue
			}
			out = append(out, ev)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("audit: list %s: %w", company, err)
		}
		if got == 0 {
			return nil, fmt.Errorf("audit: list %s: %d of %d records arrived: %w", company, len(out), want, fctx.Err())
		}
	}
	return out, nil
}

// SetRetention sets how long company's records are kept (its stream's
// MaxAge): 0 means the Config's retention, anything else must be at least
// MinRetention (ErrInvalid). Shortening it drops records older than the new
// age at once.
func (l *Log) SetRetention(ctx context.Context, company string, maxAge time.Duration) error {
	if !ValidToken(company) {
		return fmt.Errorf("%w: company %q", ErrInvalid, company)
	}
	if maxAge == 0 {
		maxAge = l.cfg.Retention
	}
	if maxAge < MinRetention {
		return fmt.Errorf("%w: retention %s (want at least %s)", ErrInvalid, maxAge, MinRetention)
	}
	if err := l.ensure(ctx, company); err != nil {
		return err
	}
	if _, err := l.js.UpdateStream(ctx, l.streamConfig(company, maxAge)); err != nil {
		return fmt.Errorf("audit: set retention of %s: %w", company, err)
	}
	l.log.Info("audit retention set", zap.String("company_id", company), zap.Duration("retention", maxAge))
	return nil
}

// Retention returns how long company's records are kept.
func (l *Log) Retention(ctx context.Context, company string) (time.Duration, error) {
	if !ValidToken(company) {
		return 0, fmt.Errorf("%w: company %q", ErrInvalid, company)
	}
	s, err := l.js.Stream(ctx, StreamName(company))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return l.cfg.Retention, nil
	} else if err != nil {
		return 0, fmt.Errorf("audit: retention of %s: %w", company, err)
	}
	return s.CachedInfo().Config.MaxAge, nil
}
