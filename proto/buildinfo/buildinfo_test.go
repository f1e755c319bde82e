package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct{ version, want string }{
		{"", "worker dev ("},
		{"v1.2.3-4-gabcdef0", "worker v1.2.3-4-gabcdef0 ("},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			old := version
			version = tt.version
			defer func() { version = old }()
			got := String("worker")
			if !strings.HasPrefix(got, tt.want) || !strings.Contains(got, runtime.Version()) {
				t.Errorf("String() = %q, want %q… naming %s", got, tt.want, runtime.Version())
			}
		})
	}
}

func TestRequested(t *testing.T) {
	t.Parallel()
	for args, want := range map[string]bool{"-version": true, "--version": true, "version": false, "": false, "-help": false} {
		if got := Requested(strings.Fields(args)); got != want {
			t.Errorf("Requested(%q) = %v, want %v", args, got, want)
		}
	}
}
