// Package natstest runs a real nats-server with JetStream inside the test process, on 127.0.0.1 with
// a random port and its store in t.TempDir(). It is the gateway's embedded server
// (natsserver.StartEmbedded): it requires authentication, and each role connects with its own
// nkey seed and permissions (proto/natsauth). A permission violation fails the test unless the
// test expects some.
package natstest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backendim/brain/proto/natsauth"
	"github.com/backendim/brain/proto/natsserver"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is a running embedded JetStream server.
type Server struct {
	*server.Server
	seeds string // directory of the roles' seed files
	log   *violationLog
}

// Start starts a JetStream server that is shut down when the test ends. The test fails if the
// server refused a subject to a client (a role lacking a permission it needs), unless the test
// called ExpectViolations.
func Start(t testing.TB) *Server {
	t.Helper()
	store := t.TempDir()
	log := &violationLog{}
	ns, err := natsserver.StartEmbedded("natstest", "127.0.0.1:0", store, log)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	s := &Server{Server: ns, seeds: natsserver.SeedDir(store), log: log}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
		if v := log.list(); len(v) > 0 && !log.expected() {
			t.Errorf("natstest: NATS refused subjects to a client (a role lacks a permission in proto/natsauth?):\n%s",
				strings.Join(v, "\n"))
		}
	})
	return s
}

// Connect returns an admin connection (every subject) and a JetStream context, closed when the
// test ends.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return s.ConnectAs(t, natsauth.Admin)
}

// ConnectAs returns a connection with role's identity, as Brain's processes connect, and a
// JetStream context, closed when the test ends. opts are added to the connection's options.
func (s *Server) ConnectAs(t testing.TB, r natsauth.Role, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := natsauth.Connect(r, s.ClientURL(), s.SeedFile(r), "", append([]nats.Option{nats.Name(t.Name() + " as " + string(r))}, opts...)...)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// SeedFile is the nkey seed file of role (mode 0600), for NATS_NKEY_FILE of a process.
func (s *Server) SeedFile(r natsauth.Role) string { return natsauth.SeedFile(s.seeds, r) }

// Env is the environment a gateway or worker process needs to connect as role.
func (s *Server) Env(r natsauth.Role) map[string]string {
	return map[string]string{"NATS_URL": s.ClientURL(), "NATS_NKEY_FILE": s.SeedFile(r)}
}

// ExpectViolations tells the server that the test provokes permission violations (an attack
// test), so that they do not fail it.
func (s *Server) ExpectViolations() { s.log.expect() }

// Violations returns the server's permission violation log lines so far.
func (s *Server) Violations() []string { return s.log.list() }

// violationLog is the server's logger: it keeps the lines that report a permission violation
// and drops everything else.
type violationLog struct {
	mu       sync.Mutex
	lines    []string
	expectOK bool
}

func (l *violationLog) record(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	if !strings.Contains(line, "Violation") {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, time.Now().Format("15:04:05.000 ")+line)
}

func (l *violationLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func (l *violationLog) expect() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expectOK = true
}

func (l *violationLog) expected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expectOK
}

func (l *violationLog) Noticef(string, ...any)    {}
func (l *violationLog) Warnf(f string, v ...any)  { l.record(f, v...) }
func (l *violationLog) Fatalf(f string, v ...any) { l.record(f, v...) }
func (l *violationLog) Errorf(f string, v ...any) { l.record(f, v...) }
func (l *violationLog) Debugf(string, ...any)     {}
func (l *violationLog) Tracef(string, ...any)     {}
