package command

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"
)

// DefaultURL is the gateway address when neither --url nor BRAIN_URL says otherwise.
const DefaultURL = "ws://127.0.0.1:8080/ws"

// errHelp ends a command after it printed its usage for --help.
var errHelp = errors.New("help printed")

// connFlags are the flags of every command that talks to a gateway.
type connFlags struct {
	url   string
	token string
	user  string
	json  bool
}

func (c *connFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.url, "url", envOr(getenv, "BRAIN_URL", DefaultURL), "gateway WebSocket address (env BRAIN_URL)")
	fs.StringVar(&c.token, "token", getenv("BRAIN_TOKEN"), "JWT sent as Authorization: Bearer (env BRAIN_TOKEN); none for a gateway with AUTH_MODE=none")
	fs.StringVar(&c.user, "user", getenv("BRAIN_USER"), "user ID (env BRAIN_USER); a gateway with a token takes it from the token's sub")
	fs.BoolVar(&c.json, "json", false, "print the gateway's messages as they arrive, one JSON document per line")
}

func (c *connFlags) check(cmd string) error {
	u, err := url.Parse(c.url)
	if err != nil || u.Host == "" {
		return usageError(cmd, "--url %q is not a ws:// or wss:// address such as %s", c.url, DefaultURL)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return usageError(cmd, "--url %q: use a ws:// or wss:// address such as %s", c.url, DefaultURL)
	}
	return nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// newFlagSet returns a flag set whose usage text starts with synopsis and about.
func newFlagSet(cmd, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("brainctl "+cmd, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: brainctl %s %s\n\n%s\n\nFlags:\n", cmd, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args. --help prints the usage on stdout and returns errHelp; a bad flag or a
// stray argument is a usage error.
func parse(fs *flag.FlagSet, cmd string, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return errHelp
	}
	if err != nil {
		return usageError(cmd, "%v", err)
	}
	if fs.NArg() > 0 {
		return usageError(cmd, "unexpected argument %q (every value is given with a flag)", fs.Arg(0))
	}
	return nil
}

// required checks that each named flag has a value.
func required(cmd string, flags ...[2]string) error {
	for _, f := range flags {
		if f[1] == "" {
			return usageError(cmd, "--%s is required", f[0])
		}
	}
	return nil
}

func positive(cmd, name string, d time.Duration) error {
	if d <= 0 {
		return usageError(cmd, "--%s must be positive, such as 15m", name)
	}
	return nil
}
