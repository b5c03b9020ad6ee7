package audit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandem-cobrowse/tandem/pkg/bus"
)

// startBus starts an embedded NATS with JetStream in dir, closed at cleanup.
func startBus(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	b, err := bus.Start(context.Background(), bus.Config{Dir: dir, Port: -1}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func openLog(t *testing.T, b *bus.Bus, cfg Config) *Log {
	t.Helper()
	l, err := Open(context.Background(), b.JetStream(), cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func record(t *testing.T, l *Log, ev Event) {
	t.Helper()
	if err := l.Record(context.Background(), ev); err != nil {
		t.Fatalf("Record(%+v) = %v", ev, err)
	}
}

// types lists the events' types, with their session for company lists.
func types(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Session + "/" + ev.Type
	}
	return out
}

func TestRecordAndListInOrder(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, startBus(t, t.TempDir()), Config{})
	t0 := time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)
	clock := t0
	l.now = func() time.Time { clock = clock.Add(time.Second); return clock }

	record(t, l, Event{Company: "acme", Session: "s_1", Actor: AgentActor("a_1"), Type: TypeSessionCreated, Details: map[string]string{"start_url": "https://shop.test/"}})
	record(t, l, Event{Company: "acme", Session: "s_1", Actor: AgentActor("a_1"), Type: TypePINIssued})
	record(t, l, Event{Company: "acme", Session: "s_2", Actor: APIKeyActor("k_1"), Type: TypeSessionCreated})
	record(t, l, Event{Company: "acme", Actor: ActorCustomer, Type: TypePINFailed, Details: map[string]string{"network": "203.0.113.0/24"}})
	record(t, l, Event{Company: "acme", Session: "s_1", Actor: ActorCustomer, Type: TypePINRedeemed})
	record(t, l, Event{Company: "acme", Session: "s_1", Actor: ActorSystem, Type: TypeSessionEnded, Details: map[string]string{"reason": "idle"}})

	got, err := l.List(ctx, "acme", "s_1", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Time: t0.Add(1 * time.Second), Company: "acme", Session: "s_1", Actor: "agent:a_1", Type: "session.created", Details: map[string]string{"start_url": "https://shop.test/"}},
		{Time: t0.Add(2 * time.Second), Company: "acme", Session: "s_1", Actor: "agent:a_1", Type: "pin.issued"},
		{Time: t0.Add(5 * time.Second), Company: "acme", Session: "s_1", Actor: "customer", Type: "pin.redeemed"},
		{Time: t0.Add(6 * time.Second), Company: "acme", Session: "s_1", Actor: "system", Type: "session.ended", Details: map[string]string{"reason": "idle"}},
	}
	if d := cmp.Diff(want, got, cmpopts.IgnoreFields(Event{}, "ID")); d != "" {
		t.Errorf("List(acme, s_1) mismatch (-want +got):\n%s", d)
	}
	ids := map[string]bool{}
	for _, ev := range got {
		if !ValidToken(ev.ID) || ids[ev.ID] {
			t.Errorf("event ID %q is not a fresh token", ev.ID)
		}
		ids[ev.ID] = true
	}

	all, err := l.ListCompany(ctx, "acme", time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantAll := []string{"s_1/session.created", "s_1/pin.issued", "s_2/session.created", "/pin.failed", "s_1/pin.redeemed", "s_1/session.ended"}
	if d := cmp.Diff(wantAll, types(all)); d != "" {
		t.Errorf("ListCompany mismatch (-want +got):\n%s", d)
	}
	// since and limit.
	sinceNow, err := l.ListCompany(ctx, "acme", time.Now().Add(-time.Minute), 2)
	if err != nil || len(sinceNow) != 2 || sinceNow[0].Type != "session.created" {
		t.Errorf("ListCompany(since a minute ago, 2) = %v, %v; want the first two", types(sinceNow), err)
	}
	future, err := l.ListCompany(ctx, "acme", time.Now().Add(time.Hour), 0)
	if err != nil || len(future) != 0 {
		t.Errorf("ListCompany(since in an hour) = %v, %v; want none", types(future), err)
	}
	if got, err := l.List(ctx, "acme", "s_1", 3); err != nil || len(got) != 3 || got[2].Type != "pin.redeemed" {
		t.Errorf("List(limit 3) = %v, %v; want the oldest three", types(got), err)
	}
	// Unknown session and company: empty, not an error.
	for _, c := range [][2]string{{"acme", "s_none"}, {"nobody", "s_1"}} {
		if got, err := l.List(ctx, c[0], c[1], 0); err != nil || len(got) != 0 {
			t.Errorf("List(%s, %s) = %v, %v; want empty", c[0], c[1], got, err)
		}
	}
	// The list consumers are gone afterwards.
	s, _ := l.js.Stream(ctx, StreamName("acme"))
	if info, err := s.Info(ctx); err != nil || info.State.Consumers != 0 {
		t.Errorf("stream has %v consumers after listing (%v), want 0", info.State.Consumers, err)
	}
}

func TestRecordSameIDStoredOnce(t *testing.T) {
	l := openLog(t, startBus(t, t.TempDir()), Config{})
	ev := Event{ID: "e_retry", Company: "acme", Session: "s_1", Actor: ActorSystem, Type: TypeSessionEnded}
	record(t, l, ev)
	record(t, l, ev)
	got, err := l.List(context.Background(), "acme", "s_1", 0)
	if err != nil || len(got) != 1 || got[0].ID != "e_retry" {
		t.Fatalf("List after a retried Record = %+v, %v; want one event", got, err)
	}
}

func TestCompaniesAreIsolated(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, startBus(t, t.TempDir()), Config{})
	// The same session ID in two companies (IDs are unique, but the log must
	// not rely on it).
	record(t, l, Event{Company: "acme", Session: "s_same", Actor: ActorCustomer, Type: TypePINRedeemed})
	record(t, l, Event{Company: "acme", Actor: ActorCustomer, Type: TypePINFailed})
	record(t, l, Event{Company: "beta", Session: "s_same", Actor: ActorSystem, Type: TypeSessionEnded})
	record(t, l, Event{Company: "acme-2", Session: "s_same", Actor: ActorSystem, Type: TypeSessionCreated})

	for _, tt := range []struct {
		company string
		want    []string
	}{
		{"beta", []string{"s_same/session.ended"}},
		{"acme", []string{"s_same/pin.redeemed", "/pin.failed"}},
		{"acme-2", []string{"s_same/session.created"}},
	} {
		got, err := l.ListCompany(ctx, tt.company, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tt.want, types(got)); d != "" {
			t.Errorf("ListCompany(%s) mismatch (-want +got):\n%s", tt.company, d)
		}
		for _, ev := range got {
			if ev.Company != tt.company {
				t.Errorf("ListCompany(%s) shows an event of %s", tt.company, ev.Company)
			}
		}
		ses, err := l.List(ctx, tt.company, "s_same", 0)
		if err != nil || len(ses) != 1 || ses[0].Company != tt.company {
			t.Errorf("List(%s, s_same) = %+v, %v; want only its own event", tt.company, ses, err)
		}
	}
	// Each company has its own stream, holding only its subjects.
	for _, c := range []string{"acme", "beta", "acme-2"} {
		s, err := l.js.Stream(ctx, StreamName(c))
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
		if err != nil {
			t.Fatal(err)
		}
		for subj := range info.State.Subjects {
			if subj != Subject(c, "") && subj != Subject(c, "s_same") {
				t.Errorf("stream of %s holds subject %s", c, subj)
			}
		}
	}
}

func TestRecordRefusesBadEvents(t *testing.T) {
	l := openLog(t, startBus(t, t.TempDir()), Config{})
	ok := Event{Company: "acme", Session: "s_1", Actor: ActorCustomer, Type: TypePINRedeemed}
	long := make([]byte, MaxDetailValue+1)
	for i := range long {
		long[i] = 'x'
	}
	tooMany := map[string]string{}
	for i := range MaxDetails + 1 {
		tooMany[fmt.Sprintf("k%d", i)] = "v"
	}
	for _, tt := range []struct {
		name string
		edit func(*Event)
	}{
		{"no company", func(e *Event) { e.Company = "" }},
		{"company with a dot", func(e *Event) { e.Company = "acme.beta" }},
		{"company wildcard", func(e *Event) { e.Company = "*" }},
		{"company full wildcard", func(e *Event) { e.Company = ">" }},
		{"session with a dot", func(e *Event) { e.Session = "s_1.x" }},
		{"session wildcard", func(e *Event) { e.Session = ">" }},
		{"session with space", func(e *Event) { e.Session = "s 1" }},
		{"no actor", func(e *Event) { e.Actor = "" }},
		{"unknown actor", func(e *Event) { e.Actor = "root" }},
		{"agent without id", func(e *Event) { e.Actor = "agent:" }},
		{"no type", func(e *Event) { e.Type = "" }},
		{"type without dot", func(e *Event) { e.Type = "joined" }},
		{"bad detail key", func(e *Event) { e.Details = map[string]string{"Bad Key": "v"} }},
		{"control in detail", func(e *Event) { e.Details = map[string]string{"reason": "a\nb"} }},
		{"long detail", func(e *Event) { e.Details = map[string]string{"reason": string(long)} }},
		{"too many details", func(e *Event) { e.Details = tooMany }},
		{"bad id", func(e *Event) { e.ID = "e.1" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := ok
			tt.edit(&ev)
			if err := l.Record(context.Background(), ev); !errors.Is(err, ErrInvalid) {
				t.Errorf("Record(%+v) = %v, want ErrInvalid", ev, err)
			}
		})
	}
	if _, err := l.List(context.Background(), "acme", ">", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("List with a wildcard session = %v, want ErrInvalid", err)
	}
	if _, err := l.ListCompany(context.Background(), "a.b", time.Time{}, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("ListCompany with a dotted company = %v, want ErrInvalid", err)
	}
	// Nothing was stored.
	if _, err := l.js.Stream(context.Background(), StreamName("acme")); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("a stream exists after refused records: %v", err)
	}
}

func TestServerRefusesDeleteAndPurge(t *testing.T) {
	ctx := context.Background()
	b := startBus(t, t.TempDir())
	l := openLog(t, b, Config{})
	for i := range 3 {
		record(t, l, Event{Company: "acme", Session: "s_1", Actor: ActorSystem, Type: TypeSessionCreated, Details: map[string]string{"n": fmt.Sprint(i)}})
	}
	js := b.JetStream()
	s, err := js.Stream(ctx, StreamName("acme"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if !cfg.DenyDelete || !cfg.DenyPurge || cfg.Storage != jetstream.FileStorage || cfg.MaxAge != DefaultRetention {
		t.Fatalf("stream config: deny delete %v, deny purge %v, storage %v, max age %v", cfg.DenyDelete, cfg.DenyPurge, cfg.Storage, cfg.MaxAge)
	}
	attempts := map[string]error{
		"delete a record":        s.DeleteMsg(ctx, 1),
		"secure-delete a record": s.SecureDeleteMsg(ctx, 2),
		"purge the stream":       s.Purge(ctx),
		"purge a subject":        s.Purge(ctx, jetstream.WithPurgeSubject(Subject("acme", "s_1"))),
		"purge up to a sequence": s.Purge(ctx, jetstream.WithPurgeSequence(3)),
		"keep only the last":     s.Purge(ctx, jetstream.WithPurgeKeep(1)),
	}
	lifted := cfg
	lifted.DenyDelete = false
	_, attempts["lift deny delete"] = js.UpdateStream(ctx, lifted)
	lifted = cfg
	lifted.DenyPurge = false
	_, attempts["lift deny purge"] = js.UpdateStream(ctx, lifted)
	for what, err := range attempts {
		if err == nil {
			t.Errorf("%s: the server allowed it", what)
		}
	}
	got, err := l.List(ctx, "acme", "s_1", 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("after the attempts List = %d events, %v; want all 3", len(got), err)
	}
}

func TestStreamWithoutDenyFlagsGetsThem(t *testing.T) {
	ctx := context.Background()
	b := startBus(t, t.TempDir())
	l := openLog(t, b, Config{})
	// Someone made the stream by hand, without the flags.
	bare := l.streamConfig("acme", 48*time.Hour)
	bare.DenyDelete, bare.DenyPurge = false, false
	if _, err := b.JetStream().CreateStream(ctx, bare); err != nil {
		t.Fatal(err)
	}
	record(t, l, Event{Company: "acme", Session: "s_1", Actor: ActorSystem, Type: TypeSessionCreated})
	s, err := b.JetStream().Stream(ctx, StreamName("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.CachedInfo().Config; !cfg.DenyDelete || !cfg.DenyPurge || cfg.MaxAge != 48*time.Hour {
		t.Errorf("after Record: deny delete %v, deny purge %v, max age %v; want both flags and the age kept", cfg.DenyDelete, cfg.DenyPurge, cfg.MaxAge)
	}
}

func TestRecordsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := startBus(t, dir)
	l := openLog(t, b, Config{})
	record(t, l, Event{Company: "acme", Session: "s_1", Actor: AgentActor("a_1"), Type: TypeSessionCreated})
	record(t, l, Event{Company: "acme", Session: "s_1", Actor: ActorSystem, Type: TypeSessionEnded, Details: map[string]string{"reason": "idle"}})
	before, err := l.List(ctx, "acme", "s_1", 0)
	if err != nil || len(before) != 2 {
		t.Fatalf("List before restart = %v, %v", before, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	l2 := openLog(t, startBus(t, dir), Config{})
	after, err := l2.List(ctx, "acme", "s_1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, after); d != "" {
		t.Errorf("records after restart differ (-before +after):\n%s", d)
	}
	record(t, l2, Event{Company: "acme", Session: "s_1", Actor: ActorCustomer, Type: TypeCustomerLeft})
	if got, _ := l2.List(ctx, "acme", "s_1", 0); len(got) != 3 {
		t.Errorf("after restart and one more record: %d events, want 3", len(got))
	}
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	b := startBus(t, t.TempDir())
	l := openLog(t, b, Config{Retention: 30 * 24 * time.Hour})
	maxAge := func() time.Duration {
		t.Helper()
		s, err := b.JetStream().Stream(ctx, StreamName("acme"))
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.MaxAge
	}
	if got, err := l.Retention(ctx, "acme"); err != nil || got != 30*24*time.Hour {
		t.Errorf("Retention before any record = %v, %v; want the Config's 720h", got, err)
	}
	record(t, l, Event{Company: "acme", Session: "s_1", Actor: ActorSystem, Type: TypeSessionCreated})
	if got := maxAge(); got != 30*24*time.Hour {
		t.Errorf("new stream MaxAge = %v, want 720h", got)
	}
	if err := l.SetRetention(ctx, "acme", 90*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := maxAge(); got != 90*24*time.Hour {
		t.Errorf("MaxAge after SetRetention(90 days) = %v", got)
	}
	if got, err := l.Retention(ctx, "acme"); err != nil || got != 90*24*time.Hour {
		t.Errorf("Retention = %v, %v", got, err)
	}
	if err := l.SetRetention(ctx, "acme", time.Hour); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetRetention(1h) = %v, want ErrInvalid", err)
	}
	if err := l.SetRetention(ctx, "acme", 0); err != nil || maxAge() != 30*24*time.Hour {
		t.Errorf("SetRetention(0) = %v, MaxAge %v; want back to the Config's", err, maxAge())
	}
	// A company without records yet gets its stream with the retention.
	if err := l.SetRetention(ctx, "beta", 2*MinRetention); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Retention(ctx, "beta"); err != nil || got != 2*MinRetention {
		t.Errorf("Retention(beta) = %v, %v", got, err)
	}
	if got, _ := l.List(ctx, "acme", "s_1", 0); len(got) != 1 {
		t.Errorf("records after retention changes: %d, want 1", len(got))
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{Replicas: 3, Retention: MinRetention}, true},
		{Config{Replicas: -1}, false},
		{Config{Replicas: 6}, false},
		{Config{Retention: time.Hour}, false},
	} {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v.Validate() = %v, want ok %v", tt.cfg, err, tt.ok)
		}
	}
}
