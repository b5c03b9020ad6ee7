package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/auth"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// wsConn adapts a WebSocket to what signaling.Relay reads and writes.
type wsConn struct{ c *websocket.Conn }

func (w wsConn) Read(ctx context.Context) ([]byte, error) {
	for {
		typ, b, err := w.c.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ == websocket.MessageText {
			return b, nil
		}
	}
}

func (w wsConn) Write(ctx context.Context, b []byte) error {
	return w.c.Write(ctx, websocket.MessageText, b)
}

// signal authenticates a viewer, upgrades to a WebSocket and bridges it to
// the worker hosting the session.
func (g *Gateway) signal(c echo.Context) error {
	id := c.Param("id")
	if !sessionIDRE.MatchString(id) {
		return errNotFound
	}
	ctx := c.Request().Context()
	v := signaling.Viewer{Session: id, ID: auth.NewID("v_"), Role: c.QueryParam("role")}
	switch v.Role {
	case worker.RoleCustomer:
		ck, err := c.Cookie(customerCookie)
		if err != nil || ck.Value == "" {
			return errUnauthenticated
		}
		company, sid, err := g.store.LookupCustomerToken(ctx, ck.Value)
		if errors.Is(err, tenant.ErrNotFound) || (err == nil && sid != id) {
			return errNotFound
		} else if err != nil {
			return err
		}
		v.Company, v.Name = company, "customer"
	case worker.RoleAgent:
		who, err := g.authenticate(c)
		if err != nil {
			return err
		}
		if who.Agent == nil {
			return errorf(http.StatusForbidden, "forbidden", "only agents who logged in can watch")
		}
		v.Company, v.Name = who.Company, who.Agent.Name
		v.ID = agentViewerID(who.Agent.ID) // names the agent in the worker's viewer events (audit)
	default:
		return errorf(http.StatusBadRequest, "invalid_role", "role must be customer or agent")
	}
	s, err := g.store.GetSession(ctx, v.Company, id)
	if err != nil {
		return err
	}
	if s.State == tenant.SessionEnded {
		// A viewer coming back (a reconnect, a reload) learns why, in the
		// message it would have had if it had stayed.
		return tellEnded(c, s.EndReason)
	}
	if s.WorkerID == "" {
		return errorf(http.StatusServiceUnavailable, "not_ready", "the session is still starting")
	}
	if s.ConsentAt != nil || s.AdmittedAt != nil {
		// The worker heard of these when they were given; tell it again in
		// case that message was lost (consent.go). A failure is logged there.
		_ = g.sendGate(ctx, s)
	}

	conn, err := websocket.Accept(c.Response(), c.Request(), nil) // same-origin only
	if err != nil {
		return nil // Accept wrote the HTTP error
	}
	conn.SetReadLimit(protocol.MaxSignalBytes)
	defer conn.CloseNow() //nolint:errcheck
	log := g.log.With(zap.String("session_id", id), zap.String("viewer_id", v.ID), zap.String("role", v.Role))
	helloMsg := protocol.Signal{Type: protocol.TypeHello, Role: v.Role, ViewerID: v.ID}
	if g.cfg.ICEServers != nil {
		// Fresh TURN credentials with every socket: a viewer that
		// reconnects gets new ones (docs/media-network.md).
		helloMsg.ICEServers = g.cfg.ICEServers(v.ID, time.Now())
	}
	hello := protocol.Encode(helloMsg)
	if err := conn.Write(ctx, websocket.MessageText, hello); err != nil {
		return nil
	}
	// The viewer is told if the session's worker is lost (placement.go).
	defer g.bridges.add(s.WorkerID, v)()
	if err := g.relay.Bridge(ctx, wsConn{conn}, v); err != nil && ctx.Err() == nil {
		log.Debug("viewer bridge ended", zap.Error(err))
	}
	_ = conn.Close(websocket.StatusNormalClosure, "")
	return nil
}

// tellEnded answers a viewer of an ended session: the WebSocket opens,
// carries one "ended" message with the reason, and closes.
func tellEnded(c echo.Context, reason string) error {
	if reason == "" {
		reason = "unknown"
	}
	conn, err := websocket.Accept(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // Accept wrote the HTTP error
	}
	defer conn.CloseNow() //nolint:errcheck
	ended := protocol.Encode(protocol.Signal{Type: protocol.TypeEnded, Reason: reason})
	if err := conn.Write(c.Request().Context(), websocket.MessageText, ended); err == nil {
		_ = conn.Close(websocket.StatusNormalClosure, "")
	}
	return nil
}
