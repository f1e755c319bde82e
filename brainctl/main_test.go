package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain lets the test binary run as brainctl itself, so the tests below check the exit codes
// and stderr of a real process.
func TestMain(m *testing.M) {
	if os.Getenv("BRAINCTL_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestProcessExitCodes(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"help", []string{"--help"}, 0, ""},
		{"usage error", []string{"deploy", "--chat", "c1"}, 2, "brainctl: deploy: --repo is required"},
		{"no gateway", []string{"status", "--url", "ws://127.0.0.1:1/ws", "--chat", "c1"}, 3, "brainctl: connect to ws://127.0.0.1:1/ws"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(self, tt.args...)
			cmd.Env = []string{"BRAINCTL_TEST_MAIN=1"}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and stderr containing %q", code, stderr.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}
