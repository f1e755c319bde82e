// Package envflag registers command-line flags whose defaults come from environment variables, as
// the gateway and the worker take all their settings: the flag of NATS_URL is -nats-url, and a flag
// given on the command line wins over the variable. Variables that do not parse are collected, so
// one run reports all of them.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Set registers flags on a FlagSet with defaults from getenv.
type Set struct {
	FlagSet *flag.FlagSet
	getenv  func(string) string
	errs    []error
}

// New returns a Set registering on fs.
func New(fs *flag.FlagSet, getenv func(string) string) *Set { return &Set{FlagSet: fs, getenv: getenv} }

// Parse parses args (flags only: a stray argument is an error) and returns every error of the
// command line and the environment.
func (s *Set) Parse(args []string) error {
	if err := s.FlagSet.Parse(args); err != nil {
		return err
	}
	if s.FlagSet.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", s.FlagSet.Args())
	}
	return s.Err()
}

// Err returns the errors of every variable that did not parse.
func (s *Set) Err() error { return errors.Join(s.errs...) }

// Name is the flag name of an environment variable: lower case, '-' for '_'.
func Name(env string) string { return strings.ReplaceAll(strings.ToLower(env), "_", "-") }

// Usage is a flag's help text: help, and the variable it defaults from.
func Usage(env, help string) string { return help + " (env " + env + ")" }

// Getenv returns the raw value of an environment variable, for settings with their own rules.
func (s *Set) Getenv(env string) string { return s.getenv(env) }

// Default returns env parsed with parse, or def when env is unset; a value that does not parse is
// recorded as an error (see Err) and def is returned.
func Default[T any](s *Set, env string, def T, parse func(string) (T, error)) T {
	v := s.getenv(env)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("%s=%q: %w", env, v, err))
		return def
	}
	return x
}

// Func registers a flag of any type parsed by parse, defaulting to env or def.
func Func[T any](s *Set, p *T, env string, def T, parse func(string) (T, error), help string) {
	*p = Default(s, env, def, parse)
	s.FlagSet.Func(Name(env), Usage(env, help), func(v string) error {
		x, err := parse(v)
		if err == nil {
			*p = x
		}
		return err
	})
}

// String registers a string flag.
func (s *Set) String(p *string, env, def, help string) {
	if v := s.getenv(env); v != "" {
		def = v
	}
	s.FlagSet.StringVar(p, Name(env), def, Usage(env, help))
}

// Bool registers a boolean flag.
func (s *Set) Bool(p *bool, env string, def bool, help string) {
	s.FlagSet.BoolVar(p, Name(env), Default(s, env, def, strconv.ParseBool), Usage(env, help))
}

// Int registers an int flag.
func (s *Set) Int(p *int, env string, def int, help string) {
	s.FlagSet.IntVar(p, Name(env), Default(s, env, def, strconv.Atoi), Usage(env, help))
}

// Int64 registers an int64 flag.
func (s *Set) Int64(p *int64, env string, def int64, help string) {
	parse := func(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) }
	s.FlagSet.Int64Var(p, Name(env), Default(s, env, def, parse), Usage(env, help))
}

// Float64 registers a float64 flag.
func (s *Set) Float64(p *float64, env string, def float64, help string) {
	parse := func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }
	s.FlagSet.Float64Var(p, Name(env), Default(s, env, def, parse), Usage(env, help))
}

// Duration registers a duration flag (time.ParseDuration syntax).
func (s *Set) Duration(p *time.Duration, env string, def time.Duration, help string) {
	s.FlagSet.DurationVar(p, Name(env), Default(s, env, def, time.ParseDuration), Usage(env, help))
}

// Bytes registers a byte-size flag (see ParseBytes).
func (s *Set) Bytes(p *int64, env string, def int64, help string) {
	Func(s, p, env, def, ParseBytes, help+" (bytes: 1048576, 512KiB, 1MiB, 2GiB)")
}

// List registers a comma-separated list flag; empty items are dropped.
func (s *Set) List(p *[]string, env, help string) {
	Func(s, p, env, nil, func(v string) ([]string, error) { return SplitList(v), nil }, help+", comma-separated")
}

// SplitList splits a comma-separated list, trimming spaces and dropping empty items.
func SplitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ParseBytes parses a byte size: a plain number of bytes, or a number with one of the suffixes
// B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000).
func ParseBytes(v string) (int64, error) {
	v = strings.TrimSpace(v)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a byte size; use a number of bytes or a number with KiB, MiB or GiB")
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("byte size too large")
	}
	return n * mult, nil
}
