package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
)

// keys runs `flowyted keys create|list|revoke`. It opens the database
// directly; SQLite's WAL and busy timeout let it run beside the daemon.
func keys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"keys: create, list or revoke"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	defData := getenv("FLOWYTE_DATA")
	if defData == "" {
		defData = "./data"
	}
	data := fs.String("data", defData, "data directory")
	defDB := getenv("FLOWYTE_DATABASE")
	if defDB == "" {
		defDB = "sqlite"
	}
	database := fs.String("database", defDB, "metadata store: sqlite or a postgres:// URL (FLOWYTE_DATABASE)")
	var workspace, name, scopes *string
	if sub == "create" {
		workspace = fs.String("workspace", "default", "workspace (created if new)")
		name = fs.String("name", "", "key name (the git author of its edits)")
		scopes = fs.String("scopes", "", "comma-separated: "+strings.Join(backend.AllScopes, ","))
	}
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	open := func() (metaStore, error) {
		if err := checkDatabase(*database); err != nil {
			return nil, err
		}
		st, _, err := openStore(ctx, *database, *data)
		return st, err
	}
	journal := backend.NewKeyJournal(keysDir(*data))
	switch sub {
	case "create":
		if fs.NArg() > 0 {
			return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
		}
		if *name == "" || *scopes == "" {
			return usageError{"keys create needs --name and --scopes"}
		}
		list := strings.Split(*scopes, ",")
		for i := range list {
			list[i] = strings.TrimSpace(list[i])
		}
		if err := backend.ValidScopes(list); err != nil {
			return usageError{err.Error()}
		}
		st, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		secret, _, err := backend.CreateJournaledKey(ctx, st, journal, *workspace, *name, list, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
		return nil
	case "list":
		st, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		ks, err := st.ListKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tWORKSPACE\tNAME\tSCOPES\tCREATED\tSTATUS")
		for _, k := range ks {
			status := "active"
			if k.RevokedAt != nil {
				status = "revoked " + k.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.WorkspaceName, k.Name, strings.Join(k.Scopes, ","), k.CreatedAt.UTC().Format(time.RFC3339), status)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return usageError{"keys revoke needs exactly one KEY_ID"}
		}
		st, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		if err := backend.RevokeKey(ctx, st, journal, fs.Arg(0), time.Now()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no key %q", fs.Arg(0))
			}
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", fs.Arg(0))
		return nil
	}
	return usageError{fmt.Sprintf("keys: unknown subcommand %q", sub)}
}
