package cluster_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/backendim/brain/worker/internal/cluster"
	"github.com/backendim/brain/worker/internal/eksauth"
	"github.com/backendim/brain/worker/internal/eksauth/awstest"
)

// apiServer is a TLS server that answers GET /version like a kube-apiserver, after checking the
// bearer token with check.
type apiServer struct {
	*httptest.Server
	check func(ctx context.Context, token string) (user string, err error)

	mu     sync.Mutex
	tokens []string
	users  []string
}

func newAPIServer(t *testing.T, check func(ctx context.Context, token string) (string, error)) *apiServer {
	t.Helper()
	s := &apiServer{check: check}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	user, err := s.check(r.Context(), token)
	s.mu.Lock()
	s.tokens = append(s.tokens, token)
	s.users = append(s.users, user)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
			"message": "Unauthorized: " + err.Error(), "reason": "Unauthorized", "code": 401})
		return
	}
	if r.URL.Path != "/version" {
		http.NotFound(w, r)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"major": "1", "minor": "33", "gitVersion": "v1.33.1-eks-test"})
}

func (s *apiServer) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

func (s *apiServer) seen() (tokens, users []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...), append([]string(nil), s.users...)
}

func serverVersion(t *testing.T, cfg *rest.Config) (string, error) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return "", err
	}
	return v.GitVersion, nil
}

func TestRESTConfigEKS(t *testing.T) {
	t.Parallel()
	const region = "eu-west-1"
	worker := awstest.Identity{AccessKeyID: "ASIAWORKEREXAMPLE", SecretAccessKey: "worker/secret", SessionToken: "session/token",
		ARN: "arn:aws:sts::123456789012:assumed-role/brain-worker/irsa"}
	awsSrv := awstest.NewServer(t, region)
	awsSrv.AddIdentity(worker)
	// The API server authenticates as EKS does: it sends the token's presigned URL to STS.
	api := newAPIServer(t, func(ctx context.Context, token string) (string, error) {
		return awsSrv.Authenticate(ctx, token, "prod-eu")
	})
	awsSrv.AddCluster(awstest.Cluster{Name: "prod-eu", Endpoint: api.URL, CAPEM: api.caPEM()})
	awsCfg := func(context.Context, string) (aws.Config, error) { return awsSrv.Config(worker), nil }

	cfg, err := cluster.RESTConfig(t.Context(), cluster.Config{Mode: cluster.ModeEKS, ClusterName: "prod-eu", Region: region, Timeout: 7 * time.Second}, awsCfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != api.URL || cfg.Timeout != 7*time.Second || cfg.QPS != cluster.DefaultQPS || cfg.Burst != cluster.DefaultBurst {
		t.Errorf("rest.Config host %s timeout %s QPS %g burst %d", cfg.Host, cfg.Timeout, cfg.QPS, cfg.Burst)
	}
	for range 3 {
		v, err := serverVersion(t, cfg)
		if err != nil {
			t.Fatalf("ServerVersion through the EKS token: %v", err)
		}
		if v != "v1.33.1-eks-test" {
			t.Errorf("ServerVersion = %s", v)
		}
	}
	tokens, users := api.seen()
	if diff := cmp.Diff([]string{worker.ARN, worker.ARN, worker.ARN}, users); diff != "" {
		t.Errorf("identities the API server saw (-want +got):\n%s", diff)
	}
	for _, tok := range tokens {
		if !strings.HasPrefix(tok, eksauth.TokenPrefix) || tok != tokens[0] {
			t.Errorf("requests carried tokens %q, want one cached k8s-aws-v1. token", tokens)
			break
		}
	}
	describe := awsSrv.Requests()[0]
	if describe.Operation != "DescribeCluster" || describe.Scope.Service != "eks" || describe.Scope.Region != region {
		t.Errorf("first AWS request = %+v, want DescribeCluster signed for eks in %s", describe, region)
	}
}

func TestRESTConfigEKSErrors(t *testing.T) {
	t.Parallel()
	const region = "eu-west-1"
	worker := awstest.Identity{AccessKeyID: "AKIAWORKEREXAMPLE", SecretAccessKey: "s", ARN: "arn:aws:iam::123456789012:user/w"}
	srv := awstest.NewServer(t, region)
	srv.AddIdentity(worker)
	c := cluster.Config{Mode: cluster.ModeEKS, ClusterName: "missing", Region: region}

	_, err := cluster.RESTConfig(t.Context(), c, func(context.Context, string) (aws.Config, error) { return srv.Config(worker), nil })
	if !errors.Is(err, eksauth.ErrClusterNotFound) || !strings.HasPrefix(err.Error(), "KUBE_AUTH=eks: describe EKS cluster missing in eu-west-1") {
		t.Errorf("unknown cluster: err = %v", err)
	}
	_, err = cluster.RESTConfig(t.Context(), c, func(context.Context, string) (aws.Config, error) {
		return aws.Config{}, errors.New("load AWS configuration: bad profile")
	})
	if want := "KUBE_AUTH=eks: load AWS configuration: bad profile"; err == nil || err.Error() != want {
		t.Errorf("AWS config fails: err = %v, want %q", err, want)
	}
}

const kubeconfigTemplate = `apiVersion: v1
kind: Config
current-context: %s
clusters:
- name: a
  cluster: {server: "%s", certificate-authority-data: "%s"}
- name: b
  cluster: {server: "https://b.example:6443", insecure-skip-tls-verify: true}
users:
- name: alice
  user: {token: alice-token}
- name: bob
  user: {token: bob-token}
contexts:
- name: a
  context: {cluster: a, user: alice}
- name: b
  context: {cluster: b, user: bob, namespace: team-b}
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRESTConfigKubeconfig(t *testing.T) {
	t.Parallel()
	api := newAPIServer(t, func(_ context.Context, token string) (string, error) {
		if token != "alice-token" {
			return "", fmt.Errorf("unknown token %q", token)
		}
		return "alice", nil
	})
	dir := t.TempDir()
	ca := string(api.caPEM())
	ca64 := base64Std(ca)
	primary := writeFile(t, dir, "main", fmt.Sprintf(kubeconfigTemplate, "a", api.URL, ca64))
	noCurrent := writeFile(t, dir, "no-current", fmt.Sprintf(kubeconfigTemplate, `""`, api.URL, ca64))
	extra := writeFile(t, dir, "extra", `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://c.example:6443"}}]
users: [{name: carol, user: {token: carol-token}}]
contexts: [{name: c, context: {cluster: c, user: carol}}]
`)
	missing := filepath.Join(dir, "missing")
	list := func(paths ...string) string { return strings.Join(paths, string(os.PathListSeparator)) }

	tests := []struct {
		name       string
		kubeconfig string
		context    string
		wantHost   string
		wantToken  string
		wantErr    string
	}{
		{name: "current context", kubeconfig: primary, wantHost: api.URL, wantToken: "alice-token"},
		{name: "named context", kubeconfig: primary, context: "b", wantHost: "https://b.example:6443", wantToken: "bob-token"},
		{name: "context from a second file", kubeconfig: list(primary, extra), context: "c", wantHost: "https://c.example:6443", wantToken: "carol-token"},
		{name: "missing file in a list", kubeconfig: list(missing, primary), wantHost: api.URL, wantToken: "alice-token"},
		{name: "unknown context", kubeconfig: primary, context: "prod", wantErr: `KUBE_CONTEXT="prod" is not a context of kubeconfig ` + primary + "; it has a, b"},
		{name: "no current context", kubeconfig: noCurrent, wantErr: "kubeconfig " + noCurrent + " has no current-context; set KUBE_CONTEXT to one of a, b"},
		{name: "missing file", kubeconfig: missing, wantErr: "KUBECONFIG names " + missing + ", which does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := cluster.RESTConfig(t.Context(), cluster.Config{Mode: cluster.ModeKubeconfig, Kubeconfig: tt.kubeconfig, Context: tt.context}, nil)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := [3]any{cfg.Host, cfg.BearerToken, cfg.Timeout}
			if diff := cmp.Diff([3]any{tt.wantHost, tt.wantToken, cluster.DefaultTimeout}, got); diff != "" {
				t.Errorf("host, token, timeout (-want +got):\n%s", diff)
			}
			if tt.wantHost != api.URL {
				return
			}
			if v, err := serverVersion(t, cfg); err != nil || v != "v1.33.1-eks-test" {
				t.Errorf("ServerVersion through the kubeconfig = %q, %v", v, err)
			}
		})
	}
}

func TestRESTConfigNone(t *testing.T) {
	t.Parallel()
	cfg, err := cluster.RESTConfig(t.Context(), cluster.Config{Mode: cluster.ModeNone}, nil)
	if cfg != nil || err != nil {
		t.Errorf("RESTConfig(none) = %v, %v; want nil, nil", cfg, err)
	}
}

// Not parallel: it clears the variables a pod has.
func TestRESTConfigInClusterOutsideAPod(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	_, err := cluster.RESTConfig(t.Context(), cluster.Config{Mode: cluster.ModeInCluster}, nil)
	if !errors.Is(err, rest.ErrNotInCluster) || !strings.HasPrefix(err.Error(), "KUBE_AUTH=in-cluster:") {
		t.Errorf("err = %v, want KUBE_AUTH=in-cluster: … rest.ErrNotInCluster", err)
	}
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
