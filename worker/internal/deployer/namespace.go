package deployer

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Labels and annotations Brain sets.
const (
	labelDomain     = "brain.dev"
	managedByLabel  = "app.kubernetes.io/managed-by" // "brain" on the namespace and Brain's own objects
	managedByValue  = "brain"
	ownerLabel      = labelDomain + "/namespace" // on every object Brain applies: the chat namespace whose inventory holds it
	userLabel       = labelDomain + "/user"      // on the namespace: the userId, made label-safe
	chatLabel       = labelDomain + "/chat"      // on the namespace: the chatId, made label-safe
	userIDAnno      = labelDomain + "/user-id"   // on the namespace: the exact userId
	chatIDAnno      = labelDomain + "/chat-id"   // on the namespace: the exact chatId
	podSecurityWarn = "pod-security.kubernetes.io/warn"

	podSecurityEnforceLabel = "pod-security.kubernetes.io/enforce"
)

// Names of Brain's objects in every chat namespace.
const (
	inventoryName     = "brain-inventory"
	quotaName         = "brain-quota"
	limitRangeName    = "brain-limits"
	networkPolicyName = "brain-isolation"
)

// namespaceItem is the chat's Namespace as Brain applies it.
func (d *Deployer) namespaceItem(req Request) *item {
	labels := map[string]any{
		managedByLabel: managedByValue,
		userLabel:      labelValue(req.UserID),
		chatLabel:      labelValue(req.ChatID),
	}
	if level := d.opts.Guards.PodSecurity; level != "" {
		labels[podSecurityEnforceLabel] = level
		labels[podSecurityWarn] = level
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata": map[string]any{
			"name":        req.Namespace,
			"labels":      labels,
			"annotations": map[string]any{userIDAnno: req.UserID, chatIDAnno: req.ChatID},
		},
	}}
	return &item{obj: obj}
}

// guardItems are the enabled guard objects; disabledGuards the ones switched off, which Brain
// deletes if an earlier deploy created them.
func (d *Deployer) guardItems(ns string) (enabled, disabled []*item) {
	g := d.opts.Guards
	add := func(on bool, apiVersion, kind, name string, spec map[string]any) {
		obj := ownObject(apiVersion, kind, ns, name)
		if !on {
			disabled = append(disabled, &item{obj: obj, namespaced: true})
			return
		}
		obj.Object["spec"] = spec
		enabled = append(enabled, &item{obj: obj, namespaced: true})
	}
	add(len(g.Quota) > 0, "v1", "ResourceQuota", quotaName, map[string]any{"hard": quantities(g.Quota)})
	limit := map[string]any{"type": "Container"}
	if len(g.LimitDefault) > 0 {
		limit["default"] = quantities(g.LimitDefault)
	}
	if len(g.LimitDefaultRequest) > 0 {
		limit["defaultRequest"] = quantities(g.LimitDefaultRequest)
	}
	add(len(limit) > 1, "v1", "LimitRange", limitRangeName, map[string]any{"limits": []any{limit}})
	add(g.NetworkPolicy, "networking.k8s.io/v1", "NetworkPolicy", networkPolicyName, map[string]any{
		"podSelector": map[string]any{},
		"policyTypes": []any{"Ingress"},
		"ingress":     []any{map[string]any{"from": []any{map[string]any{"podSelector": map[string]any{}}}}},
	})
	return enabled, disabled
}

// ownObject is an object Brain itself keeps in the chat namespace ns.
func ownObject(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata": map[string]any{
			"name":      name,
			"namespace": ns,
			"labels":    map[string]any{managedByLabel: managedByValue, ownerLabel: ns},
		},
	}}
}

// setOwner labels a repository object with the namespace whose inventory holds it, so a prune
// never deletes an object that another chat (or someone else) took over.
func setOwner(obj *unstructured.Unstructured, ns string) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ownerLabel] = ns
	obj.SetLabels(labels)
}

// labelValue makes a userId or chatId ([A-Za-z0-9_-]{1,64}) a valid label value: at most 63
// characters that start and end with a letter or digit.
func labelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	s = strings.Trim(s, "-_")
	if len(s) > validation.LabelValueMaxLength {
		s = strings.TrimRight(s[:validation.LabelValueMaxLength], "-_")
	}
	return s
}
