package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/auth"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
)

// auditTimeout bounds one audit write; it runs even when the request that
// caused it is gone.
const auditTimeout = 10 * time.Second

// record writes one audit event. A failure is logged for the operator and
// does not fail the request that caused it: the action happened, and the
// log line says which record is missing.
func (g *Gateway) record(ctx context.Context, ev audit.Event) {
	if g.cfg.Audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if err := g.cfg.Audit.Record(ctx, ev); err != nil {
		g.log.Error("audit record lost", zap.String("company_id", ev.Company), zap.String("session_id", ev.Session),
			zap.String("type", ev.Type), zap.Error(err))
	}
}

// auditURL is a start URL as the audit trail keeps it: without query and
// fragment, which may carry a customer's data, and cut to the longest
// detail an audit event takes.
func auditURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	s := u.String()
	if len(s) > audit.MaxDetailValue {
		s = strings.ToValidUTF8(s[:audit.MaxDetailValue-3], "") + "..."
	}
	return s
}

// clientNetwork is the client's network as the audit trail keeps it: the
// /24 or /64 the failure budgets count, never the full address.
func (g *Gateway) clientNetwork(c echo.Context) string {
	k := g.clientKey(c)
	if strings.Contains(k, ":") {
		return k + "/64"
	}
	if strings.Count(k, ".") == 3 {
		return k + "/24"
	}
	return ""
}

// recordPINFailed records a failed PIN in the company's trail when the
// company exists. It cannot name a session, and never names the PIN.
//
// The lookup and the write run after the answer, off the request: the
// answer's time must not say whether the company exists (an unknown one
// gets no record), and a trail write costs milliseconds. At most
// pinAuditsPending run at once; beyond that a record is dropped and the
// drop is logged, so a flood of guesses cannot pile up goroutines.
func (g *Gateway) recordPINFailed(c echo.Context, company string) {
	if g.cfg.Audit == nil || !slugRE.MatchString(company) {
		return
	}
	select {
	case g.pinAudits <- struct{}{}:
	default:
		g.log.Warn("audit record dropped: too many failed PINs pending", zap.String("company_id", company))
		return
	}
	ctx := context.WithoutCancel(c.Request().Context())
	network := g.clientNetwork(c)
	go func() {
		defer func() { <-g.pinAudits }()
		if _, err := g.store.GetCompany(ctx, company); err != nil {
			if !errors.Is(err, tenant.ErrNotFound) {
				g.log.Warn("look up company of a failed PIN", zap.String("company_id", company), zap.Error(err))
			}
			return
		}
		g.record(ctx, audit.Event{Company: company, Actor: audit.ActorCustomer, Type: audit.TypePINFailed,
			Details: map[string]string{"network": network}})
	}()
}

// settle waits until the failed-PIN records being written are written. It
// takes every place, so that records of answers given meanwhile are
// dropped (and logged) rather than waited for, then gives them back.
func (g *Gateway) settle() {
	for range cap(g.pinAudits) {
		g.pinAudits <- struct{}{}
	}
	for range cap(g.pinAudits) {
		<-g.pinAudits
	}
}

// errAlreadyEnded stops endSessionOnce's update of an ended session.
var errAlreadyEnded = errors.New("gateway: session already ended")

// endSessionOnce ends a session like tenant.Store.EndSession, and also says
// whether this call ended it: of any number of concurrent calls (on any
// gateways) exactly one gets true, because the change is a compare-and-swap.
func (g *Gateway) endSessionOnce(ctx context.Context, company, id, reason string) (tenant.Session, bool, error) {
	s, err := g.store.UpdateSession(ctx, company, id, func(s *tenant.Session) error {
		if s.State == tenant.SessionEnded {
			return errAlreadyEnded
		}
		now := time.Now().UTC()
		s.State, s.EndedAt, s.EndReason = tenant.SessionEnded, &now, reason
		return nil
	})
	if errors.Is(err, errAlreadyEnded) {
		s, err = g.store.GetSession(ctx, company, id)
		return s, false, err
	}
	if err != nil {
		return tenant.Session{}, false, err
	}
	g.log.Info("session ended", zap.String("company_id", company), zap.String("session_id", id), zap.String("reason", reason))
	return s, true, nil
}

// endAndRecord ends a session and, if this call ended it, records
// session.ended by actor.
func (g *Gateway) endAndRecord(ctx context.Context, company, id, reason, actor string) (tenant.Session, error) {
	s, changed, err := g.endSessionOnce(ctx, company, id, reason)
	if err != nil {
		return s, fmt.Errorf("end session %s: %w", id, err)
	}
	if changed {
		g.record(ctx, audit.Event{Company: company, Session: id, Actor: actor, Type: audit.TypeSessionEnded,
			Details: map[string]string{"reason": reason}})
	}
	return s, nil
}

// handleEvent applies one session event of a worker: the end of a session
// to its record, and the end and viewers' comings and goings to the audit
// trail. Run calls it for the events this gateway took from the queue group.
func (g *Gateway) handleEvent(ctx context.Context, ev worker.Event) {
	switch ev.Type {
	case "ended":
		reason := ev.Reason
		if reason == "" || len(reason) > 64 {
			reason = worker.ReasonError
		}
		if _, err := g.endAndRecord(ctx, ev.Company, ev.SessionID, reason, audit.ActorSystem); err != nil && !errors.Is(err, tenant.ErrNotFound) {
			g.log.Warn("record ended session", zap.String("session_id", ev.SessionID), zap.Error(err))
		}
	case worker.EventViewerJoined, worker.EventViewerLeft:
		if ev.Type == worker.EventViewerJoined && ev.Role == worker.RoleAgent {
			g.noteAgent(ctx, ev) // for the customer's consent page (consent.go)
		}
		if a, ok := viewerAudit(ev); ok {
			g.record(ctx, a)
		}
	case worker.EventControl:
		typ := audit.TypeControlEnded
		if ev.Reason == worker.ControlGranted {
			typ = audit.TypeControlGranted
		}
		g.record(ctx, audit.Event{Company: ev.Company, Session: ev.SessionID, Time: ev.At, Actor: audit.ActorSystem,
			Type: typ, Details: map[string]string{"viewer_id": clip(ev.ViewerID, 64), "reason": clip(ev.Reason, 32)}})
	case worker.EventScreenshare:
		g.record(ctx, screenshareAudit(ev))
	case worker.EventMaskPaused:
		g.record(ctx, audit.Event{Company: ev.Company, Session: ev.SessionID, Time: ev.At, Actor: audit.ActorSystem,
			Type: audit.TypeMaskPaused, Details: map[string]string{"reason": clip(ev.Reason, 64)}})
	case worker.EventNavBlocked:
		details := map[string]string{"url": clip(ev.URL, 512), "where": clip(ev.Reason, 16)}
		if ev.Selector != "" {
			details["rule"] = clip(ev.Selector, 512)
		}
		g.record(ctx, audit.Event{Company: ev.Company, Session: ev.SessionID, Time: ev.At, Actor: audit.ActorSystem,
			Type: audit.TypeNavigationBlocked, Details: details})
	case worker.EventBrowserRestarted:
		details := map[string]string{"reason": clip(ev.Reason, 32)}
		if ev.URL != "" {
			details["url"] = clip(ev.URL, 512)
		}
		g.record(ctx, audit.Event{Company: ev.Company, Session: ev.SessionID, Time: ev.At, Actor: audit.ActorSystem,
			Type: audit.TypeBrowserRestarted, Details: details})
	case worker.EventInputRefused:
		actor := audit.ActorSystem
		if id, ok := agentOfViewer(ev.ViewerID); ok {
			actor = audit.AgentActor(id)
		}
		details := map[string]string{"reason": clip(ev.Reason, 64), "viewer_id": clip(ev.ViewerID, 64)}
		if ev.Selector != "" {
			details["selector"] = clip(ev.Selector, 200)
		}
		if ev.Method != "" {
			details["method"] = clip(ev.Method, 64)
		}
		g.record(ctx, audit.Event{Company: ev.Company, Session: ev.SessionID, Time: ev.At, Actor: actor,
			Type: audit.TypeInputRefused, Details: details})
	}
}

// screenshareAudit turns a worker's screenshare event into its audit event:
// the customer starts a share, and ends it or leaves; an agent stops it.
func screenshareAudit(ev worker.Event) audit.Event {
	a := audit.Event{Company: ev.Company, Session: ev.SessionID, Time: ev.At, Actor: audit.ActorSystem,
		Type: audit.TypeScreenshareEnd, Details: map[string]string{"viewer_id": clip(ev.ViewerID, 64), "reason": clip(ev.Reason, 32)}}
	switch ev.Reason {
	case worker.ScreenshareStarted:
		a.Type, a.Actor = audit.TypeScreenshareStart, audit.ActorCustomer
		delete(a.Details, "reason")
	case worker.ScreenshareStoppedCust, worker.ScreenshareCustomerLeft:
		a.Actor = audit.ActorCustomer
	case worker.ScreenshareStoppedAgent:
		if id, ok := agentOfViewer(ev.ViewerID); ok {
			a.Actor = audit.AgentActor(id)
		}
	}
	return a
}

// clip bounds a worker-supplied detail.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// viewerAudit turns a worker's viewer event into its audit event.
func viewerAudit(ev worker.Event) (audit.Event, bool) {
	joined := ev.Type == worker.EventViewerJoined
	a := audit.Event{Company: ev.Company, Session: ev.SessionID, Time: ev.At,
		Details: map[string]string{"viewer_id": ev.ViewerID}}
	switch ev.Role {
	case worker.RoleCustomer:
		a.Actor, a.Type = audit.ActorCustomer, audit.TypeCustomerLeft
		if joined {
			a.Type = audit.TypeCustomerJoined
		}
	case worker.RoleAgent:
		id, ok := agentOfViewer(ev.ViewerID)
		if !ok {
			id = ev.ViewerID // not made by agentViewerID; still an agent's viewer
		}
		a.Actor, a.Type = audit.AgentActor(id), audit.TypeAgentLeft
		if joined {
			a.Type = audit.TypeAgentJoined
		}
		if ev.Name != "" {
			a.Details["name"] = ev.Name
		}
	default:
		return audit.Event{}, false
	}
	return a, true
}

// agentViewerID is the viewer ID of an agent's signaling socket: the
// agent's ID, "-", and a fresh viewer ID, so that the worker's viewer events
// name the agent for the audit trail. Agent IDs hold no "-" (auth.NewID),
// and the whole stays a subject token of at most 64 characters.
func agentViewerID(agentID string) string { return agentID + "-" + auth.NewID("v_") }

// agentOfViewer returns the agent ID that agentViewerID put in a viewer ID.
func agentOfViewer(viewerID string) (string, bool) {
	id, _, ok := strings.Cut(viewerID, "-")
	return id, ok && len(id) > 2 && strings.HasPrefix(id, "a_")
}

// sessionAudit answers GET /api/v1/sessions/{id}/audit: the session's audit
// events, oldest first, for an agent or API key of its company.
func (g *Gateway) sessionAudit(c echo.Context) error {
	s, err := g.sessionOf(c)
	if err != nil {
		return err
	}
	if g.cfg.Audit == nil {
		return errorf(http.StatusServiceUnavailable, "not_ready", "the audit log is not available")
	}
	evs, err := g.cfg.Audit.List(c.Request().Context(), s.Company, s.ID, audit.MaxList)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"events": evs})
}
