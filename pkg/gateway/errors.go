package gateway

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// apiError is an error with the status, code and message a client sees.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

var (
	errUnauthenticated = errorf(http.StatusUnauthorized, "unauthenticated", "log in or send an API key")
	errNotFound        = errorf(http.StatusNotFound, "not_found", "no such object")
	errForbidden       = errorf(http.StatusForbidden, "forbidden", "your role may not do this")
)

// handleError maps any error a handler returned to the JSON body and status;
// internal detail is logged, never sent.
func (g *Gateway) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *apiError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, tenant.ErrNotFound):
		ae = errNotFound
	case errors.Is(err, tenant.ErrInvalid):
		ae = errorf(http.StatusBadRequest, "invalid_request", tenant.InvalidReason(err))
	case errors.Is(err, tenant.ErrExists):
		ae = errorf(http.StatusConflict, "exists", "it exists already")
	case errors.As(err, &he):
		ae = fromEcho(he)
	default:
		g.log.Error("request failed", zap.String("path", c.Path()), zap.Error(err))
		ae = errorf(http.StatusInternalServerError, "internal", "something went wrong on our side")
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, ae)
}

func fromEcho(he *echo.HTTPError) *apiError {
	switch he.Code {
	case http.StatusNotFound:
		return errorf(he.Code, "not_found", "no such route")
	case http.StatusMethodNotAllowed:
		return errorf(he.Code, "method_not_allowed", "this route does not take that method")
	case http.StatusRequestEntityTooLarge:
		return errorf(he.Code, "too_large", "the request body is too large")
	case http.StatusUnsupportedMediaType:
		return errorf(he.Code, "unsupported_media_type", "send JSON")
	case http.StatusBadRequest:
		return errorf(he.Code, "invalid_request", "the request is malformed")
	case http.StatusUnauthorized:
		return errUnauthenticated
	case http.StatusTooManyRequests:
		return errorf(he.Code, "too_many_requests", "slow down and try again later")
	}
	if he.Code >= 500 {
		return errorf(he.Code, "internal", "something went wrong on our side")
	}
	return errorf(he.Code, "invalid_request", http.StatusText(he.Code))
}
