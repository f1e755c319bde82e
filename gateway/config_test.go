package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/backendim/brain/gateway/internal/config"
)

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	base := map[string]string{"AUTH_JWT_SECRET": testSecret}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // "" = valid
	}{
		{"defaults with a secret", nil, nil, ""},
		{"no key", map[string]string{"AUTH_JWT_SECRET": ""}, nil, "exactly one of AUTH_JWT_SECRET"},
		{"two keys", map[string]string{"AUTH_JWT_PUBLIC_KEY_FILE": "/k.pem"}, nil, "exactly one of"},
		{"auth none", map[string]string{"AUTH_MODE": "none", "AUTH_JWT_SECRET": ""}, nil, ""},
		{"bad auth mode", map[string]string{"AUTH_MODE": "basic"}, nil, `AUTH_MODE "basic"`},
		{"bad duration", map[string]string{"EVENTS_MAX_AGE": "forever"}, nil, `EVENTS_MAX_AGE="forever"`},
		{"bad bool", map[string]string{"NATS_EMBEDDED": "yes please"}, nil, "NATS_EMBEDDED"},
		{"bad listen", map[string]string{"LISTEN_ADDR": "8080"}, nil, "LISTEN_ADDR"},
		{"tiny queue", map[string]string{"WS_SEND_QUEUE": "1"}, nil, "WS_SEND_QUEUE"},
		{"replicas", map[string]string{"NATS_REPLICAS": "7"}, nil, "replicas 7"},
		{"flag beats env", map[string]string{"WS_MAX_CHATS": "5"}, []string{"-ws-max-chats", "0"}, "WS_MAX_CHATS"},
		{"stray argument", nil, []string{"serve"}, "unexpected arguments"},
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, nil, "LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := config.Load(tt.args, func(k string) string { return env[k] }, io.Discard)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestHealthcheckSubcommand(t *testing.T) {
	g := startGateway(t, nil, nil)
	if err := run(context.Background(), []string{"healthcheck", "-listen-addr", g.addr}, func(string) string { return "" }, io.Discard); err != nil {
		t.Fatalf("healthy gateway: %v", err)
	}
	if err := run(context.Background(), []string{"healthcheck", "-listen-addr", freeAddr(t)}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("healthcheck of a closed port succeeded")
	}
}
