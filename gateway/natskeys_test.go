package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backendim/brain/proto/natsauth"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
)

// TestEmbeddedNATSRequiresAuth: the embedded server (make run) refuses clients without a seed; it
// creates the seeds on first start, mode 0600, and uses the same ones after a restart.
func TestEmbeddedNATSRequiresAuth(t *testing.T) {
	g := startGateway(t, nil, nil)
	if nc, err := nats.Connect(g.natsURL); !errors.Is(err, nats.ErrAuthorization) {
		if err == nil {
			nc.Close()
		}
		t.Fatalf("connect without credentials: %v, want an authorization violation", err)
	}
	keys := seedKeys(t, g.seeds)
	for _, k := range keys {
		info, err := os.Stat(k.File)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", k.File, perm)
		}
	}
	if nc, err := natsauth.Connect(natsauth.Worker, g.natsURL, g.seed(natsauth.Worker), ""); err != nil {
		t.Errorf("connect with the worker's seed: %v", err)
	} else {
		nc.Close()
	}

	store := filepath.Dir(g.seeds)
	g.shutdown(t)
	again := startGateway(t, nil, map[string]string{"NATS_STORE_DIR": store})
	if diff := cmp.Diff(keys, seedKeys(t, again.seeds)); diff != "" {
		t.Errorf("seeds after a restart (-before +after):\n%s", diff)
	}
}

func seedKeys(t *testing.T, dir string) []natsauth.Key {
	t.Helper()
	keys, err := natsauth.Keys(dir)
	if err != nil {
		t.Fatal(err)
	}
	var roles []natsauth.Role
	for _, k := range keys {
		roles = append(roles, k.Role)
	}
	if diff := cmp.Diff(natsauth.Roles(), roles); diff != "" {
		t.Fatalf("seed files in %s (-want +got):\n%s", dir, diff)
	}
	return keys
}

func TestEmbeddedNATSRefusesOtherCredentials(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"NATS_NKEY_FILE", "NATS_CREDS_FILE"} {
		env := map[string]string{"AUTH_JWT_SECRET": testSecret, "NATS_EMBEDDED": "true", v: "/run/brain/seed"}
		err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "NATS_STORE_DIR/nkeys") {
			t.Errorf("NATS_EMBEDDED with %s: %v, want a configuration error", v, err)
		}
	}
}

// TestNATSKeysSubcommand: `gateway nats-keys` makes the three seeds once, keeps them, and lists
// every seed of the directory in users.conf — a second key of a role during a rotation too.
func TestNATSKeysSubcommand(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nats")
	keys := func() string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), []string{"nats-keys", "-dir", dir}, func(string) string { return "" }, &out); err != nil {
			t.Fatalf("nats-keys: %v\n%s", err, &out)
		}
		b, err := os.ReadFile(filepath.Join(dir, natsauth.UsersFile))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	first := keys()
	initial := seedKeys(t, dir)
	for _, k := range initial {
		if !strings.Contains(first, `{nkey: "`+k.Public+`"`) {
			t.Errorf("users.conf lacks %s's key:\n%s", k.Role, first)
		}
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("seed directory: %v, %v; want mode 0700", info, err)
	}
	if again := keys(); again != first {
		t.Errorf("a second run changed users.conf:\n%s\nwas:\n%s", again, first)
	}

	// A rotation: the old gateway seed moves aside, a new one is made, both are users.
	old := filepath.Join(dir, "gateway.old.nk")
	if err := os.Rename(natsauth.SeedFile(dir, natsauth.Gateway), old); err != nil {
		t.Fatal(err)
	}
	rotated := keys()
	fresh, err := natsauth.PublicKey(natsauth.SeedFile(dir, natsauth.Gateway))
	if err != nil {
		t.Fatal(err)
	}
	if fresh == initial[0].Public || !strings.Contains(rotated, initial[0].Public) || !strings.Contains(rotated, fresh) ||
		strings.Count(rotated, "$"+natsauth.PermissionsVar(natsauth.Gateway)) != 2 {
		t.Errorf("after a rotation users.conf should hold the old and the new gateway key:\n%s", rotated)
	}

	if err := os.WriteFile(filepath.Join(dir, "spare.nk"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"nats-keys", "-dir", dir}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "must start with a role") {
		t.Errorf("a seed file of no role: %v, want an error", err)
	}
}
