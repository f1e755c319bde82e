package urlpolicy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
)

func TestDialContext(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name    string
		policy  Policy
		url     string
		refused string // what the refusal mentions; "" when the request must succeed
	}{
		{"loopback address refused", Policy{}, srv.URL, "loopback"},
		// A name that resolves to loopback: the check runs on the dialled address, after DNS.
		{"name resolving to loopback refused", Policy{}, "http://localhost:" + strconv.Itoa(port), "localhost resolves to 127.0.0.1"},
		{"loopback allowed", Policy{AllowPrivateNetworks: true}, srv.URL, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dialer := &net.Dialer{Timeout: 5 * time.Second}
			client := &http.Client{Transport: &http.Transport{DialContext: tt.policy.DialContext(dialer)}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("GET %s: %v", tt.url, err)
				}
				resp.Body.Close()
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET %s succeeded, want a refusal", tt.url)
			}
			var pe *proto.Error
			if !errors.As(err, &pe) || pe.Code != proto.CodeURLRefused {
				t.Fatalf("GET %s error = %v, want a *proto.Error with code %s", tt.url, err, proto.CodeURLRefused)
			}
			for _, m := range []string{tt.refused, EnvAllowPrivateNetworks + "=true"} {
				if !strings.Contains(pe.Message, m) {
					t.Errorf("refusal %q does not mention %q", pe.Message, m)
				}
			}
		})
	}
}

func TestDialContextLeavesDialerAlone(t *testing.T) {
	t.Parallel()
	d := &net.Dialer{Timeout: time.Second}
	_ = Policy{}.DialContext(d)
	if d.ControlContext != nil || d.Control != nil {
		t.Fatal("DialContext modified the dialer it was given")
	}
}

func TestCheckDialed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		requested, dialled string
		wantErr            bool
	}{
		{"example.com:443", "93.184.216.34:443", false},
		{"example.com:443", "[2606:2800:220:1:248:1893:25c8:1946]:443", false},
		{"example.com:443", "10.0.0.5:443", true},
		{"example.com:443", "[::ffff:10.0.0.5]:443", true},
		{"example.com:443", "[fe80::1%eth0]:443", true},
		{"example.com:443", "not-an-address", true},
	}
	for _, tt := range tests {
		err := checkDialed(tt.requested, tt.dialled)
		if (err != nil) != tt.wantErr {
			t.Errorf("checkDialed(%q, %q) = %v, want error %v", tt.requested, tt.dialled, err, tt.wantErr)
		}
	}
}
