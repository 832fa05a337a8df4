// Command flowyted is the flowyte daemon and its key management CLI.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "flowyted:", err)
		os.Exit(exitCode(err))
	}
}

// usageError is a command-line mistake: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	if _, ok := err.(usageError); ok {
		return 2
	}
	return 1
}

const usage = `flowyted — versioned conversational agents in git

usage:
  flowyted serve [--addr 127.0.0.1:8080] [--data ./data] [--log-level info] [--log-format console|json]
                 [--webhook-allow-private] [--webhook-retry-schedule 5s,5m,30m,...] [--public-url URL]
  flowyted keys create --data DIR --workspace WS --name NAME --scopes s1,s2
  flowyted keys list --data DIR
  flowyted keys revoke --data DIR KEY_ID
  flowyted migrate-db --data DIR --from sqlite --to postgres://...
  (serve and keys take --database sqlite|postgres://...; see README)
`

// run is the whole program, callable from tests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"a command is required"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return keys(ctx, args[1:], getenv, stdout, stderr)
	case "migrate-db":
		return migrateDB(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}
