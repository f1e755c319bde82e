package config

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// envFlags registers flags whose defaults come from environment variables and collects the errors
// of unparsable variables, so all of them are reported at once.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

func (e *envFlags) usage(env, help string) string { return help + " (env " + env + ")" }

func (e *envFlags) str(p *string, name, env, def, help string) {
	if v := e.getenv(env); v != "" {
		def = v
	}
	e.fs.StringVar(p, name, def, e.usage(env, help))
}

func (e *envFlags) list(p *[]string, name, env, help string) {
	e.fs.Func(name, e.usage(env, help), func(s string) error { *p = splitList(s); return nil })
	*p = splitList(e.getenv(env))
}

func parseEnv[T any](e *envFlags, env string, def T, parse func(string) (T, error)) T {
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

func (e *envFlags) boolean(p *bool, name, env string, def bool, help string) {
	e.fs.BoolVar(p, name, parseEnv(e, env, def, strconv.ParseBool), e.usage(env, help))
}

func (e *envFlags) integer(p *int, name, env string, def int, help string) {
	e.fs.IntVar(p, name, parseEnv(e, env, def, strconv.Atoi), e.usage(env, help))
}

func (e *envFlags) int64(p *int64, name, env string, def int64, help string) {
	parse := func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
	e.fs.Int64Var(p, name, parseEnv(e, env, def, parse), e.usage(env, help))
}

func (e *envFlags) float(p *float64, name, env string, def float64, help string) {
	parse := func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
	e.fs.Float64Var(p, name, parseEnv(e, env, def, parse), e.usage(env, help))
}

func (e *envFlags) duration(p *time.Duration, name, env string, def time.Duration, help string) {
	e.fs.DurationVar(p, name, parseEnv(e, env, def, time.ParseDuration), e.usage(env, help))
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
