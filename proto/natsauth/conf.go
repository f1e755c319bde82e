package natsauth

import (
	"fmt"
	"path/filepath"
	"strings"
)

// The files of a NATS configuration that admits Brain's users. The server's configuration
// includes UsersFile inside its authorization block; UsersFile (the operator's, written by
// `gateway nats-keys`: public keys only) includes PermissionsFile (shipped with Brain, generated
// from this package) from its own directory and gives every key the permissions of its role.
const (
	UsersFile       = "users.conf"
	PermissionsFile = "permissions.conf"
)

// PermissionsVar is the NATS configuration variable PermissionsFile defines for role.
func PermissionsVar(r Role) string { return "BRAIN_" + strings.ToUpper(string(r)) + "_PERMISSIONS" }

// PermissionsConf is the content of PermissionsFile: one variable per limited role.
func PermissionsConf() string {
	var b strings.Builder
	b.WriteString("# Brain's NATS permissions, one variable per role, generated from proto/natsauth: do not edit\n")
	b.WriteString("# (testkit/deploycheck compares every copy with it). users.conf includes this file.\n")
	for _, r := range Roles() {
		p, limited := For(r)
		if !limited {
			continue
		}
		fmt.Fprintf(&b, "%s = {\n", PermissionsVar(r))
		for _, l := range []struct {
			name     string
			subjects []string
		}{{"publish", p.Publish}, {"subscribe", p.Subscribe}} {
			fmt.Fprintf(&b, "  %s: {allow: [\n", l.name)
			for _, s := range l.subjects {
				fmt.Fprintf(&b, "    %q\n", s)
			}
			b.WriteString("  ]}\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// UsersConf renders UsersFile for keys: one nkey user per key with its role's permissions (the
// admin's user has none: every subject). Every role must have a key: NATS refuses a variable
// that is defined but not used.
func UsersConf(keys []Key) string {
	var b strings.Builder
	b.WriteString("# Brain's NATS users, written by `gateway nats-keys` from the seed files next to it: one per key,\n")
	b.WriteString("# public keys only. The permissions of each role come with Brain (" + PermissionsFile + ").\n")
	fmt.Fprintf(&b, "include %q\n", PermissionsFile)
	b.WriteString("users = [\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "  {nkey: %q", k.Public)
		if _, limited := For(k.Role); limited {
			fmt.Fprintf(&b, ", permissions: $%s}  # %s\n", PermissionsVar(k.Role), filepath.Base(k.File))
			continue
		}
		fmt.Fprintf(&b, "}  # %s: %s, every subject\n", filepath.Base(k.File), k.Role)
	}
	b.WriteString("]\n")
	return b.String()
}
