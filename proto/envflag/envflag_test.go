package envflag

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true}, {"512KiB", 512 << 10, true}, {"1 MiB", 1 << 20, true}, {"2GiB", 2 << 30, true},
		{"10MB", 10e6, true}, {"7B", 7, true}, {"", 0, false}, {"-1", 0, false}, {"1.5MiB", 0, false},
		{"9999999999GiB", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseBytes(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseBytes(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestSet(t *testing.T) {
	t.Parallel()
	env := map[string]string{"NATS_URL": "nats://a:4222", "WORKER_CONCURRENCY": "8", "JOB_TIMEOUT": "bad",
		"GIT_ALLOW_HTTP": "true", "GIT_MAX_FETCH_BYTES": "1MiB", "APPLY_ALLOWED_KINDS": " CustomResourceDefinition, ,Namespace"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := New(fs, func(k string) string { return env[k] })
	var (
		url, listen string
		n           int
		timeout     time.Duration
		allowHTTP   bool
		max         int64
		kinds       []string
		rate        float64
	)
	s.String(&url, "NATS_URL", "nats://127.0.0.1:4222", "")
	s.String(&listen, "LISTEN_ADDR", ":8080", "")
	s.Int(&n, "WORKER_CONCURRENCY", 4, "")
	s.Duration(&timeout, "JOB_TIMEOUT", time.Minute, "")
	s.Bool(&allowHTTP, "GIT_ALLOW_HTTP", false, "")
	s.Bytes(&max, "GIT_MAX_FETCH_BYTES", 0, "")
	s.List(&kinds, "APPLY_ALLOWED_KINDS", "")
	s.Float64(&rate, "RATE", 1.5, "")
	if err := fs.Parse([]string{"-worker-concurrency", "2", "-listen-addr", ":9090"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), `JOB_TIMEOUT="bad"`) {
		t.Errorf("Err() = %v, want the unparsable JOB_TIMEOUT named", err)
	}
	got := []any{url, listen, n, timeout, allowHTTP, max, kinds, rate}
	want := []any{"nats://a:4222", ":9090", 2, time.Minute, true, int64(1 << 20), []string{"CustomResourceDefinition", "Namespace"}, 1.5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}
