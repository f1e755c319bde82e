package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/worker/internal/cluster"
	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(nil, env(map[string]string{"KUBE_AUTH": "none", "WORKER_ID": "w1"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.ListenAddr, c.NATSURL, c.Concurrency, c.JobTimeout, c.ShutdownTimeout, c.Layout.AckWait,
		c.Layout.LockTTL, c.Layout.MaxDeliver, c.CacheDir, c.GitMaxFetchBytes, c.RenderLimits.MaxFileBytes,
		c.RenderLimits.MaxTotalBytes, c.GitAllowHTTP, c.Cluster.Mode, c.Cluster.Timeout, c.HealthTimeout}
	want := []any{":8080", "nats://127.0.0.1:4222", 4, 10 * time.Minute, 30 * time.Second, 30 * time.Second,
		30 * time.Second, 5, "./data/cache", int64(512 << 20), int64(1 << 20), int64(10 << 20), false,
		cluster.ModeNone, 30 * time.Second, 5 * time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestLoadFlagsOverrideEnv(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"KUBE_AUTH": "eks", "KUBE_CLUSTER_NAME": "prod", "AWS_DEFAULT_REGION": "eu-west-1",
		"WORKER_CONCURRENCY": "2", "GIT_ALLOWED_HOSTS": "github.com, *.example.com", "GIT_MAX_FETCH_BYTES": "64MiB",
		"APPLY_ALLOWED_KINDS": "ClusterRole, rbac.authorization.k8s.io/ClusterRoleBinding", "WORKER_ID": "w1"}
	c, err := Load([]string{"-worker-concurrency", "8", "-kube-auth", "none", "-render-max-file-bytes", "2KiB"}, env(vars), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.Concurrency, c.Cluster.Mode, c.Cluster.ClusterName, c.Cluster.Region, c.GitAllowedHosts,
		c.GitMaxFetchBytes, c.RenderLimits.MaxFileBytes, c.ApplyAllowedKinds}
	want := []any{8, cluster.ModeNone, "prod", "eu-west-1", []string{"github.com", "*.example.com"},
		int64(64 << 20), int64(2 << 10), []string{"ClusterRole", "rbac.authorization.k8s.io/ClusterRoleBinding"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestLoadRefusesBadSettings(t *testing.T) {
	t.Parallel()
	base := map[string]string{"KUBE_AUTH": "none", "WORKER_ID": "w1"}
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want []string // substrings of the error
	}{
		{"unparsable duration", map[string]string{"JOB_TIMEOUT": "ten minutes"}, nil, []string{`JOB_TIMEOUT="ten minutes"`}},
		{"unparsable bool", map[string]string{"GIT_ALLOW_HTTP": "yes please"}, nil, []string{"GIT_ALLOW_HTTP"}},
		{"unparsable size", map[string]string{"GIT_MAX_FETCH_BYTES": "lots"}, nil, []string{"GIT_MAX_FETCH_BYTES", "KiB"}},
		{"bad host pattern", map[string]string{"GIT_ALLOWED_HOSTS": "https://github.com/"}, nil, []string{"GIT_ALLOWED_HOSTS"}},
		{"zero concurrency", map[string]string{"WORKER_CONCURRENCY": "0"}, nil, []string{"WORKER_CONCURRENCY must be 1 to 256"}},
		{"short job timeout", map[string]string{"JOB_TIMEOUT": "10ms"}, nil, []string{"JOB_TIMEOUT"}},
		{"bad listen address", map[string]string{"LISTEN_ADDR": "8080"}, nil, []string{"LISTEN_ADDR"}},
		{"unknown kube auth", map[string]string{"KUBE_AUTH": "magic"}, nil, []string{"KUBE_AUTH", "magic"}},
		{"eks without cluster", map[string]string{"KUBE_AUTH": "eks", "AWS_REGION": "us-east-1"}, nil, []string{"KUBE_CLUSTER_NAME"}},
		{"missing kubeconfig", map[string]string{"KUBE_AUTH": "kubeconfig", "KUBECONFIG": "/nonexistent/kubeconfig"}, nil, []string{"KUBECONFIG", "/nonexistent/kubeconfig"}},
		{"layout", map[string]string{"ACK_WAIT": "10ms", "MAX_DELIVER": "0"}, nil, []string{"ack wait", "max deliver"}},
		{"worker id with space", map[string]string{"WORKER_ID": "my worker"}, nil, []string{"WORKER_ID"}},
		{"render totals below one file", map[string]string{"RENDER_MAX_TOTAL_BYTES": "1KiB"}, nil, []string{"RENDER_MAX_TOTAL_BYTES"}},
		{"log format", map[string]string{"LOG_FORMAT": "xml"}, nil, []string{"LOG_FORMAT"}},
		{"several at once", map[string]string{"LOG_LEVEL": "loud", "WORKER_CONCURRENCY": "1000"}, nil, []string{"LOG_LEVEL", "WORKER_CONCURRENCY"}},
		{"unknown flag", nil, []string{"-no-such-flag"}, []string{"no-such-flag"}},
		{"stray argument", nil, []string{"serve"}, []string{"unexpected arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range tt.vars {
				vars[k] = v
			}
			_, err := Load(tt.args, env(vars), io.Discard)
			if err == nil {
				t.Fatalf("Load succeeded, want an error mentioning %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSSHSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("x\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key, openKey, hosts := file("id", 0o600), file("id_open", 0o644), file("known_hosts", 0o644)
	tests := []struct {
		name     string
		vars     map[string]string
		wantErr  string // substring; "" for success
		allowSSH bool
	}{
		{"none", nil, "", false},
		{"key and known_hosts", map[string]string{"GIT_SSH_KEY_FILE": key, "GIT_SSH_KNOWN_HOSTS": hosts}, "", true},
		{"key without known_hosts", map[string]string{"GIT_SSH_KEY_FILE": key}, "GIT_SSH_KNOWN_HOSTS must be set", false},
		{"known_hosts without key", map[string]string{"GIT_SSH_KNOWN_HOSTS": hosts}, "GIT_SSH_KEY_FILE is not", false},
		{"key readable by others", map[string]string{"GIT_SSH_KEY_FILE": openKey, "GIT_SSH_KNOWN_HOSTS": hosts}, "chmod 600", false},
		{"missing key", map[string]string{"GIT_SSH_KEY_FILE": filepath.Join(dir, "nope"), "GIT_SSH_KNOWN_HOSTS": hosts}, "GIT_SSH_KEY_FILE", false},
		{"missing known_hosts", map[string]string{"GIT_SSH_KEY_FILE": key, "GIT_SSH_KNOWN_HOSTS": filepath.Join(dir, "nope")}, "GIT_SSH_KNOWN_HOSTS", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"KUBE_AUTH": "none", "WORKER_ID": "w1"}
			for k, v := range tt.vars {
				vars[k] = v
			}
			c, err := Load(nil, env(vars), io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Load error = %v, want one mentioning %q", err, tt.wantErr)
			case err == nil && c.Policy().AllowSSH != tt.allowSSH:
				t.Errorf("Policy().AllowSSH = %v, want %v", c.Policy().AllowSSH, tt.allowSSH)
			}
		})
	}
}
