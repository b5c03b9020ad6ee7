package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandem-cobrowse/tandem/pkg/rtc"
)

// Every flag of serve is documented with its variable in docs/configuration.md.
func TestConfigurationDocListsEveryFlag(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, flags := range []func(*serveConfig) *flag.FlagSet{serveFlags, gatewayCmdFlags, workerCmdFlags} {
		var cfg serveConfig
		fs := flags(&cfg)
		fs.VisitAll(func(f *flag.Flag) {
			row := "| `--" + f.Name + "` | `" + envName(f.Name) + "` |"
			if !bytes.Contains(doc, []byte(row)) {
				t.Errorf("docs/configuration.md has no row starting %q (tandem %s)", row, fs.Name())
			}
		})
	}
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
		{"bad trusted proxy", []string{"serve", "--trusted-proxy", "10.0.0.0/33"}, nil, "--trusted-proxy"},
		{"gateway without NATS", []string{"gateway"}, nil, "--nats-url is required"},
		{"worker with an http NATS URL", []string{"worker", "--nats-url", "http://n1:4222"}, nil, "--nats-url"},
		{"worker id with a dot", []string{"worker", "--nats-url", "nats://n1:4222", "--worker-id", "a.b"}, nil, "--worker-id"},
		{"negative drain", []string{"worker", "--nats-url", "nats://n1:4222", "--drain-timeout", "-1s"}, nil, "--drain-timeout"},
		{"NATS key without cert", []string{"gateway", "--nats-url", "nats://n1:4222", "--nats-tls-key", "k.pem"}, nil, "--nats-tls-cert"},
		{"replicas over 5", []string{"gateway", "--nats-url", "nats://n1:4222", "--nats-replicas", "7"}, nil, "--nats-replicas"},
		{"bad browser cgroup", []string{"serve"}, map[string]string{"TANDEM_BROWSER_CGROUP": "v1"}, "--browser-cgroup"},
		{"CPU pressure over 100", []string{"serve", "--max-cpu-pressure", "120"}, nil, "--max-cpu-pressure"},
		{"cert and acme", []string{"serve", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--acme-domain", "a.example"}, nil, "exclude each other"},
		{"acme email alone", []string{"serve", "--acme-email", "ops@a.example"}, nil, "need --acme-domain"},
		{"acme domain with a path", []string{"serve", "--acme-domain", "a.example/x"}, nil, "not a host name"},
		{"udp port out of range", []string{"serve", "--udp-port", "70000"}, nil, "--udp-port"},
		{"ice tcp port out of range", []string{"serve", "--ice-tcp-port", "65536"}, nil, "--ice-tcp-port"},
		{"negative ice tcp port", []string{"serve"}, map[string]string{"TANDEM_ICE_TCP_PORT": "-1"}, "--ice-tcp-port"},
		{"ice tcp port not a number", []string{"serve", "--ice-tcp-port", "http"}, nil, "ice-tcp-port"},
		{"public ip not an ip", []string{"serve", "--public-ip", "203.0.113.5,media.example"}, nil, "--public-ip"},
		{"ipv6 public ip with loopback ice", []string{"serve", "--ice-loopback", "true", "--public-ip", "2001:db8::1"}, nil, "IPv6"},
		{"stun url that does not parse", []string{"serve", "--stun", "stun:"}, nil, "--stun"},
		{"stun url of another scheme", []string{"serve", "--stun", "https://stun.example.com"}, nil, "--stun"},
		{"turn url given as stun", []string{"serve", "--stun", "turn:turn.example.com"}, nil, "--stun"},
		{"turn without secret", []string{"serve", "--turn", "turn:turn.example.com:3478"}, nil, "--turn-secret"},
		{"turn url that does not parse", []string{"serve", "--turn", "turn:turn.example.com:port", "--turn-secret", "s3cret-s3cret"}, nil, "--turn"},
		{"turn url of another scheme", []string{"serve"}, map[string]string{"TANDEM_TURN": "stun:stun.example.com", "TANDEM_TURN_SECRET": "s3cret-s3cret"}, "--turn"},
		{"secret without turn", []string{"serve"}, map[string]string{"TANDEM_TURN_SECRET": "s3cret-s3cret"}, "--turn-secret needs --turn"},
		{"turn ttl too short", []string{"serve", "--turn", "turn:turn.example.com", "--turn-secret", "s3cret-s3cret", "--turn-ttl", "10s"}, nil, "--turn-ttl"},
		{"turn ttl too long", []string{"serve", "--turn", "turn:turn.example.com", "--turn-secret", "s3cret-s3cret", "--turn-ttl", "200h"}, nil, "--turn-ttl"},
		{"turn ttl not a duration", []string{"serve", "--turn-ttl", "1 hour"}, nil, "turn-ttl"},
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

// The media flags reach rtc.Config, from the command line and from the
// environment, and the secret is never in an error message.
func TestMediaFlags(t *testing.T) {
	t.Setenv("TANDEM_TURN_SECRET", "s3cret-from-env")
	t.Setenv("TANDEM_STUN", "stun:a.example:3478, stuns:b.example")
	var cfg serveConfig
	var stderr bytes.Buffer
	args := []string{"--ice-tcp-port", "3479", "--udp-port", "3478", "--public-ip", "203.0.113.5",
		"--turn", "turn:turn.example.com:3478?transport=udp,turns:turn.example.com:5349", "--turn-ttl", "2h", "--ice-deny-private"}
	if err := parseFlags(serveFlags(&cfg), args, &stderr); err != nil {
		t.Fatalf("parseFlags = %v", err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("validate = %v", err)
	}
	got := cfg.rtcConfig(false)
	want := rtc.Config{UDPPort: 3478, ICETCPPort: 3479, PublicIPs: []string{"203.0.113.5"},
		STUN:       []string{"stun:a.example:3478", "stuns:b.example"},
		TURN:       []string{"turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"},
		TURNSecret: "s3cret-from-env", TURNTTL: 2 * time.Hour, DenyPrivatePeers: true}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("rtcConfig mismatch (-want +got):\n%s", d)
	}

	// Defaults: everything off, credentials for 12 hours.
	var def serveConfig
	if err := parseFlags(serveFlags(&def), nil, &stderr); err != nil {
		t.Fatal(err)
	}
	if def.ICETCPPort != 0 || def.TURNTTL != rtc.DefaultTURNTTL || def.ICEDenyPrivate || len(def.TURN) != 0 {
		t.Errorf("defaults: tcp port %d, ttl %v, deny private %v, turn %q", def.ICETCPPort, def.TURNTTL, def.ICEDenyPrivate, def.TURN)
	}

	var out bytes.Buffer
	if code := run([]string{"serve", "--turn", "turn:turn.example.com:port"}, &out, &out); code != 2 {
		t.Fatalf("run with a bad turn url = %d, want 2", code)
	}
	if strings.Contains(out.String(), "s3cret-from-env") {
		t.Errorf("the TURN secret is in the output: %s", out.String())
	}
}

func TestEnvName(t *testing.T) {
	if got := envName("demo-api-key"); got != "TANDEM_DEMO_API_KEY" {
		t.Errorf("envName(%q) = %q", "demo-api-key", got)
	}
}
