package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/auth"
)

// minAdminToken is the shortest operator token `tandem serve` accepts.
const minAdminToken = 16

const adminUsage = `Usage:
  tandem admin company create <slug> --name NAME [--origins URL,...]
  tandem admin company list
  tandem admin company disable <slug>
  tandem admin agent create --company SLUG --email EMAIL [--name NAME] [--role agent|supervisor|admin] [--password PW]
  tandem admin agent list --company SLUG
  tandem admin agent disable --company SLUG <agent id or e-mail>
  tandem admin apikey create --company SLUG --name NAME
  tandem admin apikey list --company SLUG
  tandem admin apikey revoke --company SLUG <key id>

Every command calls the platform routes of a running server with the
operator token (tandem serve --admin-token) and takes:
  --server URL    the server; TANDEM_SERVER, default http://127.0.0.1:8080
  --token TOKEN   the operator token; TANDEM_ADMIN_TOKEN (prefer the variable:
                  command lines are visible to other users of the machine)
  --json          print the server's JSON answer instead of a table

Without --password, agent create makes up a password and prints it once.
Server errors print "tandem: <message> (<code>)" and exit 1; usage errors
exit 2.
`

const defaultServer = "http://127.0.0.1:8080"

// adminOpts holds every flag an admin command may take.
type adminOpts struct {
	server, token                       string
	json                                bool
	name, origins, company, email, role string
	password                            string
}

// adminCmd is one `tandem admin <object> <verb>`.
type adminCmd struct {
	args     []string // names of the positional arguments
	flags    []string // flags beyond --server, --token, --json
	required []string // flags that must be given
	run      func(ctx context.Context, c *adminClient, o *adminOpts, args []string) error
}

var adminCommands = map[string]adminCmd{
	"company create":  {args: []string{"slug"}, flags: []string{"name", "origins"}, required: []string{"name"}, run: companyCreate},
	"company list":    {run: companyList},
	"company disable": {args: []string{"slug"}, run: companyDisable},
	"agent create":    {flags: []string{"company", "email", "name", "role", "password"}, required: []string{"company", "email"}, run: agentCreate},
	"agent list":      {flags: []string{"company"}, required: []string{"company"}, run: agentList},
	"agent disable":   {args: []string{"agent"}, flags: []string{"company"}, required: []string{"company"}, run: agentDisable},
	"apikey create":   {flags: []string{"company", "name"}, required: []string{"company", "name"}, run: apiKeyCreate},
	"apikey list":     {flags: []string{"company"}, required: []string{"company"}, run: apiKeyList},
	"apikey revoke":   {args: []string{"key id"}, flags: []string{"company"}, required: []string{"company"}, run: apiKeyRevoke},
}

// adminCommand runs `tandem admin ...`.
func adminCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, adminUsage)
		return nil
	}
	if len(args) < 2 {
		fmt.Fprint(stderr, adminUsage)
		return fmt.Errorf("%w: tandem admin needs an object and a verb", errUsage)
	}
	name := args[0] + " " + args[1]
	cmd, ok := adminCommands[name]
	if !ok {
		fmt.Fprint(stderr, adminUsage)
		return fmt.Errorf("%w: unknown command %q", errUsage, "admin "+name)
	}
	var o adminOpts
	fs := flag.NewFlagSet("admin "+name, flag.ContinueOnError)
	fs.StringVar(&o.server, "server", "", "the Tandem server (TANDEM_SERVER; default "+defaultServer+")")
	fs.StringVar(&o.token, "token", "", "the operator token (TANDEM_ADMIN_TOKEN)")
	fs.BoolVar(&o.json, "json", false, "print the server's JSON answer")
	o.register(fs, cmd.flags)
	pos, err := parseInterleaved(fs, args[2:], stderr)
	if err != nil {
		return err
	}
	if len(pos) != len(cmd.args) {
		return fmt.Errorf("%w: admin %s takes %d argument(s) (%s), got %d", errUsage, name, len(cmd.args), strings.Join(cmd.args, ", "), len(pos))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, r := range cmd.required {
		if !given[r] || fs.Lookup(r).Value.String() == "" {
			return fmt.Errorf("%w: admin %s needs --%s", errUsage, name, r)
		}
	}
	c, err := newAdminClient(o, given)
	if err != nil {
		return err
	}
	c.out = stdout
	return cmd.run(ctx, c, &o, pos)
}

func (o *adminOpts) register(fs *flag.FlagSet, names []string) {
	for _, n := range names {
		switch n {
		case "name":
			fs.StringVar(&o.name, "name", "", "display name")
		case "origins":
			fs.StringVar(&o.origins, "origins", "", "comma-separated origins allowed to embed Tandem (https://shop.example)")
		case "company":
			fs.StringVar(&o.company, "company", "", "the company's slug")
		case "email":
			fs.StringVar(&o.email, "email", "", "the agent's e-mail address")
		case "role":
			fs.StringVar(&o.role, "role", "agent", "agent, supervisor or admin")
		case "password":
			fs.StringVar(&o.password, "password", "", "the agent's password (at least 8 characters); empty: make one up and print it")
		}
	}
}

// parseInterleaved parses flags that may come before, between and after
// the positional arguments, which it returns.
func parseInterleaved(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	fs.SetOutput(stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// adminClient calls the platform routes.
type adminClient struct {
	base  string
	token string
	json  bool
	http  *http.Client
	out   io.Writer
}

func newAdminClient(o adminOpts, given map[string]bool) (*adminClient, error) {
	server, token := o.server, o.token
	if !given["server"] {
		server = os.Getenv("TANDEM_SERVER")
	}
	if server == "" {
		server = defaultServer
	}
	if !given["token"] {
		token = os.Getenv("TANDEM_ADMIN_TOKEN")
	}
	if token == "" {
		return nil, fmt.Errorf("%w: no operator token: set TANDEM_ADMIN_TOKEN or pass --token", errUsage)
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: --server %q is not an http(s) URL", errUsage, server)
	}
	return &adminClient{
		base: strings.TrimSuffix(server, "/"), token: token, json: o.json,
		http: &http.Client{Timeout: 30 * time.Second},
	}, nil
}

// serverError is an error answer of the server.
type serverError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *serverError) Error() string { return e.Message + " (" + e.Code + ")" }

// call sends body (nil for none) and decodes the answer into out; it
// returns the raw answer too, for --json.
func (c *adminClient) call(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", c.base, err)
	}
	if resp.StatusCode >= 300 {
		se := &serverError{}
		if json.Unmarshal(raw, se) != nil || se.Code == "" {
			return nil, fmt.Errorf("%s %s: the server answered %s", method, path, resp.Status)
		}
		return nil, se
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: the answer is not what tandem expects: %w", method, path, err)
		}
	}
	return raw, nil
}

// printJSON writes the server's answer, with extra fields added.
func (c *adminClient) printJSON(raw []byte, extra map[string]any) error {
	if len(extra) > 0 {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		for k, v := range extra {
			m[k] = v
		}
		var err error
		if raw, err = json.Marshal(m); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(c.out, "%s\n", bytes.TrimSpace(raw))
	return err
}

// table prints rows under a header, aligned.
func (c *adminClient) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// The answers of the platform routes, as far as the tables need them.
type (
	companyOut struct {
		Slug           string    `json:"slug"`
		Name           string    `json:"name"`
		AllowedOrigins []string  `json:"allowed_origins"`
		Disabled       bool      `json:"disabled"`
		CreatedAt      time.Time `json:"created_at"`
	}
	agentOut struct {
		ID       string `json:"id"`
		Email    string `json:"email"`
		Name     string `json:"name"`
		Role     string `json:"role"`
		Disabled bool   `json:"disabled"`
	}
	apiKeyOut struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		Revoked   bool      `json:"revoked"`
		CreatedAt time.Time `json:"created_at"`
		Key       string    `json:"key"`
	}
)

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *adminClient) companies(list []companyOut) error {
	rows := make([][]string, 0, len(list))
	for _, co := range list {
		rows = append(rows, []string{co.Slug, co.Name, yesNo(co.Disabled), dash(strings.Join(co.AllowedOrigins, ",")), co.CreatedAt.Format(time.RFC3339)})
	}
	return c.table([]string{"SLUG", "NAME", "DISABLED", "ORIGINS", "CREATED"}, rows)
}

func (c *adminClient) agents(list []agentOut) error {
	rows := make([][]string, 0, len(list))
	for _, a := range list {
		rows = append(rows, []string{a.ID, a.Email, a.Name, a.Role, yesNo(a.Disabled)})
	}
	return c.table([]string{"ID", "EMAIL", "NAME", "ROLE", "DISABLED"}, rows)
}

func (c *adminClient) apiKeys(list []apiKeyOut) error {
	rows := make([][]string, 0, len(list))
	for _, k := range list {
		rows = append(rows, []string{k.ID, k.Name, yesNo(k.Revoked), k.CreatedAt.Format(time.RFC3339)})
	}
	return c.table([]string{"ID", "NAME", "REVOKED", "CREATED"}, rows)
}

// companyPath is the platform path of a company, escaped.
func companyPath(slug string, rest ...string) string {
	p := "/api/v1/admin/companies/" + url.PathEscape(slug)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

func companyCreate(ctx context.Context, c *adminClient, o *adminOpts, args []string) error {
	var lf listFlag
	_ = lf.Set(o.origins)
	origins := []string(lf)
	if origins == nil {
		origins = []string{}
	}
	var co companyOut
	raw, err := c.call(ctx, http.MethodPost, "/api/v1/admin/companies",
		map[string]any{"slug": args[0], "name": o.name, "allowed_origins": origins}, &co)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(raw, nil)
	}
	return c.companies([]companyOut{co})
}

func companyList(ctx context.Context, c *adminClient, _ *adminOpts, _ []string) error {
	var out struct{ Companies []companyOut }
	raw, err := c.call(ctx, http.MethodGet, "/api/v1/admin/companies", nil, &out)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(raw, nil)
	}
	return c.companies(out.Companies)
}

func companyDisable(ctx context.Context, c *adminClient, _ *adminOpts, args []string) error {
	var co companyOut
	raw, err := c.call(ctx, http.MethodDelete, companyPath(args[0]), nil, &co)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(raw, nil)
	}
	return c.companies([]companyOut{co})
}

func agentCreate(ctx context.Context, c *adminClient, o *adminOpts, _ []string) error {
	pw, generated := o.password, false
	if pw == "" {
		pw, generated = auth.NewToken()[:20], true
	}
	var a agentOut
	raw, err := c.call(ctx, http.MethodPost, companyPath(o.company, "agents"),
		map[string]string{"email": o.email, "name": o.name, "password": pw, "role": o.role}, &a)
	if err != nil {
		return err
	}
	if c.json {
		if generated {
			return c.printJSON(raw, map[string]any{"password": pw})
		}
		return c.printJSON(raw, nil)
	}
	if err := c.agents([]agentOut{a}); err != nil {
		return err
	}
	if generated {
		fmt.Fprintf(c.out, "\npassword: %s\n(shown only now; the agent can log in with it at once)\n", pw)
	}
	return nil
}

func agentList(ctx context.Context, c *adminClient, o *adminOpts, _ []string) error {
	var out struct{ Agents []agentOut }
	raw, err := c.call(ctx, http.MethodGet, companyPath(o.company, "agents"), nil, &out)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(raw, nil)
	}
	return c.agents(out.Agents)
}

// agentDisable takes an agent's id, or its e-mail (found in the list).
func agentDisable(ctx context.Context, c *adminClient, o *adminOpts, args []string) error {
	id := args[0]
	if strings.Contains(id, "@") {
		var out struct{ Agents []agentOut }
		if _, err := c.call(ctx, http.MethodGet, companyPath(o.company, "agents"), nil, &out); err != nil {
			return err
		}
		i := slices.IndexFunc(out.Agents, func(a agentOut) bool { return strings.EqualFold(a.Email, strings.TrimSpace(id)) })
		if i < 0 {
			return fmt.Errorf("company %s has no agent %s", o.company, id)
		}
		id = out.Agents[i].ID
	}
	var a agentOut
	raw, err := c.call(ctx, http.MethodPatch, companyPath(o.company, "agents", id), map[string]bool{"disabled": true}, &a)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(raw, nil)
	}
	return c.agents([]agentOut{a})
}

func apiKeyCreate(ctx context.Context, c *adminClient, o *adminOpts, _ []string) error {
	var k apiKeyOut
	raw, err := c.call(ctx, http.MethodPost, companyPath(o.company, "apikeys"), map[string]string{"name": o.name}, &k)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(raw, nil)
	}
	if err := c.table([]string{"ID", "NAME", "KEY"}, [][]string{{k.ID, k.Name, k.Key}}); err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.out, "\n(the key is shown only now; Tandem keeps only its hash)")
	return err
}

func apiKeyList(ctx context.Context, c *adminClient, o *adminOpts, _ []string) error {
	var out struct {
		APIKeys []apiKeyOut `json:"api_keys"`
	}
	raw, err := c.call(ctx, http.MethodGet, companyPath(o.company, "apikeys"), nil, &out)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(raw, nil)
	}
	return c.apiKeys(out.APIKeys)
}

func apiKeyRevoke(ctx context.Context, c *adminClient, o *adminOpts, args []string) error {
	var k apiKeyOut
	raw, err := c.call(ctx, http.MethodDelete, companyPath(o.company, "apikeys", args[0]), nil, &k)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(raw, nil)
	}
	return c.apiKeys([]apiKeyOut{k})
}
