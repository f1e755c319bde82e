package deploycheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/kubetest"
	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizations are the directories an operator builds, with what each must contain.
var kustomizations = []struct {
	dir  string
	want []string // Kind/name of every object
}{
	{"deploy/kubernetes/base", []string{
		"ClusterRole/brain-worker", "ClusterRoleBinding/brain-worker",
		"ConfigMap/brain-gateway", "ConfigMap/brain-layout", "ConfigMap/brain-worker",
		"Deployment/brain-gateway", "Deployment/brain-worker",
		"HorizontalPodAutoscaler/brain-gateway", "Ingress/brain", "Namespace/brain",
		"NetworkPolicy/allow-dns", "NetworkPolicy/allow-metrics", "NetworkPolicy/brain-gateway",
		"NetworkPolicy/brain-worker", "NetworkPolicy/default-deny",
		"PodDisruptionBudget/brain-gateway", "PodDisruptionBudget/brain-worker",
		"Service/brain-gateway", "ServiceAccount/brain-gateway", "ServiceAccount/brain-worker",
	}},
	{"deploy/kubernetes/overlays/example", []string{
		"ClusterRole/brain-worker", "ClusterRoleBinding/brain-worker",
		"ConfigMap/brain-gateway", "ConfigMap/brain-grafana-dashboard", "ConfigMap/brain-layout", "ConfigMap/brain-worker",
		"Deployment/brain-gateway", "Deployment/brain-worker",
		"HorizontalPodAutoscaler/brain-gateway", "IngressRoute/brain", "Middleware/brain-ws-ratelimit", "Namespace/brain",
		"NetworkPolicy/allow-dns", "NetworkPolicy/allow-metrics", "NetworkPolicy/brain-gateway",
		"NetworkPolicy/brain-worker", "NetworkPolicy/default-deny",
		"PodDisruptionBudget/brain-gateway", "PodDisruptionBudget/brain-worker", "PodMonitor/brain",
		"PrometheusRule/brain", "ScaledObject/brain-worker", "Secret/brain-gateway",
		"Service/brain-gateway", "ServiceAccount/brain-gateway", "ServiceAccount/brain-worker", "TLSOption/brain-tls13",
	}},
}

// kustomizeBuild builds a kustomization of the repository as `kubectl kustomize` does.
func kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return objs
}

func decodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// hashSuffix is the content hash kustomize appends to generated ConfigMaps and Secrets.
var hashSuffix = regexp.MustCompile(`-[bcdfghkmt2-9]{10}$`)

// baseName is an object's name without a generator's hash suffix.
func baseName(o *unstructured.Unstructured) string {
	if o.GetKind() == "ConfigMap" || o.GetKind() == "Secret" {
		return hashSuffix.ReplaceAllString(o.GetName(), "")
	}
	return o.GetName()
}

func inventory(objs []*unstructured.Unstructured) []string {
	var ids []string
	for _, o := range objs {
		ids = append(ids, o.GetKind()+"/"+baseName(o))
	}
	sort.Strings(ids)
	return ids
}

func TestKustomizeBuild(t *testing.T) {
	t.Parallel()
	for _, k := range kustomizations {
		t.Run(k.dir, func(t *testing.T) {
			t.Parallel()
			objs := kustomizeBuild(t, k.dir)
			if diff := cmp.Diff(k.want, inventory(objs)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
			for _, o := range objs {
				if ns := o.GetNamespace(); o.GetKind() != "Namespace" && ns != "" && ns != "brain" {
					t.Errorf("%s/%s: namespace %q, want brain", o.GetKind(), o.GetName(), ns)
				}
			}
			checkPods(t, objs)
			checkReferences(t, objs)
		})
	}
}

// checkPods holds every pod template to the restricted pod security standard and to Brain's
// conventions: probes, resources, read-only root filesystem.
func checkPods(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		id := "Deployment/" + o.GetName()
		pod, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
		if v, _, _ := unstructured.NestedBool(pod, "securityContext", "runAsNonRoot"); !v {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", id)
		}
		if v, _, _ := unstructured.NestedString(pod, "securityContext", "seccompProfile", "type"); v != "RuntimeDefault" {
			t.Errorf("%s: seccompProfile %q, want RuntimeDefault", id, v)
		}
		containers, _, _ := unstructured.NestedSlice(pod, "containers")
		for _, c := range containers {
			c := c.(map[string]any)
			cid := id + " container " + fmt.Sprint(c["name"])
			for _, path := range [][]string{{"livenessProbe"}, {"readinessProbe"}, {"resources", "requests", "cpu"},
				{"resources", "requests", "memory"}, {"resources", "limits", "memory"}} {
				if _, ok, _ := unstructured.NestedFieldNoCopy(c, path...); !ok {
					t.Errorf("%s: no %s", cid, strings.Join(path, "."))
				}
			}
			if v, _, _ := unstructured.NestedBool(c, "securityContext", "readOnlyRootFilesystem"); !v {
				t.Errorf("%s: readOnlyRootFilesystem is not true", cid)
			}
			if v, ok, _ := unstructured.NestedBool(c, "securityContext", "allowPrivilegeEscalation"); !ok || v {
				t.Errorf("%s: allowPrivilegeEscalation is not false", cid)
			}
			if v, _, _ := unstructured.NestedStringSlice(c, "securityContext", "capabilities", "drop"); !cmp.Equal(v, []string{"ALL"}) {
				t.Errorf("%s: capabilities.drop %v, want [ALL]", cid, v)
			}
		}
	}
}

// checkReferences checks that what objects name exists in the same build: Services and PDBs select
// pods of a Deployment, autoscalers and routes name existing targets, pods name their ConfigMaps and
// ServiceAccounts.
func checkReferences(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	has := map[string]bool{}
	podLabels := map[string]map[string]string{} // Deployment → pod labels
	for _, o := range objs {
		has[o.GetKind()+"/"+o.GetName()] = true
		if o.GetKind() == "Deployment" {
			l, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
			podLabels[o.GetName()] = l
		}
	}
	selects := func(sel map[string]string) bool {
		for _, l := range podLabels {
			match := len(sel) > 0
			for k, v := range sel {
				match = match && l[k] == v
			}
			if match {
				return true
			}
		}
		return false
	}
	refer := func(from, to string) {
		if !has[to] {
			t.Errorf("%s refers to %s, which the build does not contain", from, to)
		}
	}
	for _, o := range objs {
		id := o.GetKind() + "/" + o.GetName()
		switch o.GetKind() {
		case "Service":
			sel, _, _ := unstructured.NestedStringMap(o.Object, "spec", "selector")
			if !selects(sel) {
				t.Errorf("%s selects no Deployment's pods: %v", id, sel)
			}
		case "PodDisruptionBudget":
			sel, _, _ := unstructured.NestedStringMap(o.Object, "spec", "selector", "matchLabels")
			if !selects(sel) {
				t.Errorf("%s selects no Deployment's pods: %v", id, sel)
			}
		case "HorizontalPodAutoscaler", "ScaledObject":
			name, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "name")
			refer(id, "Deployment/"+name)
		case "Ingress":
			rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
			for _, r := range rules {
				paths, _, _ := unstructured.NestedSlice(r.(map[string]any), "http", "paths")
				for _, p := range paths {
					name, _, _ := unstructured.NestedString(p.(map[string]any), "backend", "service", "name")
					refer(id, "Service/"+name)
				}
			}
		case "IngressRoute":
			routes, _, _ := unstructured.NestedSlice(o.Object, "spec", "routes")
			for _, r := range routes {
				svcs, _, _ := unstructured.NestedSlice(r.(map[string]any), "services")
				for _, s := range svcs {
					refer(id, "Service/"+s.(map[string]any)["name"].(string))
				}
				mws, _, _ := unstructured.NestedSlice(r.(map[string]any), "middlewares")
				for _, m := range mws {
					refer(id, "Middleware/"+m.(map[string]any)["name"].(string))
				}
			}
			opt, _, _ := unstructured.NestedString(o.Object, "spec", "tls", "options", "name")
			refer(id, "TLSOption/"+opt)
		case "Deployment":
			pod, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
			sa, _, _ := unstructured.NestedString(pod, "serviceAccountName")
			refer(id, "ServiceAccount/"+sa)
			containers, _, _ := unstructured.NestedSlice(pod, "containers")
			for _, c := range containers {
				from, _, _ := unstructured.NestedSlice(c.(map[string]any), "envFrom")
				for _, f := range from {
					if name, ok, _ := unstructured.NestedString(f.(map[string]any), "configMapRef", "name"); ok {
						refer(id, "ConfigMap/"+name)
					}
				}
			}
		}
	}
}

// TestKubernetesWiring checks the values that tie the manifests to the rest of Brain: the KEDA
// trigger reads the stream and consumer the workers use, the NATS addresses follow the Helm release
// of deploy/nats/values.yaml, and every released image is pinned.
func TestKubernetesWiring(t *testing.T) {
	t.Parallel()
	objs := kustomizeBuild(t, "deploy/kubernetes/overlays/example")
	get := func(kind, name string) *unstructured.Unstructured {
		for _, o := range objs {
			if o.GetKind() == kind && baseName(o) == name {
				return o
			}
		}
		t.Fatalf("no %s/%s", kind, name)
		return nil
	}
	trigger, _, _ := unstructured.NestedSlice(get("ScaledObject", "brain-worker").Object, "spec", "triggers")
	keda := trigger[0].(map[string]any)["metadata"].(map[string]any)
	layout, _, _ := unstructured.NestedStringMap(get("ConfigMap", "brain-layout").Object, "data")
	var values struct {
		Config struct {
			Cluster struct{ Replicas int }
		}
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/nats/values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{
		"keda stream":          fmt.Sprint(keda["stream"]),
		"keda consumer":        fmt.Sprint(keda["consumer"]),
		"keda endpoint":        fmt.Sprint(keda["natsServerMonitoringEndpoint"]),
		"NATS_URL":             layout["NATS_URL"],
		"NATS_REPLICAS":        layout["NATS_REPLICAS"],
		"nats cluster servers": fmt.Sprint(values.Config.Cluster.Replicas),
	}
	want := map[string]string{
		"keda stream":          proto.JobsStream,
		"keda consumer":        proto.WorkersConsumer,
		"keda endpoint":        "nats-headless.nats.svc.cluster.local:8222",
		"NATS_URL":             "nats://nats.nats.svc.cluster.local:4222",
		"NATS_REPLICAS":        "3",
		"nats cluster servers": "3",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wiring (-want +got):\n%s", diff)
	}
	for _, o := range objs {
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			checkPinned(t, o.GetKind()+"/"+o.GetName(), c.(map[string]any)["image"].(string))
		}
	}
}

// TestKubernetesDryRun applies every object of every kustomization to a real kube-apiserver with
// server-side dry run and strict field validation: the API server must accept each one. Kinds from
// CRDs (KEDA, Traefik, Prometheus Operator) are checked against the minimal CRDs in testdata/crds.
func TestKubernetesDryRun(t *testing.T) {
	t.Parallel()
	kube := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := newApplier(t, kube.Admin)
	for _, f := range []string{"keda.yaml", "traefik.yaml", "prometheus-operator.yaml"} {
		crds, err := decodeObjects(readFile(t, "testkit/deploycheck/testdata/crds/"+f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, crd := range crds {
			if err := a.apply(ctx, crd, false); err != nil {
				t.Fatal(err)
			}
			a.waitEstablished(ctx, t, crd.GetName())
		}
	}
	// Namespaced objects can be dry-run only into a namespace that exists.
	for _, name := range []string{"brain", "nats"} {
		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": name}}}
		if err := a.apply(ctx, ns, false); err != nil {
			t.Fatal(err)
		}
	}
	a.mapper.Reset()
	for _, k := range kustomizations {
		t.Run(k.dir, func(t *testing.T) {
			for _, o := range kustomizeBuild(t, k.dir) {
				if err := a.apply(ctx, o, true); err != nil {
					t.Error(err)
				}
			}
		})
	}
	// The Helm release of deploy/nats/values.yaml installs its extra resources into namespace nats.
	t.Run("deploy/nats/values.yaml", func(t *testing.T) {
		extra, _, _ := unstructured.NestedSlice(natsValues(t), "extraResources")
		for _, e := range extra {
			o := &unstructured.Unstructured{Object: e.(map[string]any)}
			o.SetNamespace("nats")
			if err := a.apply(ctx, o, true); err != nil {
				t.Error(err)
			}
		}
	})
}

// applier server-side applies objects with strict field validation.
type applier struct {
	client dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T, cfg *rest.Config) *applier {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{client: client, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	gvk := obj.GroupVersionKind()
	id := gvk.Kind + "/" + obj.GetName()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("apply %s: %w", id, err)
	}
	var ri dynamic.ResourceInterface = a.client.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			return fmt.Errorf("apply %s: namespaced object without a namespace", id)
		}
		ri = a.client.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return fmt.Errorf("apply %s: %w", id, err)
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: "deploycheck", Force: &force, FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts); err != nil {
		return fmt.Errorf("apply %s: %w", id, err)
	}
	return nil
}

// waitEstablished waits until the API server serves the CRD's kind.
func (a *applier) waitEstablished(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	crds := a.client.Resource(apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions"))
	u, err := crds.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get CRD %s: %v", name, err)
	}
	if established(t, u) {
		a.mapper.Reset()
		return
	}
	w, err := crds.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: u.GetResourceVersion()})
	if err != nil {
		t.Fatalf("watch CRD %s: %v", name, err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if u, ok := ev.Object.(*unstructured.Unstructured); ok && established(t, u) {
			a.mapper.Reset()
			return
		}
	}
	t.Fatalf("CRD %s not established: %v", name, ctx.Err())
}

func established(t *testing.T, u *unstructured.Unstructured) bool {
	t.Helper()
	var crd apiextensionsv1.CustomResourceDefinition
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &crd); err != nil {
		t.Fatal(err)
	}
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
