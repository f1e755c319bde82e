package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/backendim/brain/proto/natsauth"
)

// natsKeys is `gateway nats-keys`: it creates the NATS nkey seeds of Brain's roles in a directory
// (only those that are missing) and writes the NATS users file of every seed there.
func natsKeys(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gateway nats-keys", flag.ContinueOnError)
	fs.SetOutput(out)
	dir := fs.String("dir", "data/secrets/nats", "directory of the seeds (created 0700; seeds 0600) and of "+natsauth.UsersFile)
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: gateway nats-keys [-dir DIR]\n\n"+
			"Creates an nkey seed for each of gateway, worker and admin that DIR lacks (existing seeds are kept),\n"+
			"then writes DIR/%s: one NATS user per seed file in DIR (<role>.nk, or <role>.<name>.nk while a\n"+
			"key is rotated). NATS needs only %s (public keys), with Brain's %s next to it; each seed\n"+
			"goes to its process (NATS_NKEY_FILE) or to the nats CLI (--nkey). See docs/operations.md,\n"+
			"\"NATS identities\".\n\n", natsauth.UsersFile, natsauth.UsersFile, natsauth.PermissionsFile)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("nats-keys: unexpected argument %q", fs.Arg(0))
	}
	keys, err := natsauth.EnsureSeeds(*dir)
	if err != nil {
		return err
	}
	users := filepath.Join(*dir, natsauth.UsersFile)
	if err := os.WriteFile(users, []byte(natsauth.UsersConf(keys)), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", users, err)
	}
	for _, k := range keys {
		fmt.Fprintf(out, "%-8s %s  %s\n", k.Role, k.Public, k.File)
	}
	fmt.Fprintf(out, "wrote %s (%d users)\n", users, len(keys))
	return nil
}
