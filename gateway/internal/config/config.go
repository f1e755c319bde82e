// Package config gathers the gateway's settings from flags whose defaults come from environment
// variables (every variable is listed in the README and .env.example).
package config

import (
	"errors"
	"flag"
	"fmt"
	"github.com/backendim/brain/proto/envflag"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/backendim/brain/proto/layout"
)

// Config is the gateway's configuration.
type Config struct {
	ListenAddr string

	NATSURL            string
	NATSCredsFile      string
	NATSNkeyFile       string
	NATSEmbedded       bool
	NATSEmbeddedListen string
	NATSStoreDir       string
	Layout             layout.Config

	AuthMode          string // "jwt" or "none"
	JWTSecret         string
	JWTSecretFile     string
	JWTPublicKeyFile  string
	JWTIssuer         string
	JWTAudience       string
	AllowedOrigins    []string
	PingInterval      time.Duration
	WriteTimeout      time.Duration
	SendQueue         int
	MaxChats          int
	JobsPerMinute     float64
	JobsBurst         int
	MessagesPerSecond float64
	ShutdownTimeout   time.Duration

	LogFormat string
	LogLevel  string
}

// Load parses args with defaults from getenv. Errors name the flag and its variable.
func Load(args []string, getenv func(string) string, output io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(output)
	e := envflag.New(fs, getenv)
	e.String(&c.ListenAddr, "LISTEN_ADDR", ":8080", "address serving /ws, /health, /ready and /metrics")
	e.String(&c.NATSURL, "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	e.String(&c.NATSCredsFile, "NATS_CREDS_FILE", "", "NATS credentials (.creds) file")
	e.String(&c.NATSNkeyFile, "NATS_NKEY_FILE", "", "NATS nkey seed file of the gateway's user (gateway nats-keys)")
	e.Bool(&c.NATSEmbedded, "NATS_EMBEDDED", false, "run an in-process NATS JetStream server")
	e.String(&c.NATSEmbeddedListen, "NATS_EMBEDDED_LISTEN", "127.0.0.1:4222", "where the embedded NATS server listens")
	e.String(&c.NATSStoreDir, "NATS_STORE_DIR", "./data/nats", "embedded NATS server's JetStream storage")
	layout.Flags(e, &c.Layout, false)
	e.String(&c.AuthMode, "AUTH_MODE", "jwt", "client authentication: jwt, or none (development only)")
	e.String(&c.JWTSecret, "AUTH_JWT_SECRET", "", "HS256 shared secret")
	e.String(&c.JWTSecretFile, "AUTH_JWT_SECRET_FILE", "", "file holding HS256 shared secrets, one per line (several during a rotation)")
	e.String(&c.JWTPublicKeyFile, "AUTH_JWT_PUBLIC_KEY_FILE", "", "PEM file with one or more public keys (RSA for RS256, Ed25519 for EdDSA)")
	e.String(&c.JWTIssuer, "AUTH_JWT_ISSUER", "", "required iss claim, if set")
	e.String(&c.JWTAudience, "AUTH_JWT_AUDIENCE", "", "required aud claim, if set")
	e.List(&c.AllowedOrigins, "WS_ALLOWED_ORIGINS", "browser Origin host patterns allowed besides the gateway's own host, comma-separated")
	e.Duration(&c.PingInterval, "WS_PING_INTERVAL", 30*time.Second, "WebSocket ping interval")
	e.Duration(&c.WriteTimeout, "WS_WRITE_TIMEOUT", 10*time.Second, "a write to a client taking longer closes it (4008)")
	e.Int(&c.SendQueue, "WS_SEND_QUEUE", 256, "messages buffered per socket before a slow client is closed (4008)")
	e.Int(&c.MaxChats, "WS_MAX_CHATS", 32, "chats one socket may follow")
	e.Float64(&c.JobsPerMinute, "RATE_JOBS_PER_MINUTE", 30, "jobs per user per minute, per gateway replica")
	e.Int(&c.JobsBurst, "RATE_JOBS_BURST", 10, "jobs a user may submit at once before the rate applies")
	e.Float64(&c.MessagesPerSecond, "WS_MAX_MESSAGES_PER_SECOND", 50, "client messages per second per socket before it is closed (4029)")
	e.Duration(&c.ShutdownTimeout, "SHUTDOWN_TIMEOUT", 15*time.Second, "time to drain on SIGTERM")
	e.String(&c.LogFormat, "LOG_FORMAT", "", "json or text (default: text on a terminal, json otherwise)")
	e.String(&c.LogLevel, "LOG_LEVEL", "info", "debug, info, warn or error")
	if err := e.Parse(args); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// Validate checks the settings together.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		errs = append(errs, fmt.Errorf("LISTEN_ADDR %q: %w", c.ListenAddr, err))
	}
	if c.NATSEmbedded {
		if _, _, err := net.SplitHostPort(c.NATSEmbeddedListen); err != nil {
			errs = append(errs, fmt.Errorf("NATS_EMBEDDED_LISTEN %q: %w", c.NATSEmbeddedListen, err))
		}
		if c.NATSStoreDir == "" {
			errs = append(errs, errors.New("NATS_STORE_DIR must be set when NATS_EMBEDDED=true"))
		}
		if c.NATSNkeyFile != "" || c.NATSCredsFile != "" {
			errs = append(errs, errors.New("NATS_EMBEDDED=true connects with the seeds it keeps in NATS_STORE_DIR/nkeys: unset NATS_NKEY_FILE and NATS_CREDS_FILE"))
		}
	}
	switch c.AuthMode {
	case "none":
	case "jwt":
		n := count(c.JWTSecret != "", c.JWTSecretFile != "", c.JWTPublicKeyFile != "")
		if n != 1 {
			errs = append(errs, errors.New("AUTH_MODE=jwt needs exactly one of AUTH_JWT_SECRET, AUTH_JWT_SECRET_FILE, AUTH_JWT_PUBLIC_KEY_FILE (or AUTH_MODE=none for development)"))
		}
	default:
		errs = append(errs, fmt.Errorf("AUTH_MODE %q: use jwt or none", c.AuthMode))
	}
	if err := c.Layout.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range []struct {
		name string
		ok   bool
	}{{"WS_PING_INTERVAL must be at least 1s", c.PingInterval >= time.Second},
		{"WS_WRITE_TIMEOUT must be at least 100ms", c.WriteTimeout >= 100*time.Millisecond},
		{"WS_SEND_QUEUE must be 8 to 100000", c.SendQueue >= 8 && c.SendQueue <= 100000},
		{"WS_MAX_CHATS must be 1 to 1000", c.MaxChats >= 1 && c.MaxChats <= 1000},
		{"RATE_JOBS_PER_MINUTE must be positive", c.JobsPerMinute > 0},
		{"RATE_JOBS_BURST must be at least 1", c.JobsBurst >= 1},
		{"WS_MAX_MESSAGES_PER_SECOND must be positive", c.MessagesPerSecond > 0},
		{"SHUTDOWN_TIMEOUT must be at least 1s", c.ShutdownTimeout >= time.Second},
		{"LOG_FORMAT must be json, text or empty", c.LogFormat == "" || c.LogFormat == "json" || c.LogFormat == "text"},
		{"LOG_LEVEL must be debug, info, warn or error", strings.Contains(" debug info warn error ", " "+c.LogLevel+" ")},
	} {
		if !p.ok {
			errs = append(errs, errors.New(p.name))
		}
	}
	return errors.Join(errs...)
}

// Secrets returns the HS256 secrets: AUTH_JWT_SECRET, or every non-empty line of
// AUTH_JWT_SECRET_FILE (several lines let a secret be rotated without a cut-over).
func (c Config) Secrets() ([][]byte, error) {
	if c.JWTSecretFile == "" {
		if c.JWTSecret == "" {
			return nil, nil
		}
		return [][]byte{[]byte(c.JWTSecret)}, nil
	}
	b, err := os.ReadFile(c.JWTSecretFile)
	if err != nil {
		return nil, fmt.Errorf("read AUTH_JWT_SECRET_FILE: %w", err)
	}
	var out [][]byte
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, []byte(line))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("AUTH_JWT_SECRET_FILE %s is empty", c.JWTSecretFile)
	}
	return out, nil
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
