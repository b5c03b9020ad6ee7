// Command tandem runs Tandem: `tandem serve` runs everything in one process
// (gateway, worker and an embedded NATS server); `tandem gateway` and
// `tandem worker` run the two halves against a NATS cluster to scale out
// (docs/scaling.md); `tandem admin` manages companies, agents and API keys
// of a running server with the operator token; `tandem version` prints the
// version. Every flag has a TANDEM_* environment variable (the flag's name
// in upper case with dashes as underscores); a flag on the command line
// wins.
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
  tandem gateway [flags]   run a gateway (HTTP, pages, API, signaling) against a NATS cluster
  tandem worker [flags]    run a worker (browser pool, media) against a NATS cluster
  tandem admin ...         manage companies, agents and API keys of a running server
  tandem version           print the version

SIGTERM drains a worker (and serve): no new sessions, and it stops once the live ones finished
(--drain-timeout); a second SIGTERM or SIGINT stops at once.

Run "tandem serve -h" (gateway -h, worker -h) for the flags, "tandem admin help" for the admin commands. Every flag can also be set with a
TANDEM_* environment variable, e.g. --demo-password as TANDEM_DEMO_PASSWORD.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// signals: SIGINT stops at once (the context ends). With drains, the
// first SIGTERM closes drain instead (the worker takes no new sessions and
// stops once its sessions finished) and a second one stops at once;
// without, SIGTERM stops at once too.
func signals(drains bool) (context.Context, <-chan struct{}, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	drain := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		draining := false
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				if sig == syscall.SIGTERM && drains && !draining {
					draining = true
					close(drain)
					continue
				}
				cancel()
			}
		}
	}()
	return ctx, drain, func() { signal.Stop(sigs); cancel() }
}

// run executes one subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, drain, stop := signals(args[0] == "serve" || args[0] == "worker")
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = serveCommand(ctx, args[1:], drain, stdout, stderr)
	case "gateway":
		err = gatewayCommand(ctx, args[1:], stdout, stderr)
	case "worker":
		err = workerCommand(ctx, args[1:], drain, stdout, stderr)
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
