package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "config")
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	list := func(paths ...string) string { return strings.Join(paths, string(os.PathListSeparator)) }
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // empty: valid
	}{
		{name: "kubeconfig", cfg: Config{Mode: ModeKubeconfig, Kubeconfig: kubeconfig}},
		{name: "kubeconfig list with a missing file", cfg: Config{Mode: ModeKubeconfig, Kubeconfig: list(missing, kubeconfig)}},
		{name: "in-cluster", cfg: Config{Mode: ModeInCluster}},
		{name: "none", cfg: Config{Mode: ModeNone}},
		{name: "eks", cfg: Config{Mode: ModeEKS, ClusterName: "prod_eu-1", Region: "eu-west-1", Timeout: time.Minute, QPS: 20, Burst: 40}},
		{name: "empty mode", cfg: Config{}, wantErr: "KUBE_AUTH is empty; set it to kubeconfig, in-cluster, eks or none"},
		{name: "unknown mode", cfg: Config{Mode: "eksctl"}, wantErr: `KUBE_AUTH="eksctl" is not one of kubeconfig, in-cluster, eks, none`},
		{name: "eks without cluster", cfg: Config{Mode: ModeEKS, Region: "eu-west-1"}, wantErr: "KUBE_AUTH=eks needs KUBE_CLUSTER_NAME"},
		{name: "eks bad cluster name", cfg: Config{Mode: ModeEKS, ClusterName: "prod eu", Region: "eu-west-1"}, wantErr: `KUBE_CLUSTER_NAME="prod eu" is not an EKS cluster name`},
		{name: "eks cluster name too long", cfg: Config{Mode: ModeEKS, ClusterName: strings.Repeat("a", 101), Region: "eu-west-1"}, wantErr: "is not an EKS cluster name"},
		{name: "eks without region", cfg: Config{Mode: ModeEKS, ClusterName: "prod"}, wantErr: "KUBE_AUTH=eks needs AWS_REGION (or AWS_DEFAULT_REGION)"},
		{name: "kubeconfig missing", cfg: Config{Mode: ModeKubeconfig, Kubeconfig: missing}, wantErr: "KUBECONFIG names " + missing + ", which does not exist"},
		{name: "kubeconfig list all missing", cfg: Config{Mode: ModeKubeconfig, Kubeconfig: list(missing, missing+"2")}, wantErr: "KUBECONFIG names " + missing + ", " + missing + "2, which does not exist"},
		{name: "kubeconfig is a directory", cfg: Config{Mode: ModeKubeconfig, Kubeconfig: dir}, wantErr: "which is a directory"},
		{name: "negative timeout", cfg: Config{Mode: ModeNone, Timeout: -time.Second}, wantErr: "KUBE_TIMEOUT is -1s; it must not be negative"},
		{name: "negative QPS", cfg: Config{Mode: ModeNone, QPS: -1}, wantErr: "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// Not parallel: it sets HOME.
func TestValidateDefaultKubeconfig(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	c := Config{Mode: ModeKubeconfig}
	want := "KUBE_AUTH=kubeconfig: KUBECONFIG is not set and " + filepath.Join(home, ".kube", "config") + " does not exist"
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %q", err, want)
	}
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("with ~/.kube/config: Validate() = %v", err)
	}
}
