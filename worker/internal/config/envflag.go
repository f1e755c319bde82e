package config

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// envFlags registers flags whose defaults come from environment variables. The flag name is the
// variable's name in lower case with '-' for '_' (NATS_URL → -nats-url). Unparsable variables are
// collected, so all of them are reported at once.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

func flagName(env string) string { return strings.ReplaceAll(strings.ToLower(env), "_", "-") }

func usage(env, help string) string { return help + " (env " + env + ")" }

// envDefault returns the parsed value of env, or def when env is unset or does not parse.
func envDefault[T any](e *envFlags, env string, def T, parse func(string) (T, error)) T {
	v := e.getenv(env)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: %w", env, v, err))
		return def
	}
	return x
}

func (e *envFlags) str(p *string, env, def, help string) {
	if v := e.getenv(env); v != "" {
		def = v
	}
	e.fs.StringVar(p, flagName(env), def, usage(env, help))
}

func (e *envFlags) boolean(p *bool, env string, def bool, help string) {
	e.fs.BoolVar(p, flagName(env), envDefault(e, env, def, strconv.ParseBool), usage(env, help))
}

func (e *envFlags) integer(p *int, env string, def int, help string) {
	e.fs.IntVar(p, flagName(env), envDefault(e, env, def, strconv.Atoi), usage(env, help))
}

func (e *envFlags) int64(p *int64, env string, def int64, help string) {
	parse := func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
	e.fs.Int64Var(p, flagName(env), envDefault(e, env, def, parse), usage(env, help))
}

func (e *envFlags) duration(p *time.Duration, env string, def time.Duration, help string) {
	e.fs.DurationVar(p, flagName(env), envDefault(e, env, def, time.ParseDuration), usage(env, help))
}

func (e *envFlags) bytes(p *int64, env string, def int64, help string) {
	*p = envDefault(e, env, def, ParseBytes)
	e.fs.Func(flagName(env), usage(env, help+" (bytes: 1048576, 512KiB, 1MiB, 2GiB)"), func(s string) error {
		n, err := ParseBytes(s)
		if err == nil {
			*p = n
		}
		return err
	})
}

func (e *envFlags) list(p *[]string, env, help string) {
	*p = splitList(e.getenv(env))
	e.fs.Func(flagName(env), usage(env, help+", comma-separated"), func(s string) error {
		*p = splitList(s)
		return nil
	})
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ParseBytes parses a byte size: a plain number of bytes, or a number with one of the suffixes
// B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a byte size; use a number of bytes or a number with KiB, MiB or GiB")
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("byte size too large")
	}
	return n * mult, nil
}
