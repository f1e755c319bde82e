package natsauth_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/proto/natsauth"
	"github.com/backendim/brain/proto/natsserver"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func TestEnsureSeeds(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nkeys")
	keys, err := natsauth.EnsureSeeds(dir)
	if err != nil {
		t.Fatal(err)
	}
	var roles []natsauth.Role
	for _, k := range keys {
		roles = append(roles, k.Role)
		info, err := os.Stat(k.File)
		if err != nil || info.Mode().Perm() != 0o600 || !strings.HasPrefix(k.Public, "U") {
			t.Errorf("%s: %v, %v, public key %q; want a 0600 user seed", k.File, info, err, k.Public)
		}
	}
	if diff := cmp.Diff(natsauth.Roles(), roles); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v, %v; want mode 0700", info, err)
	}
	again, err := natsauth.EnsureSeeds(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(keys, again); diff != "" {
		t.Errorf("a second call changed the seeds (-first +second):\n%s", diff)
	}
}

func TestPublicKeyRefusesBadSeedFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys, err := natsauth.EnsureSeeds(dir)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(keys[0].File)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		mode os.FileMode
		want string
	}{
		{"readable by others", seed, 0o644, "open to others"},
		{"group-writable", seed, 0o660, "open to others"},
		{"not a seed", []byte("hello\n"), 0o600, "not a user seed"},
		{"an account seed", []byte("SAAGNWE3VHDA5XWGQH3AFWBKAPXLETSQQKLT5OZCOYBC6QNB6GPDJ6EJIE\n"), 0o600, "not a user seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "gateway.nk")
			if err := os.WriteFile(f, tt.data, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(f, tt.mode); err != nil {
				t.Fatal(err)
			}
			if _, err := natsauth.PublicKey(f); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// 0440 is what a Kubernetes Secret mounted with fsGroup gives.
	shared := filepath.Join(t.TempDir(), "worker.nk")
	if err := os.WriteFile(shared, seed, 0o440); err != nil {
		t.Fatal(err)
	}
	if pub, err := natsauth.PublicKey(shared); err != nil || pub != keys[0].Public {
		t.Errorf("0440 seed: %q, %v; want %q", pub, err, keys[0].Public)
	}
}

// TestPermissions: each limited role's lists are valid, sorted subjects without a catch-all, and
// only the admin may touch the JetStream API at large.
func TestPermissions(t *testing.T) {
	t.Parallel()
	if _, limited := natsauth.For(natsauth.Admin); limited {
		t.Error("the admin is limited")
	}
	for _, r := range []natsauth.Role{natsauth.Gateway, natsauth.Worker} {
		p, limited := natsauth.For(r)
		if !limited || len(p.Publish) == 0 || len(p.Subscribe) == 0 {
			t.Fatalf("%s: %+v", r, p)
		}
		for _, list := range [][]string{p.Publish, p.Subscribe} {
			if !slices.IsSorted(list) || len(slices.Compact(slices.Clone(list))) != len(list) {
				t.Errorf("%s: not sorted and unique: %v", r, list)
			}
			for _, s := range list {
				if !server.IsValidSubject(s) || s == ">" || strings.HasSuffix(s, "$JS.API.>") || s == "_INBOX.>" {
					t.Errorf("%s: subject %q is invalid or too wide", r, s)
				}
			}
		}
		if !slices.Contains(p.Subscribe, natsauth.InboxPrefix(r)+".>") {
			t.Errorf("%s cannot receive its replies", r)
		}
	}
}

// TestUsersConfig: a NATS configuration that includes the users file inside its authorization
// block, with the permissions file next to the users file, as the shipped ones do, gives every key
// its role's permissions and requires authentication; a rotation's second key of a role too.
func TestUsersConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys, err := natsauth.EnsureSeeds(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(natsauth.SeedFile(dir, natsauth.Worker), filepath.Join(dir, "worker.old.nk")); err != nil {
		t.Fatal(err)
	}
	if keys, err = natsauth.EnsureSeeds(dir); err != nil || len(keys) != 4 {
		t.Fatalf("keys after a rotation: %v, %v", keys, err)
	}
	conf := filepath.Join(dir, "nats.conf")
	write(t, conf, "listen: 127.0.0.1:4222\nauthorization {\n  include \""+natsauth.UsersFile+"\"\n}\n")
	write(t, filepath.Join(dir, natsauth.UsersFile), natsauth.UsersConf(keys))
	write(t, filepath.Join(dir, natsauth.PermissionsFile), natsauth.PermissionsConf())
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want(keys), got(opts)); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
	if opts.NoAuthUser != "" || opts.Username != "" || opts.Authorization != "" {
		t.Errorf("other ways in: no_auth_user %q, user %q, token %q", opts.NoAuthUser, opts.Username, opts.Authorization)
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

type user struct {
	Publish, Subscribe []string
	Unlimited          bool
}

func want(keys []natsauth.Key) map[string]user {
	m := map[string]user{}
	for _, k := range keys {
		p, limited := natsauth.For(k.Role)
		m[k.Public] = user{Publish: p.Publish, Subscribe: p.Subscribe, Unlimited: !limited}
	}
	return m
}

func got(opts *server.Options) map[string]user {
	m := map[string]user{}
	for _, u := range opts.Nkeys {
		if u.Permissions == nil {
			m[u.Nkey] = user{Unlimited: true}
			continue
		}
		var v user
		if u.Permissions.Publish != nil {
			v.Publish = u.Permissions.Publish.Allow
		}
		if u.Permissions.Subscribe != nil {
			v.Subscribe = u.Permissions.Subscribe.Allow
		}
		m[u.Nkey] = v
	}
	return m
}

func TestConnectRefusesAServerWithoutAuth(t *testing.T) {
	t.Parallel()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	t.Cleanup(ns.Shutdown)
	if nc, err := natsauth.Connect(natsauth.Worker, ns.ClientURL(), "", ""); !errors.Is(err, natsauth.ErrNoAuth) {
		if err == nil {
			nc.Close()
		}
		t.Errorf("connect to a server without auth: %v, want ErrNoAuth", err)
	}
	if _, err := natsauth.Connect(natsauth.Worker, ns.ClientURL(), "a.nk", "b.creds"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("two kinds of credentials: %v", err)
	}
}

// TestConnectWithAnotherRolesSeed: a process given another role's seed fails at once, naming it,
// instead of waiting for every request to time out.
func TestConnectWithAnotherRolesSeed(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	ns, err := natsserver.StartEmbedded("test", "127.0.0.1:0", store, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	seeds := natsserver.SeedDir(store)
	_, err = natsauth.Connect(natsauth.Worker, ns.ClientURL(), natsauth.SeedFile(seeds, natsauth.Gateway), "")
	if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "the worker's") {
		t.Fatalf("worker with the gateway's seed: %v, want a permission violation naming the worker", err)
	}
	nc, err := natsauth.Connect(natsauth.Worker, ns.ClientURL(), natsauth.SeedFile(seeds, natsauth.Worker), "")
	if err != nil {
		t.Fatalf("worker with its own seed: %v", err)
	}
	nc.Close()
}
