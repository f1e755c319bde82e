package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// applyTimeout bounds one Apply call.
const applyTimeout = time.Minute

// FieldManager is the field manager of objects applied with Apply.
const FieldManager = "kubetest"

// ApplyFile is Apply with the contents of a file.
func ApplyFile(t testing.TB, cfg *rest.Config, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return Apply(t, cfg, data)
}

// Apply decodes YAML or JSON documents (separated by "---") and server-side applies each object,
// in order, as the user of cfg with field manager FieldManager and forced ownership. Namespaced
// objects without a namespace go to "default". It returns the objects as the API server stored
// them and fails the test on any error.
func Apply(t testing.TB, cfg *rest.Config, manifests []byte) []*unstructured.Unstructured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	out, err := ApplyYAML(ctx, cfg, manifests)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return out
}

// ApplyYAML is Apply for callers without a testing.TB.
func ApplyYAML(ctx context.Context, cfg *rest.Config, manifests []byte) ([]*unstructured.Unstructured, error) {
	objs, err := decodeYAML(manifests)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	var out []*unstructured.Unstructured
	for _, obj := range objs {
		got, err := applyOne(ctx, client, mapper, obj)
		if err != nil {
			return nil, err
		}
		out = append(out, got)
	}
	return out, nil
}

func applyOne(ctx context.Context, client dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper,
	obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := obj.GroupVersionKind()
	id := gvk.Kind + "/" + obj.GetName()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		mapper.Reset() // a CRD applied earlier in the same call
		m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", id, err)
	}
	var ri dynamic.ResourceInterface = client.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(metav1.NamespaceDefault)
		}
		ri = client.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", id, err)
	}
	force := true
	got, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", id, err)
	}
	return got, nil
}

func decodeYAML(manifests []byte) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode manifests: %w", err)
		}
		if len(m) == 0 {
			continue // an empty document
		}
		obj := &unstructured.Unstructured{Object: m}
		if obj.GetKind() == "" || obj.GetName() == "" {
			return nil, fmt.Errorf("decode manifests: object %d has no kind or name", len(objs)+1)
		}
		objs = append(objs, obj)
	}
}
