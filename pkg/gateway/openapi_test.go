package gateway

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// openAPIRoutes lists "METHOD /path" of every operation of the document,
// with {param} written as echo's :param.
func openAPIRoutes(t *testing.T, doc map[string]any) []string {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("the document has no paths")
	}
	param := regexp.MustCompile(`\{([a-z_]+)\}`)
	var out []string
	for p, item := range paths {
		for method := range item.(map[string]any) {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				out = append(out, strings.ToUpper(method)+" "+param.ReplaceAllString(p, ":$1"))
			}
		}
	}
	slices.Sort(out)
	return out
}

// The OpenAPI file describes exactly the /api/v1 routes of the router.
func TestOpenAPIMatchesRouter(t *testing.T) {
	e := newEnv(t, false)
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	documented := openAPIRoutes(t, doc)
	routes := apiRoutes(e.g)
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is in the router but not in openapi.json", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(routes, r) {
			t.Errorf("openapi.json lists %s, which the router does not have", r)
		}
	}

	// Served as it is embedded, to anyone.
	r := e.do(t, nil, "GET", "/api/v1/openapi.json", "", nil)
	if r.Status != 200 || !bytes.Equal(r.Body, openAPIDoc) || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /api/v1/openapi.json = %d %q, want the embedded document as JSON", r.Status, r.Header.Get("Content-Type"))
	}
}

// Every operation is complete and every $ref points at something.
func TestOpenAPIIsConsistent(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for p, item := range doc["paths"].(map[string]any) {
		if !strings.HasPrefix(p, "/api/v1/") {
			t.Errorf("path %s is outside /api/v1", p)
		}
		declared := map[string]bool{}
		for _, prm := range asList(item.(map[string]any)["parameters"]) {
			declared[paramName(doc, prm)] = true
		}
		for method, v := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			op := v.(map[string]any)
			name := strings.ToUpper(method) + " " + p
			id, _ := op["operationId"].(string)
			if id == "" || ids[id] != "" {
				t.Errorf("%s: operationId %q missing or used by %s too", name, id, ids[id])
			}
			ids[id] = name
			if s, _ := op["summary"].(string); s == "" {
				t.Errorf("%s has no summary", name)
			}
			if _, ok := op["security"]; !ok {
				t.Errorf("%s does not say who may call it (security)", name)
			}
			if rs, _ := op["responses"].(map[string]any); len(rs) == 0 {
				t.Errorf("%s has no responses", name)
			}
			for _, m := range regexp.MustCompile(`\{([a-z_]+)\}`).FindAllStringSubmatch(p, -1) {
				if !declared[m[1]] {
					t.Errorf("%s: path parameter %s is not declared", name, m[1])
				}
			}
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && resolve(doc, ref) == nil {
				t.Errorf("$ref %s points nowhere", ref)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

func asList(v any) []any { l, _ := v.([]any); return l }

func paramName(doc map[string]any, prm any) string {
	m := prm.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		m, _ = resolve(doc, ref).(map[string]any)
	}
	name, _ := m["name"].(string)
	return name
}

// resolve follows a local JSON pointer ("#/components/schemas/Error").
func resolve(doc map[string]any, ref string) any {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[part]; !ok {
			return nil
		}
	}
	return cur
}
