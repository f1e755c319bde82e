package deployer_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/kubetest"
	"github.com/backendim/brain/worker/internal/deployer"
	"github.com/backendim/brain/worker/internal/render"
)

// kube is the cluster shared by the package's tests (controllers, scheduler and kwok's simulated
// nodes run: what Brain applies rolls out); worker is a client configuration for the
// ServiceAccount of deploy/kubernetes/base/worker-rbac.yaml, with exactly that RBAC.
var (
	kube   *kubetest.Env
	worker *rest.Config
)

// rbacFile is the worker's RBAC, relative to this package.
var rbacFile = filepath.Join("..", "..", "..", "deploy", "kubernetes", "base", "worker-rbac.yaml")

const workerUser = "system:serviceaccount:brain:brain-worker"

func TestMain(m *testing.M) {
	env, stop, err := kubetest.StartClusterMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kube = env
	worker, err = setUpWorker(env)
	if err != nil {
		stop()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stopBare()
	stop()
	os.Exit(code)
}

func setUpWorker(env *kubetest.Env) (*rest.Config, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rbac, err := os.ReadFile(rbacFile)
	if err != nil {
		return nil, err
	}
	ns := []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: brain}\n---\n")
	if _, err := kubetest.ApplyYAML(ctx, env.Admin, append(ns, rbac...)); err != nil {
		return nil, fmt.Errorf("apply %s: %w", rbacFile, err)
	}
	return env.AddUser(workerUser, "system:serviceaccounts", "system:serviceaccounts:brain")
}

// testOptions are fast intervals for a test cluster, where pods start within a second.
func testOptions() deployer.Options {
	return deployer.Options{
		Guards:              deployer.DefaultGuards(),
		HealthTimeout:       60 * time.Second,
		ProgressInterval:    2 * time.Second,
		ProgressMinInterval: 100 * time.Millisecond,
		PollInterval:        200 * time.Millisecond,
		RequestTimeout:      10 * time.Second,
	}
}

func newDeployer(t testing.TB, cfg *rest.Config, opts deployer.Options) *deployer.Deployer {
	t.Helper()
	d, err := deployer.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// chat is a fresh chat with its own namespace; namespaces outlive the test (a test API server has
// no controller to finish deleting them).
type chat struct{ user, id, ns string }

func newChat(t testing.TB) chat {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	c := chat{user: "u" + hex.EncodeToString(b[:2]), id: "c" + hex.EncodeToString(b[2:])}
	c.ns = proto.Namespace(c.id, c.user)
	return c
}

func (c chat) request(objs []render.Object) deployer.Request {
	return deployer.Request{JobID: proto.NewJobID(), UserID: c.user, ChatID: c.id, Namespace: c.ns, Objects: objs}
}

// objects parses multi-document YAML as the render stage would, with file and line of each.
func objects(t testing.TB, file, manifests string) []render.Object {
	t.Helper()
	var out []render.Object
	start, doc := 1, []string{}
	flush := func() {
		text := strings.Join(doc, "\n")
		if strings.TrimSpace(text) == "" {
			return
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(text), &m); err != nil {
			t.Fatalf("%s:%d: %v", file, start, err)
		}
		out = append(out, render.Object{Unstructured: &unstructured.Unstructured{Object: m}, File: file, Line: start})
	}
	for i, line := range strings.Split(manifests, "\n") {
		if strings.TrimSpace(line) == "---" {
			flush()
			start, doc = i+2, nil
			continue
		}
		doc = append(doc, line)
	}
	flush()
	return out
}

// recorder collects the progress messages of a Deploy.
type recorder struct {
	mu   sync.Mutex
	msgs []proto.Message
	ch   chan proto.Message
}

func newRecorder() *recorder { return &recorder{ch: make(chan proto.Message, 1000)} }

func (r *recorder) report(m proto.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	select {
	case r.ch <- m:
	default:
	}
}

// applying returns "Kind/name action" of every applying event, in order.
func (r *recorder) applying() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		if m.Stage == proto.StageApplying && m.Object != nil {
			out = append(out, m.Object.Kind+"/"+m.Object.Name+" "+m.Object.Action)
		}
	}
	return out
}

// next waits for a message that match accepts.
func (r *recorder) next(t testing.TB, timeout time.Duration, match func(proto.Message) bool) proto.Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-r.ch:
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no matching progress message in %s", timeout)
		}
	}
}

// actions maps "Kind/name" to the action of each result.
func actions(results []proto.ObjectResult) map[string]string {
	out := map[string]string{}
	for _, r := range results {
		out[r.Kind+"/"+r.Name] = r.Action
	}
	return out
}

func statuses(results []proto.ObjectResult) map[string]string {
	out := map[string]string{}
	for _, r := range results {
		out[r.Kind+"/"+r.Name] = r.Status
	}
	return out
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// deploy runs a Deploy that must succeed.
func deploy(t testing.TB, d *deployer.Deployer, req deployer.Request) ([]proto.ObjectResult, *recorder) {
	t.Helper()
	rec := newRecorder()
	res, err := d.Deploy(ctxFor(t, time.Minute), req, rec.report)
	if err != nil {
		t.Fatalf("deploy to %s: %v", req.Namespace, err)
	}
	return res, rec
}

// deployErr runs a Deploy that must fail with code, and returns its message.
func deployErr(t testing.TB, d *deployer.Deployer, req deployer.Request, code proto.Code) string {
	t.Helper()
	_, err := d.Deploy(ctxFor(t, time.Minute), req, nil)
	pe, ok := err.(*proto.Error)
	if !ok || pe.Code != code {
		t.Fatalf("deploy error = %v, want code %s", err, code)
	}
	t.Logf("%s: %s", pe.Code, pe.Message)
	return pe.Message
}

var (
	nsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	cmGVR  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	depGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	jobGVR = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
)

func admin(t testing.TB) *dynamic.DynamicClient {
	t.Helper()
	c, err := dynamic.NewForConfig(kube.Admin)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// get reads an object as admin; nil when it does not exist.
func get(t testing.TB, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	var ri dynamic.ResourceInterface = admin(t).Resource(gvr)
	if ns != "" {
		ri = admin(t).Resource(gvr).Namespace(ns)
	}
	obj, err := ri.Get(ctxFor(t, 10*time.Second), name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return obj
}
