package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
)

// The customer's consent and the agent's admission (SECURITY.md P3). The
// session record is the truth; the worker hosting the session enforces it
// (pkg/worker's gate) once told with a worker.Gate, which this gateway
// sends whenever the record changes and again whenever a viewer of a
// session with a recorded consent or admission connects, so that a lost
// message heals.

// gateTimeout bounds telling the worker about a consent or an admission.
const gateTimeout = 5 * time.Second

// errUnchanged stops an update that has nothing to change.
var errUnchanged = errors.New("gateway: nothing to change")

// consentJSON is what the customer's page shows before sharing: who will
// see the tab, and where the consent and admission stand.
type consentJSON struct {
	SessionID string            `json:"session_id"`
	Company   map[string]string `json:"company"` // slug, name
	Agents    []string          `json:"agents"`  // names of the agents who will see the tab, as far as known
	Consented bool              `json:"consented"`
	MustAdmit bool              `json:"must_admit"`
	Admitted  bool              `json:"admitted"` // true when the company does not make agents admit
}

// customerSession loads the session of the path for its customer: the
// tandem_customer cookie of that very session. No cookie is 401; another
// session's cookie, or one of a session that ended, is 404.
func (g *Gateway) customerSession(c echo.Context) (tenant.Session, error) {
	ck, err := c.Cookie(customerCookie)
	if err != nil || ck.Value == "" {
		return tenant.Session{}, errUnauthenticated
	}
	id := c.Param("id")
	if !sessionIDRE.MatchString(id) {
		return tenant.Session{}, errNotFound
	}
	ctx := c.Request().Context()
	company, sid, err := g.store.LookupCustomerToken(ctx, ck.Value)
	if errors.Is(err, tenant.ErrNotFound) || (err == nil && sid != id) {
		return tenant.Session{}, errNotFound
	} else if err != nil {
		return tenant.Session{}, err
	}
	return g.store.GetSession(ctx, company, id)
}

// consentView answers GET /api/v1/sessions/{id}/consent for the customer.
func (g *Gateway) consentView(c echo.Context) error {
	s, err := g.customerSession(c)
	if err != nil {
		return err
	}
	return g.writeConsent(c, s)
}

func (g *Gateway) writeConsent(c echo.Context, s tenant.Session) error {
	ctx := c.Request().Context()
	co, err := g.store.GetCompany(ctx, s.Company)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, consentJSON{
		SessionID: s.ID,
		Company:   map[string]string{"slug": co.Slug, "name": co.Name},
		Agents:    g.agentNames(ctx, s),
		Consented: s.ConsentAt != nil,
		MustAdmit: s.MustAdmit,
		Admitted:  admitted(s),
	})
}

func admitted(s tenant.Session) bool { return !s.MustAdmit || s.AdmittedAt != nil }

// agentNames lists who will see the tab: the agent who created the session,
// then every agent who joined it, each once. A name that cannot be read is
// left out (the page then names the company's staff as a whole).
func (g *Gateway) agentNames(ctx context.Context, s tenant.Session) []string {
	names := []string{}
	seen := map[string]bool{}
	if id, ok := strings.CutPrefix(s.CreatedBy, "agent:"); ok {
		if a, err := g.store.GetAgent(ctx, s.Company, id); err == nil {
			names, seen[id] = append(names, a.Name), true
		}
	}
	joined, err := g.store.SessionAgents(ctx, s.Company, s.ID)
	if err != nil {
		g.log.Warn("read the agents of a session", zap.String("session_id", s.ID), zap.Error(err))
	}
	for _, a := range joined {
		if !seen[a.ID] && a.Name != "" {
			names, seen[a.ID] = append(names, a.Name), true
		}
	}
	return names
}

// giveConsent answers POST /api/v1/sessions/{id}/consent: the customer
// agrees to share the tab. Giving it again changes nothing and tells the
// worker again.
func (g *Gateway) giveConsent(c echo.Context) error {
	s, err := g.customerSession(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	now := time.Now().UTC()
	s, changed, err := g.updateOnce(ctx, s, func(r *tenant.Session) error {
		if r.ConsentAt != nil {
			return errUnchanged
		}
		r.ConsentAt = &now
		return nil
	})
	if err != nil {
		return err
	}
	if changed {
		g.record(ctx, audit.Event{Company: s.Company, Session: s.ID, Actor: audit.ActorCustomer, Type: audit.TypeConsentGiven})
		g.log.Info("customer agreed to share", zap.String("company_id", s.Company), zap.String("session_id", s.ID))
	}
	if err := g.sendGate(ctx, s); err != nil {
		return err
	}
	return g.writeConsent(c, s)
}

// admit answers POST /api/v1/sessions/{id}/admit: an agent of the
// session's company lets the customer in. A session that does not need it,
// or a customer admitted already, is not an error.
func (g *Gateway) admit(c echo.Context) error {
	s, err := g.sessionOf(c)
	if err != nil {
		return err
	}
	switch s.State {
	case tenant.SessionWaiting:
		return errorf(http.StatusConflict, "conflict", "the customer has not joined yet")
	case tenant.SessionEnded:
		return errorf(http.StatusConflict, "conflict", "the session has ended")
	}
	if !s.MustAdmit {
		return c.JSON(http.StatusOK, g.toSessionJSON(c, s))
	}
	ctx := c.Request().Context()
	actor := callerOf(c).actor()
	now := time.Now().UTC()
	s, changed, err := g.updateOnce(ctx, s, func(r *tenant.Session) error {
		if r.AdmittedAt != nil {
			return errUnchanged
		}
		r.AdmittedAt, r.AdmittedBy = &now, actor
		return nil
	})
	if err != nil {
		return err
	}
	if changed {
		g.record(ctx, audit.Event{Company: s.Company, Session: s.ID, Actor: actor, Type: audit.TypeCustomerAdmitted})
		g.log.Info("customer admitted", zap.String("company_id", s.Company), zap.String("session_id", s.ID))
	}
	if err := g.sendGate(ctx, s); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, g.toSessionJSON(c, s))
}

// updateOnce changes a live session with fn, and says whether this call
// changed it: fn returns errUnchanged when there is nothing to do. An ended
// session is a 409.
func (g *Gateway) updateOnce(ctx context.Context, s tenant.Session, fn func(*tenant.Session) error) (tenant.Session, bool, error) {
	errOver := errorf(http.StatusConflict, "conflict", "the session has ended")
	out, err := g.store.UpdateSession(ctx, s.Company, s.ID, func(r *tenant.Session) error {
		if r.State == tenant.SessionEnded {
			return errOver
		}
		return fn(r)
	})
	switch {
	case errors.Is(err, errUnchanged):
		out, err = g.store.GetSession(ctx, s.Company, s.ID)
		return out, false, err
	case err != nil:
		return tenant.Session{}, false, err
	}
	return out, true, nil
}

// sendGate tells the worker hosting s what the record allows, and waits for
// its answer. A worker that does not answer is a 503: the record stays, and
// the next try (or the next viewer's connection) tells it again.
func (g *Gateway) sendGate(ctx context.Context, s tenant.Session) error {
	unavailable := errorf(http.StatusServiceUnavailable, "not_ready", "the shared browser did not answer; try again")
	if s.WorkerID == "" {
		return unavailable
	}
	b, _ := json.Marshal(worker.Gate{Company: s.Company, SessionID: s.ID, Consented: s.ConsentAt != nil, Admitted: admitted(s)})
	ctx, cancel := context.WithTimeout(ctx, gateTimeout)
	defer cancel()
	msg, err := g.nc.RequestWithContext(ctx, worker.GateSubject(s.WorkerID), b)
	var rep worker.GateReply
	if err == nil {
		err = json.Unmarshal(msg.Data, &rep)
	}
	if err == nil && rep.Error != "" {
		err = errors.New(rep.Error)
	}
	if err != nil {
		g.log.Warn("tell the worker about the gate", zap.String("company_id", s.Company), zap.String("session_id", s.ID),
			zap.String("worker_id", s.WorkerID), zap.Error(err))
		return unavailable
	}
	return nil
}

// noteAgent records an agent's joining in the session, for the customer's
// consent page.
func (g *Gateway) noteAgent(ctx context.Context, ev worker.Event) {
	id, ok := agentOfViewer(ev.ViewerID)
	if !ok {
		return
	}
	name := ev.Name
	if len(name) > 200 {
		name = strings.ToValidUTF8(name[:200], "")
	}
	err := g.store.AddSessionAgent(ctx, ev.Company, ev.SessionID, tenant.SessionAgent{ID: id, Name: name})
	if err != nil && !errors.Is(err, tenant.ErrNotFound) {
		g.log.Warn("record the agent of a session", zap.String("session_id", ev.SessionID), zap.Error(err))
	}
}
