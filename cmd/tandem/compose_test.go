package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The compose files of docker/ checked without a Docker engine: each
// tandem service's command line and environment go through the same flag
// parsing and checks as the real commands (configure), so a mistyped flag
// or variable, a bad value or a missing setting fails here; the layout the
// deployment promises (docs/deploy.md) is there; and nats-server itself
// checks the NATS configuration.

const dockerDir = "../../docker"

// composeEnv stands for the operator's docker/.env: every variable the
// compose files require, with values of the right shape.
var composeEnv = map[string]string{
	"TANDEM_PUBLIC_IP":     "203.0.113.10",
	"TANDEM_TURN_SECRET":   "0123456789abcdef0123456789abcdef",
	"TANDEM_DEMO_PASSWORD": "compose-password",
	"TANDEM_DEMO_API_KEY":  "tdm_compose_test_key",
}

// composeService is what the test reads of a service.
type composeService struct {
	Image           string            `yaml:"image"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	SecurityOpt     []string          `yaml:"security_opt"`
	CapAdd          []string          `yaml:"cap_add"`
	Privileged      bool              `yaml:"privileged"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	ShmSize         string            `yaml:"shm_size"`
	Healthcheck     struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Configs []struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	} `yaml:"configs"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Configs  map[string]struct {
		Content string `yaml:"content"`
	} `yaml:"configs"`
}

// loadCompose reads a compose file as docker compose would: YAML with its
// anchors and merge keys, then ${...} interpolated from env. It returns
// the interpolation errors (a required variable unset) instead of failing.
func loadCompose(t *testing.T, name string, env map[string]string) (composeFile, []error) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dockerDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// Interpolate every scalar in place (anchors are shared nodes: once).
	var errs []error
	seen := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		if n.Kind == yaml.ScalarNode {
			v, err := interpolate(n.Value, env)
			if err != nil {
				errs = append(errs, err)
			}
			n.Value = v
		}
		for _, c := range n.Content {
			walk(c)
		}
		walk(n.Alias)
	}
	walk(&doc)
	var f composeFile
	if err := doc.Decode(&f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f, errs
}

// interpolate expands $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?message}, ${VAR?message}, ${VAR:+alt}, ${VAR+alt} and $$, as the
// compose specification says.
func interpolate(s string, env map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch c := s[i+1]; {
		case c == '$':
			b.WriteByte('$')
			i++
		case c == '{':
			depth, end := 0, -1
			for j := i + 1; j < len(s) && end < 0; j++ {
				switch s[j] {
				case '{':
					depth++
				case '}':
					if depth--; depth == 0 {
						end = j
					}
				}
			}
			if end < 0 {
				return "", fmt.Errorf("unclosed ${ in %q", s)
			}
			v, err := expand(s[i+2:end], env)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i = end
		case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			b.WriteString(env[s[i+1:j]])
			i = j - 1
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), nil
}

var varExpr = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$`)

func expand(expr string, env map[string]string) (string, error) {
	m := varExpr.FindStringSubmatch(expr)
	if m == nil {
		return "", fmt.Errorf("bad substitution ${%s}", expr)
	}
	v, set := env[m[1]]
	word := func() (string, error) { return interpolate(m[3], env) }
	switch m[2] {
	case "":
		return v, nil
	case ":-", "-":
		if !set || (m[2] == ":-" && v == "") {
			return word()
		}
	case ":?", "?":
		if !set || (m[2] == ":?" && v == "") {
			msg, _ := word()
			return "", fmt.Errorf("required variable %s is missing a value: %s", m[1], msg)
		}
	case ":+", "+":
		if set && (m[2] == "+" || v != "") {
			return word()
		}
		return "", nil
	}
	return v, nil
}

// imageEnv is the ENV of the image's Dockerfile, which every tandem
// container starts with.
func imageEnv(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dockerDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "ENV ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	return env
}

// runConfigure runs a tandem service's command line and environment
// through the real flag parsing and checks. Every TANDEM_* variable the
// service sets must name a flag of its command: a misspelt one would
// otherwise be ignored.
func runConfigure(t *testing.T, image map[string]string, svc composeService) (string, serveConfig) {
	t.Helper()
	if len(svc.Command) == 0 {
		t.Fatal("no command")
	}
	setups := map[string]commandSetup{"serve": serveSetup, "gateway": gatewaySetup, "worker": workerSetup}
	setup, ok := setups[svc.Command[0]]
	if !ok {
		t.Fatalf("command %q is not serve, gateway or worker", svc.Command[0])
	}
	var probe serveConfig
	fs, _ := setup(&probe)
	for k := range svc.Environment {
		if !strings.HasPrefix(k, "TANDEM_") {
			continue
		}
		known := false
		fs.VisitAll(func(f *flag.Flag) { known = known || envName(f.Name) == k })
		if !known {
			t.Errorf("environment %s names no flag of tandem %s", k, svc.Command[0])
		}
	}
	// The container's environment only: the image's, then the service's.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TANDEM_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	for _, env := range []map[string]string{image, svc.Environment} {
		for k, v := range env {
			t.Setenv(k, v)
		}
	}
	cfg, _, err := configure(setup, svc.Command[1:], io.Discard)
	if err != nil {
		t.Fatalf("tandem %s: %v", strings.Join(svc.Command, " "), err)
	}
	return svc.Command[0], cfg
}

// checkBrowserContainer checks what a container hosting Chromium needs:
// the sandbox profile (and no way around the sandbox), /dev/shm.
func checkBrowserContainer(t *testing.T, svc composeService) {
	t.Helper()
	profile := ""
	for _, o := range svc.SecurityOpt {
		if p, ok := strings.CutPrefix(o, "seccomp="); ok {
			profile = p
		}
	}
	if profile != "seccomp-chromium.json" {
		t.Errorf("security_opt %q: want seccomp=seccomp-chromium.json (Chromium's sandbox, docker/seccomp_test.go)", svc.SecurityOpt)
	} else if _, err := os.Stat(filepath.Join(dockerDir, profile)); err != nil {
		t.Error(err)
	}
	if svc.Privileged || slices.Contains(svc.CapAdd, "SYS_ADMIN") || slices.Contains(svc.CapAdd, "ALL") {
		t.Errorf("privileged %v, cap_add %v: the browser's sandbox needs neither", svc.Privileged, svc.CapAdd)
	}
	if svc.ShmSize == "" {
		t.Error("no shm_size: Docker's 64 MB /dev/shm is too small for Chromium")
	}
}

func TestComposeScaleOut(t *testing.T) {
	// Without the operator's settings compose refuses to start, naming them.
	_, errs := loadCompose(t, "compose.yml", map[string]string{})
	for v := range composeEnv {
		found := false
		for _, err := range errs {
			found = found || strings.Contains(err.Error(), "variable "+v+" ")
		}
		if !found {
			t.Errorf("compose.yml starts without %s; want it required (${%s:?...})", v, v)
		}
	}

	f, errs := loadCompose(t, "compose.yml", composeEnv)
	if len(errs) > 0 {
		t.Fatalf("compose.yml with every required variable: %v", errs)
	}
	image := imageEnv(t)
	var natsNodes, gateways, workers, others []string
	for name, svc := range f.Services {
		switch {
		case strings.HasPrefix(svc.Image, "nats:"):
			natsNodes = append(natsNodes, name)
		case strings.HasPrefix(svc.Image, "tandem:") && len(svc.Command) > 0 && svc.Command[0] == "gateway":
			gateways = append(gateways, name)
		case strings.HasPrefix(svc.Image, "tandem:") && len(svc.Command) > 0 && svc.Command[0] == "worker":
			workers = append(workers, name)
		default:
			others = append(others, name)
		}
	}
	for _, l := range [][]string{natsNodes, gateways, workers, others} {
		sort.Strings(l)
	}
	if len(natsNodes) != 3 || len(gateways) != 2 || len(workers) != 2 {
		t.Fatalf("nats %v, gateways %v, workers %v: want 3, 2 and 2", natsNodes, gateways, workers)
	}
	if f.Services["coturn"].Image == "" || !strings.HasPrefix(f.Services["coturn"].Image, "coturn/") {
		t.Errorf("no coturn service (services besides nats, gateways and workers: %v)", others)
	}

	// The NATS nodes: the real nats-server accepts the configuration each
	// of them gets.
	t.Run("nats", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds nats-server")
		}
		bin := goBuild(t, t.TempDir(), "nats-server", "github.com/nats-io/nats-server/v2")
		for _, name := range natsNodes {
			svc := f.Services[name]
			conf := ""
			for _, v := range svc.Volumes {
				if src, dst, _ := strings.Cut(v, ":"); strings.HasPrefix(dst, "/etc/nats/") {
					conf = filepath.Join(dockerDir, src)
				}
			}
			if conf == "" || !slices.Contains(svc.Command, "/etc/nats/tandem.conf") {
				t.Fatalf("%s: command %q, volumes %q: want ./nats/... mounted at /etc/nats/tandem.conf and read", name, svc.Command, svc.Volumes)
			}
			if svc.Environment["SERVER_NAME"] != name {
				t.Errorf("%s: SERVER_NAME %q, want its own name", name, svc.Environment["SERVER_NAME"])
			}
			cmd := exec.Command(bin, "-t", "-c", conf)
			cmd.Env = append(os.Environ(), "SERVER_NAME="+svc.Environment["SERVER_NAME"])
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: nats-server -t -c %s: %v\n%s", name, conf, err, b)
			}
		}
		b, err := os.ReadFile(filepath.Join(dockerDir, "nats", "nats.conf"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range natsNodes {
			if !strings.Contains(string(b), "nats-route://"+name+":6222") {
				t.Errorf("nats.conf has no route to %s", name)
			}
		}
	})

	// The TURN server: coturn's configuration checks the same secret the
	// gateways mint credentials with.
	coturn := map[string]string{}
	for _, c := range f.Services["coturn"].Configs {
		for line := range strings.Lines(f.Configs[c.Source].Content) {
			k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
			if k != "" && !strings.HasPrefix(k, "#") {
				coturn[k] = v
			}
		}
	}
	if _, ok := coturn["use-auth-secret"]; !ok || coturn["static-auth-secret"] != composeEnv["TANDEM_TURN_SECRET"] {
		t.Errorf("coturn: use-auth-secret %v, static-auth-secret %q; want the TURN REST scheme with TANDEM_TURN_SECRET", ok, coturn["static-auth-secret"])
	}

	natsHosts := map[string]bool{}
	for _, n := range natsNodes {
		natsHosts[n+":4222"] = true
	}
	checkNATSURL := func(name string, cfg serveConfig) {
		got := map[string]bool{}
		for _, u := range strings.Split(cfg.NATSURL, ",") {
			if p, err := url.Parse(strings.TrimSpace(u)); err == nil {
				got[p.Host] = true
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(natsHosts) {
			t.Errorf("%s: --nats-url %q, want every node of %v", name, cfg.NATSURL, natsNodes)
		}
	}

	gatewayPort := ""
	for _, name := range gateways {
		t.Run(name, func(t *testing.T) {
			_, cfg := runConfigure(t, image, f.Services[name])
			checkNATSURL(name, cfg)
			if cfg.NATSReplicas != 3 {
				t.Errorf("--nats-replicas %d, want 3", cfg.NATSReplicas)
			}
			if !cfg.Demo || cfg.DemoPassword == "" || cfg.DemoAPIKey == "" {
				t.Errorf("demo %v with password %v and key %v: both gateways must seed the same demo credentials", cfg.Demo, cfg.DemoPassword != "", cfg.DemoAPIKey != "")
			}
			if cfg.TURNSecret != coturn["static-auth-secret"] {
				t.Error("--turn-secret is not coturn's static-auth-secret")
			}
			if len(cfg.TURN) == 0 || len(cfg.STUN) == 0 {
				t.Errorf("--turn %v, --stun %v: want coturn as both", cfg.TURN, cfg.STUN)
			}
			for _, u := range append(slices.Clone(cfg.TURN), cfg.STUN...) {
				hostPort, _, _ := strings.Cut(u[strings.Index(u, ":")+1:], "?")
				if _, port, _ := net.SplitHostPort(hostPort); port != coturn["listening-port"] {
					t.Errorf("ICE server %s: port %s, coturn listens on %s", u, port, coturn["listening-port"])
				}
			}
			_, gatewayPort, _ = net.SplitHostPort(cfg.Addr)
		})
	}

	ids, udpPorts := map[string]string{}, map[int]string{}
	for _, name := range workers {
		t.Run(name, func(t *testing.T) {
			svc := f.Services[name]
			_, cfg := runConfigure(t, image, svc)
			checkNATSURL(name, cfg)
			checkBrowserContainer(t, svc)
			if cfg.WorkerID == "" || ids[cfg.WorkerID] != "" {
				t.Errorf("--worker-id %q: want one of its own (also %s)", cfg.WorkerID, ids[cfg.WorkerID])
			}
			ids[cfg.WorkerID] = name
			if cfg.UDPPort == 0 || udpPorts[cfg.UDPPort] != "" || cfg.ICETCPPort == 0 {
				t.Errorf("--udp-port %d, --ice-tcp-port %d: want fixed ports of its own", cfg.UDPPort, cfg.ICETCPPort)
			}
			udpPorts[cfg.UDPPort] = name
			// Published with the same number: the worker advertises its
			// own port at --public-ip.
			for _, want := range []string{fmt.Sprintf("%d:%d/udp", cfg.UDPPort, cfg.UDPPort), fmt.Sprintf("%d:%d/tcp", cfg.ICETCPPort, cfg.ICETCPPort)} {
				if !slices.Contains(svc.Ports, want) {
					t.Errorf("ports %q: want %s", svc.Ports, want)
				}
			}
			if len(cfg.PublicIPs) != 1 || cfg.PublicIPs[0] != composeEnv["TANDEM_PUBLIC_IP"] {
				t.Errorf("--public-ip %v, want TANDEM_PUBLIC_IP", cfg.PublicIPs)
			}
			// The health check asks the worker's own /readyz.
			_, port, _ := net.SplitHostPort(cfg.MetricsAddr)
			if host, _, _ := net.SplitHostPort(cfg.MetricsAddr); host != "0.0.0.0" ||
				!slices.Contains(svc.Healthcheck.Test, "http://127.0.0.1:"+port+"/readyz") {
				t.Errorf("--metrics-addr %q, healthcheck %q: want /readyz of 0.0.0.0:<port>", cfg.MetricsAddr, svc.Healthcheck.Test)
			}
			// SIGTERM drains: compose must wait longer before its SIGKILL.
			grace, err := time.ParseDuration(svc.StopGracePeriod)
			if err != nil || grace <= cfg.DrainTimeout {
				t.Errorf("stop_grace_period %q, --drain-timeout %v: want a grace longer than the drain", svc.StopGracePeriod, cfg.DrainTimeout)
			}
			// The demo shop is the gateways': the hosted browser may reach them.
			for _, g := range gateways {
				if !slices.Contains(cfg.EgressAllow, "http://"+g+":"+gatewayPort) {
					t.Errorf("--egress-allow %v: want http://%s:%s (the demo shop)", cfg.EgressAllow, g, gatewayPort)
				}
			}
		})
	}

	// The load balancer sends to every gateway, on the port they listen on.
	caddy, err := os.ReadFile(filepath.Join(dockerDir, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	var upstreams []string
	for line := range strings.Lines(string(caddy)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "reverse_proxy "); ok {
			upstreams = strings.Fields(strings.TrimSuffix(rest, "{"))
		}
	}
	var want []string
	for _, g := range gateways {
		want = append(want, g+":"+gatewayPort)
	}
	if !slices.Equal(upstreams, want) {
		t.Errorf("Caddyfile reverse_proxy %v, want %v", upstreams, want)
	}
	for name, svc := range f.Services {
		for _, v := range svc.Volumes {
			if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join(dockerDir, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			}
		}
	}
}

func TestComposeSingle(t *testing.T) {
	env := map[string]string{"TANDEM_DEMO_PASSWORD": "compose-password"}
	if _, errs := loadCompose(t, "compose.single.yml", map[string]string{}); len(errs) == 0 {
		t.Error("compose.single.yml starts without TANDEM_DEMO_PASSWORD; want it required")
	}
	f, errs := loadCompose(t, "compose.single.yml", env)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	svc, ok := f.Services["tandem"]
	if !ok {
		t.Fatal("no service tandem")
	}
	cmd, cfg := runConfigure(t, imageEnv(t), svc)
	if cmd != "serve" || !cfg.Demo || cfg.Addr != "0.0.0.0:8080" {
		t.Errorf("tandem %s, demo %v, addr %s: want serve --demo on 0.0.0.0:8080", cmd, cfg.Demo, cfg.Addr)
	}
	checkBrowserContainer(t, svc)
	for _, want := range []string{"8080:8080", strconv.Itoa(cfg.UDPPort) + ":" + strconv.Itoa(cfg.UDPPort) + "/udp"} {
		if !slices.Contains(svc.Ports, want) {
			t.Errorf("ports %q: want %s", svc.Ports, want)
		}
	}
}
