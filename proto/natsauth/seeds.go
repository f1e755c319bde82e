package natsauth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nkeys"
)

// SeedExt ends the name of every seed file: <role>.nk, or <role>.<anything>.nk for a second key
// of the role during a rotation (gateway.old.nk).
const SeedExt = ".nk"

// SeedFile is the file holding role's seed in dir.
func SeedFile(dir string, r Role) string { return filepath.Join(dir, string(r)+SeedExt) }

// Key is one nkey user: its role, its public key, and the seed file it came from.
type Key struct {
	Role   Role
	Public string
	File   string
}

// EnsureSeeds creates dir (mode 0700) and, for every role without one, a new seed file (mode 0600),
// then returns the keys of every seed file in dir (Keys). Existing seeds are never replaced.
func EnsureSeeds(dir string) ([]Key, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats seeds: %w", err)
	}
	for _, r := range Roles() {
		if err := createSeed(SeedFile(dir, r)); err != nil {
			return nil, err
		}
	}
	return Keys(dir)
}

// createSeed writes a new user seed to path unless the file exists.
func createSeed(path string) error {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return fmt.Errorf("new nats seed: %w", err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return fmt.Errorf("new nats seed: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nats seed: %w", err)
	}
	_, err = f.Write(append(seed, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write nats seed %s: %w", path, err)
	}
	return nil
}

// Keys returns the key of every seed file in dir, ordered by role and then file name. A seed
// file names its role (SeedExt); one of an unknown role is an error.
func Keys(dir string) ([]Key, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"+SeedExt))
	if err != nil {
		return nil, fmt.Errorf("nats seeds in %s: %w", dir, err)
	}
	var keys []Key
	for _, f := range files {
		name, _, _ := strings.Cut(filepath.Base(f), ".")
		r := Role(name)
		if !slices.Contains(Roles(), r) {
			return nil, fmt.Errorf("nats seed %s: its name must start with a role (%s)", f, roleList())
		}
		pub, err := PublicKey(f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, Key{Role: r, Public: pub, File: f})
	}
	slices.SortStableFunc(keys, func(a, b Key) int {
		return slices.Index(Roles(), a.Role) - slices.Index(Roles(), b.Role)
	})
	return keys, nil
}

// PublicKey reads a user seed file and returns its public key. The file must not be open to
// others (group read is allowed: a Kubernetes Secret mounted with fsGroup is 0440).
func PublicKey(file string) (string, error) {
	if err := checkPrivate("nats seed", file); err != nil {
		return "", err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("nats seed: %w", err)
	}
	defer clear(b)
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return "", fmt.Errorf("nats seed %s: not a user seed: %w", file, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("nats seed %s: %w", file, err)
	}
	return pub, nil
}

// checkPrivate fails unless file exists and others may not read it nor its group write it.
func checkPrivate(what, file string) error {
	info, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if perm := info.Mode().Perm(); perm&0o027 != 0 {
		return fmt.Errorf("%s %s is open to others (mode %04o); run chmod 600 %s", what, file, perm, file)
	}
	return nil
}

func roleList() string {
	var names []string
	for _, r := range Roles() {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}
