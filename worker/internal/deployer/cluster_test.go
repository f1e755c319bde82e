package deployer_test

import (
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/kubetest"
	"github.com/backendim/brain/worker/internal/deployer"
)

// closedPort returns the address of a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUnreachableClusterFailsFastAndRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  func(t *testing.T) *rest.Config
	}{
		{"connection refused", func(t *testing.T) *rest.Config {
			cfg := rest.CopyConfig(worker)
			cfg.Host = "https://" + closedPort(t)
			return cfg
		}},
		{"server that never answers", func(t *testing.T) *rest.Config {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			cfg := rest.CopyConfig(worker)
			cfg.Host = "https://" + l.Addr().String() // accepts, then says nothing (no TLS handshake)
			return cfg
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := testOptions()
			opts.RequestTimeout = time.Second
			d := newDeployer(t, tt.cfg(t), opts)
			c := newChat(t)
			start := time.Now()
			msg := deployErr(t, d, c.request(objects(t, "app.yaml", settingsBlue)), proto.CodeClusterUnreachable)
			if elapsed := time.Since(start); elapsed > 15*time.Second {
				t.Errorf("took %s to fail, want about the request timeout", elapsed)
			}
			if !proto.CodeClusterUnreachable.Retryable() {
				t.Error("cluster_unreachable should be retryable")
			}
			if !strings.Contains(msg, "127.0.0.1") {
				t.Errorf("message %q does not name the API server", msg)
			}
			if err := d.Ping(ctxFor(t, 10*time.Second)); err == nil {
				t.Error("Ping succeeded against an unreachable cluster")
			}
		})
	}
}

// TestClusterGoingAwayWhileWaiting stops an API server of its own while a deploy waits for health.
func TestClusterGoingAwayWhileWaiting(t *testing.T) {
	t.Parallel()
	env := kubetest.Start(t)
	cfg, err := setUpWorker(env)
	if err != nil {
		t.Fatal(err)
	}
	c := newChat(t)
	d := newDeployer(t, cfg, testOptions())
	rec := newRecorder()
	done := deployAsync(d, c.request(objects(t, "web.yaml", webDeployment)), rec)
	rec.next(t, 20*time.Second, func(m proto.Message) bool { return m.Stage == proto.StageWaiting })
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	o := await(t, done, 20*time.Second)
	pe, ok := o.err.(*proto.Error)
	if !ok || pe.Code != proto.CodeClusterUnreachable {
		t.Fatalf("deploy error = %v, want %s", o.err, proto.CodeClusterUnreachable)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	if err := newDeployer(t, worker, testOptions()).Ping(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	rep, err := newDeployer(t, worker, testOptions()).Doctor(ctxFor(t, 30*time.Second))
	if err != nil {
		t.Fatalf("Doctor: %v", err)
	}
	if rep.User != "system:serviceaccount:brain:brain-worker" || !slices.Contains(rep.Groups, "system:serviceaccounts:brain") {
		t.Errorf("identity = %s %v", rep.User, rep.Groups)
	}
	if !strings.HasPrefix(rep.Version, "v1.") {
		t.Errorf("version = %q", rep.Version)
	}
	if len(rep.Checks) < 50 || len(rep.Missing()) != 0 {
		t.Errorf("%d checks, missing %v; want every permission of worker-rbac.yaml", len(rep.Checks), rep.Missing())
	}

	nobody := kube.User(t, "nobody")
	rep, err = newDeployer(t, nobody, testOptions()).Doctor(ctxFor(t, 30*time.Second))
	if err != nil {
		t.Fatalf("Doctor as nobody: %v", err)
	}
	if len(rep.Missing()) != len(rep.Checks) {
		t.Errorf("nobody is missing %d of %d permissions, want all", len(rep.Missing()), len(rep.Checks))
	}
}

// TestRBACFileMatchesRequiredAccess keeps the ClusterRole of worker-rbac.yaml and
// deployer.RequiredAccess (what Doctor checks) the same.
func TestRBACFileMatchesRequiredAccess(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(rbacFile)
	if err != nil {
		t.Fatal(err)
	}
	var fromFile []string
	kinds := map[string]bool{}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var obj unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			t.Fatalf("%s: %v", rbacFile, err)
		}
		kinds[obj.GetKind()+"/"+obj.GetName()] = true
		if obj.GetKind() != "ClusterRole" {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(obj.Object, "rules")
		for _, r := range rules {
			rule := r.(map[string]any)
			for _, g := range rule["apiGroups"].([]any) {
				for _, res := range rule["resources"].([]any) {
					for _, v := range rule["verbs"].([]any) {
						fromFile = append(fromFile, g.(string)+"/"+res.(string)+":"+v.(string))
					}
				}
			}
		}
	}
	var fromCode []string
	for _, a := range deployer.RequiredAccess() {
		for _, v := range a.Verbs {
			fromCode = append(fromCode, a.Group+"/"+a.Resource+":"+v)
		}
	}
	slices.Sort(fromFile)
	slices.Sort(fromCode)
	if diff := cmp.Diff(fromCode, fromFile); diff != "" {
		t.Errorf("ClusterRole rules (-RequiredAccess +%s):\n%s", rbacFile, diff)
	}
	want := map[string]bool{"ServiceAccount/brain-worker": true, "ClusterRole/brain-worker": true, "ClusterRoleBinding/brain-worker": true}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
}
