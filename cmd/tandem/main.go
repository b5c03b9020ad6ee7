// Command tandem runs Tandem: `tandem serve` runs everything in one process
// (gateway, worker and an embedded NATS server); `tandem admin` manages
// companies, agents and API keys of a running server with the operator
// token; `tandem version` prints the version. Every flag has a TANDEM_* environment variable (the flag's name in
// upper case with dashes as underscores); a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

var version = "dev"

const usage = `tandem — co-browsing in a hosted browser

Usage:
  tandem serve [flags]     run gateway, worker and embedded NATS in one process
  tandem admin ...         manage companies, agents and API keys of a running server
  tandem version           print the version

Run "tandem serve -h" for the flags, "tandem admin help" for the admin commands. Every flag can also be set with a
TANDEM_* environment variable, e.g. --demo-password as TANDEM_DEMO_PASSWORD.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = serveCommand(ctx, args[1:], stdout, stderr)
	case "admin":
		err = adminCommand(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "tandem", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "tandem: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "tandem:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "tandem:", err)
		return 1
	}
}
