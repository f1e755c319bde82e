package deployer

import (
	"context"
	"encoding/json"
	"fmt"

	"golang.org/x/sync/errgroup"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/version"
)

// Access is a set of permissions the worker needs on one resource, in every namespace.
type Access struct {
	Group    string
	Resource string
	Verbs    []string
}

// RequiredAccess is the worker's RBAC: exactly the rules of the ClusterRole in
// deploy/kubernetes/base/worker-rbac.yaml (a test keeps the two equal).
func RequiredAccess() []Access {
	objectVerbs := []string{"get", "list", "create", "patch", "delete"}
	var out []Access
	add := func(group string, verbs []string, resources ...string) {
		for _, r := range resources {
			out = append(out, Access{Group: group, Resource: r, Verbs: verbs})
		}
	}
	add("", []string{"get", "list", "create", "patch"}, "namespaces")
	add("", objectVerbs, "configmaps", "secrets", "services", "serviceaccounts", "persistentvolumeclaims",
		"pods", "resourcequotas", "limitranges")
	add("apps", objectVerbs, "deployments", "statefulsets", "daemonsets", "replicasets")
	add("batch", objectVerbs, "jobs", "cronjobs")
	add("networking.k8s.io", objectVerbs, "ingresses", "networkpolicies")
	add("autoscaling", objectVerbs, "horizontalpodautoscalers")
	add("policy", objectVerbs, "poddisruptionbudgets")
	add(rbacGroup, objectVerbs, "roles", "rolebindings")
	return out
}

// Report is what `worker doctor` prints: who the worker is on the cluster and whether it holds
// every permission of RequiredAccess.
type Report struct {
	Server  string   `json:"server"`
	Version string   `json:"version"`
	User    string   `json:"user"`
	Groups  []string `json:"groups"`
	Checks  []Check  `json:"checks"`
}

// Check is one verb on one resource, cluster-wide.
type Check struct {
	Group    string `json:"group"`
	Resource string `json:"resource"`
	Verb     string `json:"verb"`
	Allowed  bool   `json:"allowed"`
	Reason   string `json:"reason,omitempty"`
}

// Missing lists the checks that failed.
func (r Report) Missing() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.Allowed {
			out = append(out, c)
		}
	}
	return out
}

// Doctor asks the API server who the worker is (SelfSubjectReview) and whether it may do each
// verb of RequiredAccess in all namespaces (SelfSubjectAccessReview).
func (d *Deployer) Doctor(ctx context.Context) (Report, error) {
	rep := Report{Server: d.host}
	raw, err := d.disc.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return rep, d.clusterError("read the server version", err)
	}
	var v version.Info
	if err := json.Unmarshal(raw, &v); err != nil {
		return rep, fmt.Errorf("doctor: decode /version: %w", err)
	}
	rep.Version = v.GitVersion
	review := &authnv1.SelfSubjectReview{}
	if err := d.client.Create(ctx, review); err != nil {
		return rep, d.clusterError("ask who Brain is (SelfSubjectReview)", err)
	}
	rep.User, rep.Groups = review.Status.UserInfo.Username, review.Status.UserInfo.Groups
	for _, a := range RequiredAccess() {
		for _, verb := range a.Verbs {
			rep.Checks = append(rep.Checks, Check{Group: a.Group, Resource: a.Resource, Verb: verb})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i := range rep.Checks {
		c := &rep.Checks[i]
		g.Go(func() error {
			sar := &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authzv1.ResourceAttributes{Group: c.Group, Resource: c.Resource, Verb: c.Verb}}}
			if err := d.client.Create(gctx, sar); err != nil {
				return d.clusterError(fmt.Sprintf("check %s %s (SelfSubjectAccessReview)", c.Verb, c.Resource), err)
			}
			c.Allowed, c.Reason = sar.Status.Allowed, sar.Status.Reason
			return nil
		})
	}
	return rep, g.Wait()
}
