package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/auth"
	"github.com/tandem-cobrowse/tandem/pkg/block"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/urlpolicy"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
)

const maxURLLen = 2048

type sessionJSON struct {
	ID        string              `json:"id"`
	Company   string              `json:"company"`
	State     tenant.SessionState `json:"state"`
	StartURL  string              `json:"start_url"`
	PIN       string              `json:"pin,omitempty"`
	JoinURL   string              `json:"join_url"`
	AgentURL  string              `json:"agent_url"`
	CreatedAt time.Time           `json:"created_at"`
	ExpiresAt time.Time           `json:"expires_at"`
	EndedAt   *time.Time          `json:"ended_at,omitempty"`
	EndReason string              `json:"end_reason,omitempty"`
	// The customer's arrival, consent and admission (consent.go).
	Customer   *customerJSON `json:"customer,omitempty"` // once the customer redeemed the PIN
	ConsentAt  *time.Time    `json:"consent_at,omitempty"`
	MustAdmit  bool          `json:"must_admit"`
	AdmittedAt *time.Time    `json:"admitted_at,omitempty"`
}

// customerJSON is the customer as agents see them arrive: when, and with
// what browser, reduced from its User-Agent.
type customerJSON struct {
	JoinedAt time.Time `json:"joined_at"`
	Browser  string    `json:"browser,omitempty"`
	OS       string    `json:"os,omitempty"`
	Device   string    `json:"device,omitempty"`
}

func (g *Gateway) toSessionJSON(c echo.Context, s tenant.Session) sessionJSON {
	base := g.baseURL(c)
	out := sessionJSON{
		ID: s.ID, Company: s.Company, State: s.State, StartURL: s.StartURL,
		JoinURL:   base + "/join/" + s.Company,
		AgentURL:  base + "/agent/s/" + s.ID,
		CreatedAt: s.CreatedAt, ExpiresAt: s.PINExpiresAt, EndedAt: s.EndedAt, EndReason: s.EndReason,
		ConsentAt: s.ConsentAt, MustAdmit: s.MustAdmit, AdmittedAt: s.AdmittedAt,
	}
	if s.State == tenant.SessionWaiting {
		out.PIN = s.PIN
	}
	if s.JoinedAt != nil {
		out.Customer = &customerJSON{JoinedAt: *s.JoinedAt}
		if c := s.Customer; c != nil {
			out.Customer.Browser, out.Customer.OS, out.Customer.Device = c.Browser, c.OS, c.Device
		}
	}
	return out
}

// validStartURL accepts absolute http and https URLs only.
func validStartURL(raw string) (string, error) {
	if raw == "" {
		return "", errorf(http.StatusBadRequest, "invalid_start_url", "start_url is required")
	}
	if len(raw) > maxURLLen {
		return "", errorf(http.StatusBadRequest, "invalid_start_url", "start_url is too long")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", errorf(http.StatusBadRequest, "invalid_start_url", "start_url must be an absolute http or https URL")
	}
	return u.String(), nil
}

func (g *Gateway) createSession(c echo.Context) error {
	var body struct {
		StartURL string `json:"start_url"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	start, err := validStartURL(strings.TrimSpace(body.StartURL))
	if err != nil {
		return err
	}
	who := callerOf(c)
	ctx := c.Request().Context()
	// The worker refuses a start page outside the company's URL policy
	// too; saying so here spares a session that could only show the block
	// page.
	co, err := g.store.GetCompany(ctx, who.Company)
	if err != nil {
		return err
	}
	if !urlPolicy(co.Policy).Check(start).OK {
		return errorf(http.StatusForbidden, "url_not_allowed", "the company's URL policy does not allow this start page")
	}
	// The company's quota of sessions at once: counted and created under
	// one lock, so that this gateway's concurrent requests cannot both
	// take the last place.
	g.quotaMu.Lock()
	locked := true
	unlock := func() {
		if locked {
			locked = false
			g.quotaMu.Unlock()
		}
	}
	defer unlock()
	if co.MaxSessions > 0 {
		live, err := g.liveSessions(ctx, co.Slug)
		if err != nil {
			return err
		}
		if live >= co.MaxSessions {
			return errorf(http.StatusTooManyRequests, "session_quota",
				fmt.Sprintf("the company runs as many sessions as it may at once (%d); end one first", co.MaxSessions))
		}
	}
	s, err := g.store.CreateSession(ctx, tenant.Session{
		ID:        auth.NewID("s_"),
		Company:   who.Company,
		StartURL:  start,
		CreatedBy: who.actor(),
	})
	unlock()
	if err != nil {
		return err
	}
	log := g.log.With(zap.String("company_id", s.Company), zap.String("session_id", s.ID))
	g.record(ctx, audit.Event{Company: s.Company, Session: s.ID, Actor: who.actor(), Type: audit.TypeSessionCreated,
		Details: map[string]string{"start_url": auditURL(s.StartURL)}})
	workerID, err := g.lease(ctx, s)
	if err != nil {
		if _, e := g.endAndRecord(context.WithoutCancel(ctx), s.Company, s.ID, worker.ReasonError, audit.ActorSystem); e != nil {
			log.Warn("record failed session", zap.Error(e))
		}
		return err
	}
	pin := s.PIN
	s, err = g.store.UpdateSession(ctx, s.Company, s.ID, func(s *tenant.Session) error {
		s.WorkerID = workerID
		return nil
	})
	if err != nil {
		g.endOnWorker(workerID, s.Company, s.ID, worker.ReasonError)
		return err
	}
	s.PIN = pin
	g.record(ctx, audit.Event{Company: s.Company, Session: s.ID, Actor: who.actor(), Type: audit.TypePINIssued,
		Details: map[string]string{"expires_at": s.PINExpiresAt.UTC().Format(time.RFC3339Nano)}})
	log.Info("session created", zap.String("worker_id", workerID))
	return c.JSON(http.StatusCreated, g.toSessionJSON(c, s))
}

// liveSessions counts the company's sessions that have not ended.
func (g *Gateway) liveSessions(ctx context.Context, company string) (int, error) {
	all, err := g.store.ListSessions(ctx, company)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range all {
		if s.State != tenant.SessionEnded {
			n++
		}
	}
	return n, nil
}

func (g *Gateway) endOnWorker(workerID, company, id, reason string) {
	if workerID == "" {
		return
	}
	b, _ := json.Marshal(worker.EndRequest{Company: company, SessionID: id, Reason: reason})
	if err := g.nc.Publish(worker.EndSubject(workerID), b); err != nil {
		g.log.Warn("ask worker to end session", zap.String("session_id", id), zap.Error(err))
	}
}

var sessionIDRE = regexp.MustCompile(`^s_[a-z0-9]{1,62}$`)

// sessionOf loads the session named in the path for the caller's company;
// another company's session is not found.
func (g *Gateway) sessionOf(c echo.Context) (tenant.Session, error) {
	id := c.Param("id")
	if !sessionIDRE.MatchString(id) {
		return tenant.Session{}, errNotFound
	}
	return g.store.GetSession(c.Request().Context(), callerOf(c).Company, id)
}

func (g *Gateway) listSessions(c echo.Context) error {
	list, err := g.store.ListSessions(c.Request().Context(), callerOf(c).Company)
	if err != nil {
		return err
	}
	out := make([]sessionJSON, 0, len(list))
	for _, s := range list {
		out = append(out, g.toSessionJSON(c, s))
	}
	return c.JSON(http.StatusOK, map[string]any{"sessions": out})
}

func (g *Gateway) getSession(c echo.Context) error {
	s, err := g.sessionOf(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, g.toSessionJSON(c, s))
}

func (g *Gateway) endSession(c echo.Context) error {
	s, err := g.sessionOf(c)
	if err != nil {
		return err
	}
	if s.State != tenant.SessionEnded {
		s, err = g.endAndRecord(c.Request().Context(), s.Company, s.ID, worker.ReasonAgentEnded, callerOf(c).actor())
		if err != nil {
			return err
		}
		g.endOnWorker(s.WorkerID, s.Company, s.ID, worker.ReasonAgentEnded)
	}
	return c.JSON(http.StatusOK, g.toSessionJSON(c, s))
}

var (
	slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,39}$`)
	pinRE  = regexp.MustCompile(`^[0-9]{6,10}$`)
)

// invalidPIN is the one answer for every PIN that does not open a session:
// unknown, wrong, expired, used, malformed, or another company's.
func invalidPIN(c echo.Context) error {
	msg := "That PIN is not valid. Check the digits with your agent."
	if prefersJapanese(c.Request().Header.Get("Accept-Language")) {
		msg = "PINが正しくありません。担当者に番号をご確認ください。"
	}
	return errorf(http.StatusNotFound, "invalid_pin", msg)
}

func prefersJapanese(acceptLanguage string) bool {
	first, _, _ := strings.Cut(acceptLanguage, ",")
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(first)), "ja")
}

func (g *Gateway) join(c echo.Context) error {
	var body struct {
		Company string `json:"company"`
		PIN     string `json:"pin"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	now := time.Now()
	client := g.clientKey(c)
	if !g.limiter.allowJoin(client, body.Company, now) {
		return g.tooMany(c)
	}
	pin := strings.ReplaceAll(strings.TrimSpace(body.PIN), " ", "")
	if !slugRE.MatchString(body.Company) || !pinRE.MatchString(pin) {
		// The store looks up a key no PIN is stored under, so that a
		// malformed PIN costs what a wrong one does (docs/security.md).
		if _, err := g.store.RedeemPIN(c.Request().Context(), "", pin); err != nil && !errors.Is(err, tenant.ErrInvalidPIN) {
			return err
		}
		g.limiter.fail("join", client, now)
		g.recordPINFailed(c, body.Company)
		return invalidPIN(c)
	}
	ctx := c.Request().Context()
	s, err := g.store.RedeemPIN(ctx, body.Company, pin)
	if errors.Is(err, tenant.ErrInvalidPIN) {
		g.limiter.fail("join", client, now)
		g.limiter.fail("join-company", body.Company, now)
		g.recordPINFailed(c, body.Company)
		return invalidPIN(c)
	} else if err != nil {
		return err
	}
	// The agent sees the customer arrive with their browser, reduced.
	browser := clientOf(c.Request().UserAgent())
	if browser != nil {
		if s, err = g.store.UpdateSession(ctx, s.Company, s.ID, func(r *tenant.Session) error {
			r.Customer = browser
			return nil
		}); err != nil {
			return err
		}
	}
	details := map[string]string{"network": g.clientNetwork(c)}
	clientDetails(browser, details)
	g.record(ctx, audit.Event{Company: s.Company, Session: s.ID, Actor: audit.ActorCustomer, Type: audit.TypePINRedeemed,
		Details: details})
	token, err := g.store.CreateCustomerToken(ctx, s.Company, s.ID)
	if err != nil {
		return err
	}
	g.setCookie(c, customerCookie, token, time.Time{})
	g.log.Info("customer joined", zap.String("company_id", s.Company), zap.String("session_id", s.ID))
	return c.JSON(http.StatusOK, map[string]string{
		"session_id":   s.ID,
		"customer_url": g.baseURL(c) + "/s/" + s.ID,
	})
}

// maskPolicy is what the worker's mask needs of a company's policy.
func maskPolicy(p tenant.Policy) mask.Policy {
	return mask.Policy{Mask: selectors(p.Mask), Unmask: selectors(p.Unmask), PrivateByDefault: p.PrivateByDefault,
		FrameOrigins: p.MaskFrameOrigins}
}

// blockPolicy is what the company's policy blocks, for the worker.
func blockPolicy(p tenant.Policy) block.Policy {
	return block.Policy{Block: selectors(p.Block), Allow: selectors(p.Allow), Allowlist: p.BlockMode == "allowlist",
		Requests: p.BlockRequests}
}

// urlPolicy is the company's URL allow and deny lists, for the worker.
func urlPolicy(p tenant.Policy) urlpolicy.Policy {
	return urlpolicy.Policy{Allow: p.URLAllow, Deny: p.URLDeny}
}

// controlMode is the company's control mode for the worker.
func controlMode(p tenant.Policy) string {
	switch p.Control {
	case "auto":
		return worker.ControlAuto
	case "never":
		return worker.ControlNever
	}
	return worker.ControlAsk
}

// screenshareMode is whether the company's agents may ask to see the
// customer's screen (docs/screenshare.md).
func screenshareMode(p tenant.Policy) string {
	if p.Screenshare == "never" {
		return worker.ScreenshareNever
	}
	return worker.ScreenshareAsk
}

func selectors(in []tenant.ScopedSelector) []mask.Selector {
	out := make([]mask.Selector, 0, len(in))
	for _, s := range in {
		out = append(out, mask.Selector{Selector: s.Selector, URLs: s.URLs})
	}
	return out
}
