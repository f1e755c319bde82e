// Package natstest runs a real nats-server with JetStream inside the test process, on 127.0.0.1 with
// a random port and its store in t.TempDir().
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is a running embedded JetStream server.
type Server struct {
	*server.Server
}

// Start starts a JetStream server that is shut down when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := start(t, t.TempDir())
	t.Cleanup(s.Shutdown)
	return s
}

func start(t testing.TB, dir string) *Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: dir, NoLog: true, NoSigs: true, MaxPayload: 1 << 20})
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatalf("natstest: server not ready in 10s")
	}
	return &Server{Server: ns}
}

// Connect returns a connection and a JetStream context, closed when the test ends.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}
