package gateway

import (
	"context"
	"testing"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// The embed check answers with CORS only for the company's allowed origins.
// (cmd/tandem's TestEmbedScript runs the script in a real browser.)
func TestEmbedOrigins(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	if _, err := e.store.UpdateCompany(ctx, "acme", func(c *tenant.Company) error {
		c.AllowedOrigins = []string{"https://shop.acme.test", "http://127.0.0.1:8081"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateCompany(ctx, tenant.Company{Slug: "off", Name: "Off", AllowedOrigins: []string{"https://shop.acme.test"}, Disabled: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, slug, origin string
		status             int
		code               string
	}{
		{"allowed", "acme", "https://shop.acme.test", 200, ""},
		{"allowed with a port", "acme", "http://127.0.0.1:8081", 200, ""},
		{"allowed, upper-case host", "acme", "https://SHOP.acme.test", 200, ""},
		{"no origin", "acme", "", 403, "origin_not_allowed"},
		{"other site", "acme", "https://evil.test", 403, "origin_not_allowed"},
		{"other scheme", "acme", "http://shop.acme.test", 403, "origin_not_allowed"},
		{"other port", "acme", "http://127.0.0.1:8082", 403, "origin_not_allowed"},
		{"null", "acme", "null", 403, "origin_not_allowed"},
		{"with a path", "acme", "https://shop.acme.test/x", 403, "origin_not_allowed"},
		{"with a user", "acme", "https://u@shop.acme.test", 403, "origin_not_allowed"},
		{"another company's origin", "beta", "https://shop.acme.test", 403, "origin_not_allowed"},
		{"unknown company", "nope", "https://shop.acme.test", 404, "not_found"},
		{"disabled company", "off", "https://shop.acme.test", 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.origin != "" {
				hdr["Origin"] = tc.origin
			}
			r := e.do(t, nil, "GET", "/api/v1/companies/"+tc.slug+"/embed", "", hdr)
			acao := r.Header.Get("Access-Control-Allow-Origin")
			if r.Header.Get("Vary") != "Origin" {
				t.Errorf("Vary = %q, want Origin", r.Header.Get("Vary"))
			}
			if tc.status != 200 {
				r.wantError(t, tc.status, tc.code)
				if acao != "" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
					t.Errorf("a refusal carries CORS headers: %v", r.Header)
				}
				return
			}
			m := r.json(t)
			if r.Status != 200 || acao != tc.origin || m["slug"] != "acme" || m["join_url"] != e.srv.URL+"/join/acme" {
				t.Errorf("GET embed from %s = %d %s, ACAO %q", tc.origin, r.Status, r.Body, acao)
			}
			if r.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("the embed check allows credentials")
			}
		})
	}
}
