package gateway

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDoc is the hand-written OpenAPI 3.1 description of every /api/v1
// route; TestOpenAPIMatchesRouter keeps it and the router in step, and
// docs/api.md is its prose form.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI serves the OpenAPI document; it is public.
func (g *Gateway) openAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDoc)
}
