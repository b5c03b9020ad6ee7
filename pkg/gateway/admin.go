package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// reasonCompanyDisabled ends the sessions of a company the operator
// disabled.
const reasonCompanyDisabled = "company_disabled"

// manageRoutes registers the routes that run the service: the operator's
// platform routes, the company admins' routes, and the OpenAPI document.
func (g *Gateway) manageRoutes(api *echo.Group) {
	api.GET("/openapi.json", g.openAPI)

	// Middleware per route, not on a group: an echo group with middleware
	// adds catch-all routes that would shadow the API's 404/405 answers.
	op := func(method, path string, h echo.HandlerFunc) { api.Add(method, "/admin"+path, h, g.requireOperator) }
	op(http.MethodPost, "/companies", g.createCompany)
	op(http.MethodGet, "/companies", g.listCompanies)
	op(http.MethodGet, "/companies/:slug", g.named(g.getCompany))
	op(http.MethodPatch, "/companies/:slug", g.named(g.patchCompany))
	op(http.MethodDelete, "/companies/:slug", g.named(g.disableCompany))
	op(http.MethodGet, "/companies/:slug/agents", g.named(g.listAgents))
	op(http.MethodPost, "/companies/:slug/agents", g.named(g.createAgent))
	op(http.MethodPatch, "/companies/:slug/agents/:id", g.named(g.updateAgent))
	op(http.MethodGet, "/companies/:slug/apikeys", g.named(g.listAPIKeys))
	op(http.MethodPost, "/companies/:slug/apikeys", g.named(g.createAPIKey))
	op(http.MethodDelete, "/companies/:slug/apikeys/:id", g.named(g.revokeAPIKey))

	admin := g.requireCompanyAdmin
	api.GET("/agents", own(g.listAgents), admin)
	api.POST("/agents", own(g.createAgent), admin)
	api.PATCH("/agents/:id", own(g.updateAgent), admin)
	api.GET("/apikeys", own(g.listAPIKeys), admin)
	api.POST("/apikeys", own(g.createAPIKey), admin)
	api.DELETE("/apikeys/:id", own(g.revokeAPIKey), admin)
	api.GET("/company", own(g.getCompany), admin)
	api.PATCH("/company", own(g.patchOwnCompany), admin)
}

// requireOperator admits requests that carry the operator token as
// "Authorization: Bearer <token>". Without a configured token the platform
// routes do not exist (404). Failed tries count against the client
// network's failure budget, like wrong passwords.
func (g *Gateway) requireOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if g.cfg.AdminToken == "" {
			return errorf(http.StatusNotFound, "not_found", "no such route")
		}
		now := time.Now()
		if !g.limiter.allow("operator", g.clientKey(c), now) {
			return g.tooMany(c)
		}
		secret, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
		if !ok || !g.isOperatorToken(strings.TrimSpace(secret)) {
			g.limiter.fail("operator", g.clientKey(c), now)
			return errorf(http.StatusUnauthorized, "unauthenticated", "send the operator token as Authorization: Bearer")
		}
		return next(c)
	}
}

// isOperatorToken compares in constant time; hashing first makes the
// comparison's time independent of the lengths too.
func (g *Gateway) isOperatorToken(secret string) bool {
	got := sha256.Sum256([]byte(secret))
	want := sha256.Sum256([]byte(g.cfg.AdminToken))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// named runs h on the company in the path, which must exist (disabled or
// not).
func (g *Gateway) named(h scoped) echo.HandlerFunc {
	return func(c echo.Context) error {
		co, err := g.store.GetCompany(c.Request().Context(), c.Param("slug"))
		if err != nil {
			return err
		}
		return h(c, co.Slug)
	}
}

func (g *Gateway) createCompany(c echo.Context) error {
	var body struct {
		Slug           string   `json:"slug"`
		Name           string   `json:"name"`
		AllowedOrigins []string `json:"allowed_origins"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if body.Slug == "" || strings.TrimSpace(body.Name) == "" {
		return errorf(http.StatusBadRequest, "invalid_request", "slug and name are required")
	}
	co, err := g.store.CreateCompany(c.Request().Context(), tenant.Company{
		Slug: body.Slug, Name: body.Name, AllowedOrigins: body.AllowedOrigins,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toCompanyJSON(co))
}

func (g *Gateway) listCompanies(c echo.Context) error {
	list, err := g.store.ListCompanies(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]companyJSON, 0, len(list))
	for _, co := range list {
		out = append(out, toCompanyJSON(co))
	}
	return c.JSON(http.StatusOK, map[string]any{"companies": out})
}

// patchCompany changes any setting of a company, including whether it is
// disabled. Disabling ends its live sessions.
func (g *Gateway) patchCompany(c echo.Context, company string) error {
	var body platformPatch
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
		if body.Disabled != nil {
			co.Disabled = *body.Disabled
		}
		return nil
	})
	if err != nil {
		return err
	}
	g.log.Info("company changed", zap.String("company_id", company), zap.Bool("disabled", co.Disabled), zap.String("by", "operator"))
	if err := g.applyRetention(ctx, body.settingsPatch, co); err != nil {
		return err
	}
	if co.Disabled {
		if err := g.endCompanySessions(ctx, company); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, toCompanyJSON(co))
}

// disableCompany disables a company; nothing is deleted. Its agents, keys
// and logins stop working, its join page answers as for an unknown
// company, and its live sessions end. Disabling again is not an error (and
// ends any session left over).
func (g *Gateway) disableCompany(c echo.Context, company string) error {
	ctx := c.Request().Context()
	co, err := g.store.UpdateCompany(ctx, company, func(co *tenant.Company) error {
		co.Disabled = true
		return nil
	})
	if err != nil {
		return err
	}
	g.log.Info("company disabled", zap.String("company_id", company), zap.String("by", "operator"))
	if err := g.endCompanySessions(ctx, company); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toCompanyJSON(co))
}

// endCompanySessions ends every session of company that has not ended (the
// audit trail records it as the system's doing), and asks the workers to
// free their browsers.
func (g *Gateway) endCompanySessions(ctx context.Context, company string) error {
	list, err := g.store.ListSessions(ctx, company)
	if err != nil {
		return err
	}
	for _, s := range list {
		if s.State == tenant.SessionEnded {
			continue
		}
		if _, err := g.endAndRecord(ctx, company, s.ID, reasonCompanyDisabled, audit.ActorSystem); err != nil {
			return err
		}
		g.endOnWorker(s.WorkerID, company, s.ID, reasonCompanyDisabled)
	}
	return nil
}
