package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

// Every flag of serve is documented with its variable in docs/configuration.md.
func TestConfigurationDocListsEveryFlag(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var cfg serveConfig
	serveFlags(&cfg).VisitAll(func(f *flag.Flag) {
		row := "| `--" + f.Name + "` | `" + envName(f.Name) + "` |"
		if !bytes.Contains(doc, []byte(row)) {
			t.Errorf("docs/configuration.md has no row starting %q", row)
		}
	})
}

func TestParseFlagsEnvironment(t *testing.T) {
	t.Setenv("TANDEM_ADDR", "127.0.0.1:9999")
	t.Setenv("TANDEM_DEMO", "true")
	t.Setenv("TANDEM_MAX_SESSIONS", "7")
	var cfg serveConfig
	var stderr bytes.Buffer
	if err := parseFlags(serveFlags(&cfg), []string{"--max-sessions", "3"}, &stderr); err != nil {
		t.Fatalf("parseFlags = %v", err)
	}
	if cfg.Addr != "127.0.0.1:9999" || !cfg.Demo {
		t.Errorf("environment not applied: addr %q demo %v", cfg.Addr, cfg.Demo)
	}
	if cfg.MaxSessions != 3 {
		t.Errorf("MaxSessions = %d, want the command line's 3 over the environment's 7", cfg.MaxSessions)
	}
}

func TestBadSettingsExitTwo(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown flag", []string{"serve", "--nope"}, nil, "flag provided but not defined"},
		{"bad env int", []string{"serve"}, map[string]string{"TANDEM_WARM": "many"}, "TANDEM_WARM"},
		{"bad addr", []string{"serve", "--addr", "nowhere"}, nil, "--addr"},
		{"short password", []string{"serve", "--demo-password", "short"}, nil, "at least 8"},
		{"bad log level", []string{"serve", "--log-level", "loud"}, nil, "--log-level"},
		{"stray argument", []string{"serve", "extra"}, nil, "unexpected argument"},
		{"unknown command", []string{"launch"}, nil, "unknown command"},
		{"cert without key", []string{"serve", "--tls-cert", "c.pem"}, nil, "--tls-key"},
		{"negative tabs", []string{"serve", "--max-tabs", "-1"}, nil, "--max-tabs"},
		{"bad browser cgroup", []string{"serve"}, map[string]string{"TANDEM_BROWSER_CGROUP": "v1"}, "--browser-cgroup"},
		{"CPU pressure over 100", []string{"serve", "--max-cpu-pressure", "120"}, nil, "--max-cpu-pressure"},
		{"cert and acme", []string{"serve", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--acme-domain", "a.example"}, nil, "exclude each other"},
		{"acme email alone", []string{"serve", "--acme-email", "ops@a.example"}, nil, "need --acme-domain"},
		{"acme domain with a path", []string{"serve", "--acme-domain", "a.example/x"}, nil, "not a host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != 2 {
				t.Fatalf("run(%q) = %d, want 2; stderr %s", tt.args, code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("run(%q) stderr = %q, want it to mention %q", tt.args, stderr.String(), tt.want)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	if got := envName("demo-api-key"); got != "TANDEM_DEMO_API_KEY" {
		t.Errorf("envName(%q) = %q", "demo-api-key", got)
	}
}
