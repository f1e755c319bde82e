// Package natsserver runs Brain's NATS JetStream server inside a process: the gateway's embedded
// server (NATS_EMBEDDED=true, what `make run` uses) and the tests' server are this one
// configuration. It requires authentication: only the nkey users it is given connect, each with
// its role's permissions from natsauth.
package natsserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/backendim/brain/proto/natsauth"
	"github.com/nats-io/nats-server/v2/server"
)

// MaxPayload is the largest message the server accepts; Brain's jobs and events are far smaller.
const MaxPayload = 1 << 20

// Config describes a server.
type Config struct {
	Name     string         // server name
	Listen   string         // host:port; port 0 picks a free one
	StoreDir string         // JetStream storage
	Keys     []natsauth.Key // the users; at least one
	Logger   server.Logger  // nil: no logging
	Trace    bool           // with Logger: log every protocol message (debugging)
}

// Options returns the server options of c.
func Options(c Config) (*server.Options, error) {
	host, portStr, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen %q: %w", c.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("nats listen %q: bad port", c.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if len(c.Keys) == 0 {
		return nil, errors.New("nats server: no users: it would admit anyone")
	}
	return &server.Options{ServerName: c.Name, Host: host, Port: port, JetStream: true, StoreDir: c.StoreDir,
		NoSigs: true, NoLog: c.Logger == nil, Trace: c.Trace, MaxPayload: MaxPayload, Nkeys: Users(c.Keys)}, nil
}

// Users returns the nkey users of keys, each with its role's permissions.
func Users(keys []natsauth.Key) []*server.NkeyUser {
	users := make([]*server.NkeyUser, 0, len(keys))
	for _, k := range keys {
		u := &server.NkeyUser{Nkey: k.Public}
		if p, limited := natsauth.For(k.Role); limited {
			u.Permissions = &server.Permissions{Publish: &server.SubjectPermission{Allow: p.Publish},
				Subscribe: &server.SubjectPermission{Allow: p.Subscribe}}
		}
		users = append(users, u)
	}
	return users
}

// Start starts the server of c and waits until it accepts connections. Shutdown stops it.
func Start(c Config) (*server.Server, error) {
	opts, err := Options(c)
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	if c.Logger != nil {
		ns.SetLoggerV2(c.Logger, false, c.Trace, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats server on %s: not ready after 15s (is the port in use?)", c.Listen)
	}
	return ns, nil
}

// SeedDir is where an embedded server keeps the seed files of its users (natsauth.SeedFile:
// gateway.nk, worker.nk, admin.nk), inside its store directory.
func SeedDir(storeDir string) string { return filepath.Join(storeDir, "nkeys") }

// StartEmbedded starts the server that runs inside a Brain process (NATS_EMBEDDED=true) or a test:
// storage in storeDir, and as users the seed files in SeedDir(storeDir), of which it creates the
// missing ones (mode 0600) on first start and reuses them afterwards.
func StartEmbedded(name, listen, storeDir string, log server.Logger) (*server.Server, error) {
	keys, err := natsauth.EnsureSeeds(SeedDir(storeDir))
	if err != nil {
		return nil, err
	}
	return Start(Config{Name: name, Listen: listen, StoreDir: storeDir, Keys: keys, Logger: log})
}

// SlogLogger is a server.Logger writing to log: warnings and errors (a client refused a subject,
// say) as such, the server's notices and debug lines at debug level.
func SlogLogger(log *slog.Logger) server.Logger { return slogLogger{log} }

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Noticef(f string, v ...any) { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l slogLogger) Warnf(f string, v ...any)   { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l slogLogger) Fatalf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l slogLogger) Errorf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l slogLogger) Debugf(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l slogLogger) Tracef(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
