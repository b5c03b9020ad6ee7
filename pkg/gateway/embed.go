package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// companyEmbed answers GET /api/v1/companies/{slug}/embed, which the embed
// script (/embed.js) calls from the company's own site before it adds its
// help button. Only a request whose Origin is one of the company's allowed
// origins gets 200 and the CORS header that lets the script read it; any
// other gets 403 origin_not_allowed without CORS headers, so the script
// sees a failed request and adds nothing. Nothing secret is in the answer:
// the check keeps the button off other sites, and the browser, not this
// handler, is what enforces it.
func (g *Gateway) companyEmbed(c echo.Context) error {
	c.Response().Header().Add(echo.HeaderVary, echo.HeaderOrigin)
	co, err := g.store.GetCompany(c.Request().Context(), c.Param("slug"))
	if errors.Is(err, tenant.ErrInvalid) || (err == nil && co.Disabled) {
		return errNotFound
	} else if err != nil {
		return err
	}
	origin := c.Request().Header.Get(echo.HeaderOrigin)
	if !originAllowed(co.AllowedOrigins, origin) {
		return errorf(http.StatusForbidden, "origin_not_allowed", "this site may not show the help button of this company")
	}
	h := c.Response().Header()
	h.Set(echo.HeaderAccessControlAllowOrigin, origin)
	h.Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, map[string]string{
		"slug":     co.Slug,
		"name":     co.Name,
		"join_url": g.baseURL(c) + "/join/" + co.Slug,
	})
}

// originAllowed says whether an Origin header names one of allowed (which
// the store keeps as lower-case scheme://host[:port]). "null", an empty
// header and anything with more than scheme, host and port are not allowed.
func originAllowed(allowed []string, origin string) bool {
	if origin == "" || len(origin) > 512 {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	return slices.Contains(allowed, u.Scheme+"://"+strings.ToLower(u.Host))
}
