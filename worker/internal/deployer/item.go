package deployer

import (
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/backendim/brain/proto"
)

// item is one object of a deploy: a repository object, or one Brain adds (the namespace and its
// guards).
type item struct {
	obj        *unstructured.Unstructured // Brain's copy, namespace filled in
	file       string                     // where it came from; empty for Brain's own objects
	line       int
	namespaced bool
	// crdKind: the kind is defined by a CRD of the same deploy, so it cannot be checked with the
	// API server before that CRD is applied.
	crdKind bool
}

// key is "Kind/name", the name users know an object by inside their namespace.
func (it *item) key() string { return it.obj.GetKind() + "/" + it.obj.GetName() }

// id identifies the object on the cluster.
func (it *item) id() object.ObjMetadata { return object.UnstructuredToObjMetadata(it.obj) }

// where is "file:line", or "" for Brain's own objects.
func (it *item) where() string {
	switch {
	case it.file == "":
		return ""
	case it.line > 0:
		return fmt.Sprintf("%s:%d", it.file, it.line)
	}
	return it.file
}

// describe is "Kind/name (file:line)" for messages.
func (it *item) describe() string {
	if w := it.where(); w != "" {
		return it.key() + " (" + w + ")"
	}
	return it.key()
}

func (it *item) result(action string) proto.ObjectResult {
	return proto.ObjectResult{Kind: it.obj.GetKind(), Namespace: it.obj.GetNamespace(),
		Name: it.obj.GetName(), File: it.file, Action: action}
}
