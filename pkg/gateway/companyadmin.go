package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// A company's admins manage their own company under /api/v1/agents,
// /api/v1/apikeys and /api/v1/company; the operator manages any company
// under /api/v1/admin/companies/{slug}/... (admin.go). Both reach the same
// handlers below, which take the company they act on as an argument: the
// caller's own for an admin, the one in the path for the operator. An id
// of another company is simply not found under this one.

// scoped is a handler that acts on one company.
type scoped func(c echo.Context, company string) error

// requireCompanyAdmin admits logged-in agents with the admin role. API keys
// and the other roles are authenticated but forbidden.
func (g *Gateway) requireCompanyAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return g.requireCaller(func(c echo.Context) error {
		if a := callerOf(c).Agent; a == nil || a.Role != tenant.RoleAdmin {
			return errForbidden
		}
		return next(c)
	})
}

// own runs h on the caller's company.
func own(h scoped) echo.HandlerFunc {
	return func(c echo.Context) error { return h(c, callerOf(c).Company) }
}

// managedAgentJSON is an agent as its admins see it. Like agentJSON it has
// no password hash.
type managedAgentJSON struct {
	agentJSON
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

func toManagedAgentJSON(a tenant.Agent) managedAgentJSON {
	return managedAgentJSON{agentJSON: toAgentJSON(a), Disabled: a.Disabled, CreatedAt: a.CreatedAt}
}

type apiKeyJSON struct {
	ID        string    `json:"id"`
	Company   string    `json:"company"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked"`
}

func toAPIKeyJSON(k tenant.APIKey) apiKeyJSON {
	return apiKeyJSON{ID: k.ID, Company: k.Company, Name: k.Name, CreatedAt: k.CreatedAt, Revoked: k.Revoked}
}

// actorOf names who made a management call, for the log.
func actorOf(c echo.Context) string {
	if a := callerOf(c).Agent; a != nil {
		return "agent:" + a.ID
	}
	return "operator"
}

func (g *Gateway) listAgents(c echo.Context, company string) error {
	list, err := g.store.ListAgents(c.Request().Context(), company)
	if err != nil {
		return err
	}
	out := make([]managedAgentJSON, 0, len(list))
	for _, a := range list {
		out = append(out, toManagedAgentJSON(a))
	}
	return c.JSON(http.StatusOK, map[string]any{"agents": out})
}

func (g *Gateway) createAgent(c echo.Context, company string) error {
	var body struct {
		Email    string      `json:"email"`
		Name     string      `json:"name"`
		Password string      `json:"password"`
		Role     tenant.Role `json:"role"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if strings.TrimSpace(body.Email) == "" || body.Password == "" {
		return errorf(http.StatusBadRequest, "invalid_request", "email and password are required")
	}
	a, err := g.store.CreateAgent(c.Request().Context(), company, body.Email, body.Name, body.Password, body.Role)
	if err != nil {
		return err
	}
	g.log.Info("agent added", zap.String("company_id", company), zap.String("agent_id", a.ID),
		zap.String("role", string(a.Role)), zap.String("by", actorOf(c)))
	return c.JSON(http.StatusCreated, toManagedAgentJSON(a))
}

// updateAgent changes an agent's name, role, disabled flag or password.
// Everything is checked before anything is stored. A company admin may
// neither disable nor demote themselves, so that a company cannot lock out
// its last admin by accident.
func (g *Gateway) updateAgent(c echo.Context, company string) error {
	ctx := c.Request().Context()
	cur, err := g.store.GetAgent(ctx, company, c.Param("id"))
	if err != nil {
		return err
	}
	var body struct {
		Name     *string      `json:"name"`
		Role     *tenant.Role `json:"role"`
		Disabled *bool        `json:"disabled"`
		Password *string      `json:"password"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if body.Name != nil {
		if n := strings.TrimSpace(*body.Name); n == "" || len(n) > 200 {
			return errorf(http.StatusBadRequest, "invalid_request", "name must be 1 to 200 bytes")
		}
	}
	if body.Role != nil && !body.Role.Valid() {
		return errorf(http.StatusBadRequest, "invalid_request", "role must be agent, supervisor or admin")
	}
	if self := callerOf(c).Agent; self != nil && self.ID == cur.ID &&
		((body.Disabled != nil && *body.Disabled) || (body.Role != nil && *body.Role != tenant.RoleAdmin)) {
		return errorf(http.StatusConflict, "conflict", "you cannot disable yourself or give up your own admin role")
	}
	if body.Password != nil {
		// SetPassword checks the password before it stores anything.
		if err := g.store.SetPassword(ctx, company, cur.ID, *body.Password); err != nil {
			return err
		}
	}
	a, err := g.store.UpdateAgent(ctx, company, cur.ID, func(a *tenant.Agent) error {
		if body.Name != nil {
			a.Name = *body.Name
		}
		if body.Role != nil {
			a.Role = *body.Role
		}
		if body.Disabled != nil {
			a.Disabled = *body.Disabled
		}
		return nil
	})
	if err != nil {
		return err
	}
	g.log.Info("agent changed", zap.String("company_id", company), zap.String("agent_id", a.ID),
		zap.String("role", string(a.Role)), zap.Bool("disabled", a.Disabled),
		zap.Bool("password_changed", body.Password != nil), zap.String("by", actorOf(c)))
	return c.JSON(http.StatusOK, toManagedAgentJSON(a))
}

func (g *Gateway) listAPIKeys(c echo.Context, company string) error {
	list, err := g.store.ListAPIKeys(c.Request().Context(), company)
	if err != nil {
		return err
	}
	out := make([]apiKeyJSON, 0, len(list))
	for _, k := range list {
		out = append(out, toAPIKeyJSON(k))
	}
	return c.JSON(http.StatusOK, map[string]any{"api_keys": out})
}

// createAPIKey answers the new key with its secret: the only time anyone
// sees it.
func (g *Gateway) createAPIKey(c echo.Context, company string) error {
	var body struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if strings.TrimSpace(body.Name) == "" {
		return errorf(http.StatusBadRequest, "invalid_request", "name is required")
	}
	k, secret, err := g.store.CreateAPIKey(c.Request().Context(), company, body.Name)
	if err != nil {
		return err
	}
	g.log.Info("API key created", zap.String("company_id", company), zap.String("api_key_id", k.ID), zap.String("by", actorOf(c)))
	return c.JSON(http.StatusCreated, struct {
		apiKeyJSON
		Key string `json:"key"`
	}{toAPIKeyJSON(k), secret})
}

// revokeAPIKey revokes a key at once; revoking a revoked key is not an error.
func (g *Gateway) revokeAPIKey(c echo.Context, company string) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	if err := g.store.RevokeAPIKey(ctx, company, id); err != nil {
		return err
	}
	k, err := g.store.GetAPIKey(ctx, company, id)
	if err != nil {
		return err
	}
	g.log.Info("API key revoked", zap.String("company_id", company), zap.String("api_key_id", k.ID), zap.String("by", actorOf(c)))
	return c.JSON(http.StatusOK, toAPIKeyJSON(k))
}

func (g *Gateway) getCompany(c echo.Context, company string) error {
	co, err := g.store.GetCompany(c.Request().Context(), company)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toCompanyJSON(co))
}

// patchOwnCompany changes the settings of the admin's company; its slug and
// whether it is disabled are the operator's (unknown fields here).
func (g *Gateway) patchOwnCompany(c echo.Context, company string) error {
	var body settingsPatch
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	fn, err := body.apply()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	co, err := g.store.UpdateCompany(ctx, company, func(co *tenant.Company) error {
		fn(co)
		return nil
	})
	if err != nil {
		return err
	}
	g.log.Info("company settings changed", zap.String("company_id", company), zap.String("by", actorOf(c)))
	if err := g.applyRetention(ctx, body, co); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toCompanyJSON(co))
}

// applyRetention gives the company's audit stream the retention just
// stored, when the patch set one. Should it fail, the stored setting and
// the stream differ until the same PATCH is sent again.
func (g *Gateway) applyRetention(ctx context.Context, p settingsPatch, co tenant.Company) error {
	if p.AuditRetention == nil || g.cfg.Audit == nil {
		return nil
	}
	if err := g.cfg.Audit.SetRetention(ctx, co.Slug, co.AuditRetention); err != nil {
		return fmt.Errorf("apply audit retention of %s: %w", co.Slug, err)
	}
	return nil
}
