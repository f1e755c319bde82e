// Package healthcheck is the `healthcheck` subcommand of the gateway and the worker: it asks the
// local process's /health, so container health checks need no curl or shell in the image.
package healthcheck

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Run parses `[-listen-addr ADDR]` (default: LISTEN_ADDR, else :8080) and probes
// http://ADDR/health, with 127.0.0.1 for an unspecified host. name is the binary, for usage text.
func Run(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet(name+" healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv("LISTEN_ADDR")
	if def == "" {
		def = ":8080"
	}
	addr := fs.String("listen-addr", def, "the "+name+"'s LISTEN_ADDR (env LISTEN_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := Probe(ctx, *addr); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "healthy")
	return nil
}

// Probe asks http://addr/health and returns nil for 200 OK, within 3 seconds.
func Probe(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: LISTEN_ADDR %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/health"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck %s: %s", url, resp.Status)
	}
	return nil
}
