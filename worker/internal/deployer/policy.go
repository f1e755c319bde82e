package deployer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/backendim/brain/proto"
)

const rbacGroup = "rbac.authorization.k8s.io"

// allowList is the parsed APPLY_ALLOWED_KINDS.
type allowList struct {
	kinds      map[string]bool           // "Kind": any group
	groupKinds map[schema.GroupKind]bool // "group/Kind"
}

func parseAllowList(entries []string) (allowList, error) {
	a := allowList{kinds: map[string]bool{}, groupKinds: map[schema.GroupKind]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		group, kind, grouped := strings.Cut(e, "/")
		if !grouped {
			group, kind = "", e
		}
		if kind == "" || strings.Contains(kind, "/") || (grouped && group == "") {
			return allowList{}, fmt.Errorf("allowed kind %q: want Kind or group/Kind", e)
		}
		if grouped {
			a.groupKinds[schema.GroupKind{Group: group, Kind: kind}] = true
		} else {
			a.kinds[kind] = true
		}
	}
	return a, nil
}

func (a allowList) allows(gk schema.GroupKind) bool { return a.kinds[gk.Kind] || a.groupKinds[gk] }

// reservedName is the name of the object of kind gk that Brain keeps in every chat namespace, or
// "". Repositories may not define these objects.
func reservedName(gk schema.GroupKind) string {
	switch gk {
	case schema.GroupKind{Kind: "ConfigMap"}:
		return inventoryName
	case schema.GroupKind{Kind: "ResourceQuota"}:
		return quotaName
	case schema.GroupKind{Kind: "LimitRange"}:
		return limitRangeName
	case schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:
		return networkPolicyName
	}
	return ""
}

// admit checks the whole set against the policy before anything is applied, and returns Brain's
// copies of the objects with their namespace filled in.
func (d *Deployer) admit(req Request) ([]*item, error) {
	crdScopes := definedKinds(req)
	items := make([]*item, 0, len(req.Objects))
	seen := make(map[object.ObjMetadata]*item, len(req.Objects))
	for i, o := range req.Objects {
		if o.Unstructured == nil || o.GetKind() == "" || o.GetName() == "" {
			return nil, proto.Errorf(proto.CodeInvalidObject, "object %d (%s:%d) has no kind or name", i+1, o.File, o.Line)
		}
		it := &item{obj: o.DeepCopy(), file: o.File, line: o.Line}
		if err := d.admitOne(req, it, crdScopes); err != nil {
			return nil, err
		}
		if prev, dup := seen[it.id()]; dup {
			return nil, proto.Errorf(proto.CodeInvalidObject, "%s is defined twice: in %s and in %s; keep one",
				it.key(), prev.where(), it.where())
		}
		seen[it.id()] = it
		items = append(items, it)
	}
	return items, nil
}

func (d *Deployer) admitOne(req Request, it *item, crdScopes map[schema.GroupKind]bool) error {
	gvk := it.obj.GroupVersionKind()
	gk := gvk.GroupKind()
	m, err := d.mapper.RESTMapping(gk, gvk.Version)
	switch {
	case err == nil:
		it.namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
	case meta.IsNoMatchError(err):
		namespaced, ok := crdScopes[gk]
		if !ok {
			return d.objectError(it, "look up the kind of", err)
		}
		it.namespaced, it.crdKind = namespaced, true
	default:
		return d.objectError(it, "look up the kind of", err)
	}
	if it.namespaced {
		switch ns := it.obj.GetNamespace(); ns {
		case "":
			it.obj.SetNamespace(req.Namespace)
		case req.Namespace:
		default:
			return proto.Errorf(proto.CodePolicyRefused,
				"%s names namespace %q; objects may only go to this chat's namespace %s: remove metadata.namespace",
				it.describe(), ns, req.Namespace)
		}
	} else {
		it.obj.SetNamespace("")
	}
	if it.obj.GetName() == reservedName(gk) {
		return proto.Errorf(proto.CodePolicyRefused, "%s uses a name Brain reserves for its own %s; rename it",
			it.describe(), gk.Kind)
	}
	if d.allowed.allows(gk) {
		return d.checkPodSecurity(it)
	}
	if !it.namespaced {
		return proto.Errorf(proto.CodePolicyRefused,
			"%s is cluster-scoped; Brain applies only namespaced objects into the chat's namespace (the operator can allow %s in APPLY_ALLOWED_KINDS)",
			it.describe(), gk.Kind)
	}
	if why := grantsPower(it.obj, req.Namespace); why != "" {
		return proto.Errorf(proto.CodePolicyRefused, "%s %s (the operator can allow %s in APPLY_ALLOWED_KINDS)",
			it.describe(), why, gk.Kind)
	}
	return nil
}

// definedKinds maps the kinds defined by CRDs of the request to whether they are namespaced.
func definedKinds(req Request) map[schema.GroupKind]bool {
	kinds := map[schema.GroupKind]bool{}
	for _, o := range req.Objects {
		if o.Unstructured == nil || o.GetKind() != "CustomResourceDefinition" ||
			o.GroupVersionKind().Group != "apiextensions.k8s.io" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		kinds[schema.GroupKind{Group: group, Kind: kind}] = scope == "Namespaced"
	}
	return kinds
}

// grantsPower says why a namespaced RBAC object would grant more than the chat's own namespace
// should get, or returns "".
func grantsPower(obj *unstructured.Unstructured, namespace string) string {
	if obj.GroupVersionKind().Group != rbacGroup {
		return ""
	}
	switch obj.GetKind() {
	case "RoleBinding":
		if kind, _, _ := unstructured.NestedString(obj.Object, "roleRef", "kind"); kind != "Role" {
			name, _, _ := unstructured.NestedString(obj.Object, "roleRef", "name")
			return fmt.Sprintf("binds %s %q; bind a Role of this namespace instead", kind, name)
		}
		subjects, _, _ := unstructured.NestedSlice(obj.Object, "subjects")
		for _, s := range subjects {
			m, _ := s.(map[string]any)
			kind, _ := m["kind"].(string)
			name, _ := m["name"].(string)
			ns, _ := m["namespace"].(string)
			if kind != "ServiceAccount" || (ns != "" && ns != namespace) {
				return fmt.Sprintf("grants a role to %s %q outside this namespace; only ServiceAccounts of %s may be bound",
					kind, strings.TrimPrefix(ns+"/"+name, "/"), namespace)
			}
		}
	case "Role":
		rules, _, _ := unstructured.NestedSlice(obj.Object, "rules")
		for _, r := range rules {
			m, _ := r.(map[string]any)
			verbs, resources := stringList(m["verbs"]), stringList(m["resources"])
			for _, v := range []string{"escalate", "bind", "impersonate"} {
				if slices.Contains(verbs, v) {
					return fmt.Sprintf("grants the %q verb, which hands out permissions Brain itself does not give", v)
				}
			}
			if slices.Contains(verbs, "*") && slices.ContainsFunc(resources, isPowerResource) {
				return "grants every verb on RBAC or identity resources; list the verbs the application needs"
			}
		}
	}
	return ""
}

func isPowerResource(r string) bool {
	switch r {
	case "*", "roles", "rolebindings", "users", "groups", "serviceaccounts":
		return true
	}
	return false
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// podSecurityRank orders the Pod Security Standards from least to most restrictive; an unknown or
// missing level ranks lowest.
func podSecurityRank(level string) int {
	return slices.Index([]string{"privileged", "baseline", "restricted"}, level)
}

// checkPodSecurity refuses an (allowed) Namespace object that would enforce a weaker Pod Security
// Standard than Brain gives its own namespaces.
func (d *Deployer) checkPodSecurity(it *item) error {
	want := d.opts.Guards.PodSecurity
	if want == "" || it.obj.GetKind() != "Namespace" || it.obj.GroupVersionKind().Group != "" {
		return nil
	}
	got := it.obj.GetLabels()[podSecurityEnforceLabel]
	if podSecurityRank(got) < podSecurityRank(want) {
		return proto.Errorf(proto.CodePolicyRefused,
			"%s must carry the label %s with level %q or stricter (it has %q)",
			it.describe(), podSecurityEnforceLabel, want, got)
	}
	return nil
}
