// Package natsembed runs a NATS server with JetStream inside the gateway process, so that a single
// command starts a working Brain. Workers and the nats CLI connect to it like to any NATS server.
package natsembed

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start starts the server listening on listen ("host:port"; port 0 picks a free one) with JetStream storage in storeDir and
// waits until it accepts connections. Shutdown stops it.
func Start(listen, storeDir string) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats listen %q: bad port", listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{ServerName: "brain-embedded", Host: host, Port: port,
		JetStream: true, StoreDir: storeDir, NoSigs: true, NoLog: true, MaxPayload: 1 << 20})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats on %s: not ready after 15s (is the port in use?)", listen)
	}
	return ns, nil
}
