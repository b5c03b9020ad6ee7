package gateway

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// caller is who made an authenticated request: an agent (cookie) or an
// integration (API key), always of one company.
type caller struct {
	Company string
	Agent   *tenant.Agent  // nil for an API key
	APIKey  *tenant.APIKey // nil for an agent
}

func (c caller) actor() string {
	if c.Agent != nil {
		return "agent:" + c.Agent.ID
	}
	return "apikey:" + c.APIKey.ID
}

const callerKey = "tandem.caller"

func callerOf(c echo.Context) caller {
	v, _ := c.Get(callerKey).(caller)
	return v
}

// authenticate finds the caller from an API key or the agent cookie.
func (g *Gateway) authenticate(c echo.Context) (caller, error) {
	ctx := c.Request().Context()
	if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
		secret, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || secret == "" {
			return caller{}, errUnauthenticated
		}
		k, err := g.store.LookupAPIKey(ctx, strings.TrimSpace(secret))
		if errors.Is(err, tenant.ErrNotFound) {
			return caller{}, errUnauthenticated
		} else if err != nil {
			return caller{}, err
		}
		return caller{Company: k.Company, APIKey: &k}, nil
	}
	ck, err := c.Cookie(agentCookie)
	if err != nil || ck.Value == "" {
		return caller{}, errUnauthenticated
	}
	a, err := g.store.LookupLogin(ctx, ck.Value)
	if errors.Is(err, tenant.ErrNotFound) {
		return caller{}, errUnauthenticated
	} else if err != nil {
		return caller{}, err
	}
	return caller{Company: a.Company, Agent: &a}, nil
}

// requireCaller admits agents and API keys.
func (g *Gateway) requireCaller(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		who, err := g.authenticate(c)
		if err != nil {
			return err
		}
		c.Set(callerKey, who)
		return next(c)
	}
}

// requireAgent admits logged-in agents only.
func (g *Gateway) requireAgent(next echo.HandlerFunc) echo.HandlerFunc {
	return g.requireCaller(func(c echo.Context) error {
		if callerOf(c).Agent == nil {
			return errorf(http.StatusForbidden, "forbidden", "this route is for agents who logged in")
		}
		return next(c)
	})
}

type agentJSON struct {
	ID      string      `json:"id"`
	Email   string      `json:"email"`
	Name    string      `json:"name"`
	Role    tenant.Role `json:"role"`
	Company string      `json:"company"`
}

func toAgentJSON(a tenant.Agent) agentJSON {
	return agentJSON{ID: a.ID, Email: a.Email, Name: a.Name, Role: a.Role, Company: a.Company}
}

func (g *Gateway) login(c echo.Context) error {
	var body struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if body.Email == "" || body.Password == "" {
		return errorf(http.StatusBadRequest, "invalid_request", "email and password are required")
	}
	if !g.limiter.allow("login", g.clientKey(c), time.Now()) {
		return g.tooMany(c)
	}
	ctx := c.Request().Context()
	a, err := g.store.Authenticate(ctx, body.Email, body.Password)
	if errors.Is(err, tenant.ErrBadCredentials) {
		g.limiter.fail("login", g.clientKey(c), time.Now())
		return errorf(http.StatusUnauthorized, "invalid_credentials", "the email or the password is wrong")
	} else if err != nil {
		return err
	}
	token, expires, err := g.store.CreateLogin(ctx, a)
	if err != nil {
		return err
	}
	g.setCookie(c, agentCookie, token, expires)
	return c.JSON(http.StatusOK, map[string]any{"agent": toAgentJSON(a)})
}

func (g *Gateway) logout(c echo.Context) error {
	if ck, err := c.Cookie(agentCookie); err == nil && ck.Value != "" {
		if err := g.store.DeleteLogin(c.Request().Context(), ck.Value); err != nil && !errors.Is(err, tenant.ErrNotFound) {
			return err
		}
	}
	g.setCookie(c, agentCookie, "", time.Time{})
	return c.NoContent(http.StatusNoContent)
}

func (g *Gateway) me(c echo.Context) error {
	who := callerOf(c)
	co, err := g.store.GetCompany(c.Request().Context(), who.Company)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"agent":   toAgentJSON(*who.Agent),
		"company": map[string]string{"slug": co.Slug, "name": co.Name},
	})
}

func (g *Gateway) publicCompany(c echo.Context) error {
	co, err := g.store.GetCompany(c.Request().Context(), c.Param("slug"))
	if errors.Is(err, tenant.ErrInvalid) || (err == nil && co.Disabled) {
		return errNotFound
	} else if err != nil {
		return err
	}
	b := co.Branding
	return c.JSON(http.StatusOK, map[string]any{"slug": co.Slug, "name": co.Name,
		"branding": brandingJSON{Name: b.Name, Colour: b.Colour, LogoURL: b.LogoURL}})
}
