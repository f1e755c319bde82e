package deployer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// inventoryKey is the key of the inventory ConfigMap's data that lists the objects.
const inventoryKey = "objects"

// ref names an object of the inventory.
type ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func refOf(obj *unstructured.Unstructured) ref {
	return ref{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// same reports whether r and o name the same object, whatever the API version.
func (r ref) same(o ref) bool {
	return r.group() == o.group() && r.Kind == o.Kind && r.Namespace == o.Namespace && r.Name == o.Name
}

func (r ref) group() string { return schema.FromAPIVersionAndKind(r.APIVersion, r.Kind).Group }

func (r ref) String() string { return r.Kind + "/" + r.Name }

func (r ref) object() *unstructured.Unstructured {
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion(r.APIVersion)
	obj.SetKind(r.Kind)
	obj.SetNamespace(r.Namespace)
	obj.SetName(r.Name)
	return obj
}

func compareRefs(a, b ref) int {
	return strings.Compare(a.Namespace+"/"+a.group()+"/"+a.Kind+"/"+a.Name, b.Namespace+"/"+b.group()+"/"+b.Kind+"/"+b.Name)
}

// readInventory returns what the chat's earlier deploys applied; nothing when there is no inventory.
func (d *Deployer) readInventory(ctx context.Context, ns string) ([]ref, error) {
	cm := &unstructured.Unstructured{}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	err := d.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: inventoryName}, cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, d.clusterError("read the inventory of "+ns, err)
	}
	data, _, _ := unstructured.NestedString(cm.Object, "data", inventoryKey)
	var refs []ref
	if data != "" {
		if err := json.Unmarshal([]byte(data), &refs); err != nil {
			return nil, fmt.Errorf("read inventory %s/%s: %w", ns, inventoryName, err)
		}
	}
	return refs, nil
}

// writeInventory replaces the inventory with refs.
func (d *Deployer) writeInventory(ctx context.Context, ns string, refs []ref) error {
	refs = slices.Clone(refs)
	slices.SortFunc(refs, compareRefs)
	data, err := json.Marshal(refs)
	if err != nil {
		return fmt.Errorf("write inventory %s/%s: %w", ns, inventoryName, err)
	}
	cm := ownObject("v1", "ConfigMap", ns, inventoryName)
	cm.Object["data"] = map[string]any{inventoryKey: string(data)}
	if err := d.client.Patch(ctx, cm, client.Apply, client.ForceOwnership, client.FieldOwner(d.opts.FieldManager)); err != nil {
		return d.clusterError("write the inventory of "+ns, err)
	}
	return nil
}

// missing returns the refs of have that want does not name.
func missing(have, want []ref) []ref {
	var out []ref
	for _, h := range have {
		if !slices.ContainsFunc(want, h.same) {
			out = append(out, h)
		}
	}
	return out
}
