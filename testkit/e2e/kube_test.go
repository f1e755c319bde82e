package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/gitserver"
	"github.com/backendim/brain/testkit/kubetest"
	"github.com/backendim/brain/testkit/stack"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

// TestWebSocketToCluster drives the whole system: a WebSocket message to a gateway process, a
// worker process applying to kubetest's full cluster as the ServiceAccount of worker-rbac.yaml,
// the controllers and kwok rolling the Deployment out, and the job's success back. Nothing writes
// a status by hand.
func TestWebSocketToCluster(t *testing.T) {
	t.Parallel()
	kube := kubetest.StartCluster(t)
	kubeconfig := workerKubeconfig(t, kube)
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	sha := repo.Commit(t, "Add web", map[string]string{"deploy/app.yaml": manifests,
		"deploy/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n"})
	s := stack.Start(t, stack.Options{BinDir: binDir, WorkerEnv: map[string]string{
		"KUBE_AUTH": "kubeconfig", "KUBECONFIG": kubeconfig, "HEALTH_TIMEOUT": "60s"}})
	c := stack.Dial(t, s.Gateways[0], s.Token("u1"))
	c.Send(deploy("u1", "c1", repo.URL(), sha))
	q := c.Read(10 * time.Second)
	admin, err := dynamic.NewForConfig(kube.Admin)
	if err != nil {
		t.Fatal(err)
	}
	ns := proto.Namespace("c1", "u1")
	applied := map[string]string{}
	var final proto.Message
	for final.Type == "" {
		m := c.Read(90 * time.Second)
		switch {
		case m.JobID != q.JobID:
		case m.Stage == proto.StageApplying && m.Object != nil:
			applied[m.Object.Kind+"/"+m.Object.Name] = m.Object.Action
		case m.Final():
			final = m
		}
	}
	if final.Type != proto.TypeSuccess {
		t.Fatalf("final = %+v", final)
	}
	for _, obj := range []string{"Namespace/" + ns, "ConfigMap/settings", "Deployment/web", "Service/web"} {
		if applied[obj] != proto.ActionCreated {
			t.Errorf("%s: action %q, want created (all: %v)", obj, applied[obj], applied)
		}
	}
	cm, err := admin.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(ns).
		Get(context.Background(), "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the ConfigMap is not in the cluster: %v", err)
	}
	var managers []string
	for _, f := range cm.GetManagedFields() {
		managers = append(managers, f.Manager)
	}
	if diff := cmp.Diff([]string{"brain"}, managers); diff != "" {
		t.Errorf("field managers of the ConfigMap (-want +got):\n%s", diff)
	}
	if p := final.Payload; p.Commit != sha || p.Namespace != ns {
		t.Errorf("payload = %+v", p)
	}
	dep, err := admin.Resource(deployments).Namespace(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _, _ := unstructured.NestedInt64(dep.Object, "status", "availableReplicas"); n != 1 {
		t.Errorf("Deployment/web has %d available replicas on the cluster, want 1", n)
	}
}

// workerKubeconfig gives the worker exactly the RBAC of deploy/kubernetes/base/worker-rbac.yaml.
func workerKubeconfig(t *testing.T, kube *kubetest.Env) string {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rbac, err := os.ReadFile(filepath.Join(root, "deploy", "kubernetes", "base", "worker-rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kubetest.Apply(t, kube.Admin, append([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: brain}\n---\n"), rbac...))
	cfg := kube.User(t, "system:serviceaccount:brain:brain-worker", "system:serviceaccounts", "system:serviceaccounts:brain")
	return kube.Kubeconfig(t, cfg)
}

// TestBrainctlNamesTheBlockingJob: a second deploy to a chat whose first job still waits for its
// Deployment is blocked on the namespace lock, and brainctl says so, naming the first job.
func TestBrainctlNamesTheBlockingJob(t *testing.T) {
	t.Parallel()
	kube := kubetest.StartCluster(t)
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	never := strings.Replace(manifests, "metadata: {labels: {app: web}}",
		"metadata: {labels: {app: web, "+kubetest.FailLabel+": "+kubetest.FailNeverReady+"}}", 1)
	sha := repo.Commit(t, "Add web that never gets ready", map[string]string{"deploy/app.yaml": never})
	s := stack.Start(t, stack.Options{BinDir: binDir, WorkerEnv: map[string]string{
		"KUBE_AUTH": "kubeconfig", "KUBECONFIG": workerKubeconfig(t, kube), "HEALTH_TIMEOUT": "60s"}})
	c := stack.Dial(t, s.Gateways[0], s.Token("u1"))
	c.Send(deploy("u1", "c1", repo.URL(), sha))
	first := c.Read(10 * time.Second)
	for m := c.Read(60 * time.Second); m.JobID != first.JobID || m.Stage != proto.StageWaiting; m = c.Read(60 * time.Second) {
		if m.Final() {
			t.Fatalf("the first job ended before it waited: %+v", m)
		}
	}
	cmd := exec.Command(filepath.Join(binDir, "brainctl"), "deploy", "--url", s.Gateways[0].WSURL(),
		"--token", s.Token("u1"), "--chat", "c1", "--repo", repo.URL(), "--commit", sha, "--timeout", "10s")
	out, err := cmd.Output() // a pipe: plain lines
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 4 {
		t.Fatalf("brainctl deploy = %v, want exit code 4 (--timeout while blocked); output:\n%s", err, out)
	}
	var blocked string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, " blocked ") {
			blocked = line
		}
	}
	if !strings.Contains(blocked, first.JobID) {
		t.Errorf("brainctl's blocked line %q does not name the first job %s; output:\n%s", blocked, first.JobID, out)
	}
}
