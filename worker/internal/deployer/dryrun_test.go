package deployer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/backendim/brain/proto"
)

// snapshot is every object of a namespace (kinds Brain deploys) with its resourceVersion.
func snapshot(t *testing.T, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, gvr := range []struct{ group, version, resource string }{
		{"", "v1", "configmaps"}, {"", "v1", "services"}, {"", "v1", "resourcequotas"}, {"", "v1", "limitranges"},
		{"networking.k8s.io", "v1", "networkpolicies"}, {"apps", "v1", "deployments"},
	} {
		list, err := admin(t).Resource(schema.GroupVersionResource{Group: gvr.group, Version: gvr.version, Resource: gvr.resource}).Namespace(ns).
			List(ctxFor(t, 10*time.Second), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			out[gvr.resource+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	if n := get(t, nsGVR, "", ns); n != nil {
		out["namespace"] = n.GetResourceVersion()
	}
	return out
}

func TestDryRunFirstDeployCreatesNothing(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	req := c.request(objects(t, "app.yaml", appV1))
	req.DryRun = true
	res, rec := deploy(t, d, req)
	want := []string{"Namespace/" + c.ns + " created", "ResourceQuota/brain-quota created",
		"LimitRange/brain-limits created", "NetworkPolicy/brain-isolation created",
		"ConfigMap/settings created", "ConfigMap/extra created", "Service/web created"}
	if diff := cmp.Diff(want, rec.applying()); diff != "" {
		t.Errorf("applying events (-want +got):\n%s", diff)
	}
	for _, r := range res {
		if r.Diff != "new object" || r.Status != "" {
			t.Errorf("%s/%s: diff %q status %q, want \"new object\" and no status", r.Kind, r.Name, r.Diff, r.Status)
		}
	}
	if get(t, nsGVR, "", c.ns) != nil {
		t.Errorf("dry run created namespace %s", c.ns)
	}
}

func TestDryRunInvalidObjectOnFirstDeploy(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	bad := `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 70000
`
	req := c.request(objects(t, "svc.yaml", join(settingsBlue, bad)))
	req.DryRun = true
	msg := deployErr(t, d, req, proto.CodeInvalidObject)
	for _, want := range []string{"Service/web", "svc.yaml:8", "70000"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	deploy(t, d, c.request(objects(t, "app.yaml", appV1)))
	before, inv := snapshot(t, c.ns), inventory(t, c.ns)

	green := strings.Replace(settingsBlue, "blue", "green", 1)
	newCM := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fresh}\ndata: {x: z}\n"
	req := c.request(objects(t, "app.yaml", join(green, webService, newCM)))
	req.DryRun = true
	res, _ := deploy(t, d, req)

	type got struct{ Action, Diff string }
	results := map[string]got{}
	for _, r := range res {
		results[r.Kind+"/"+r.Name] = got{r.Action, r.Diff}
	}
	want := map[string]got{
		"Namespace/" + c.ns:             {"unchanged", ""},
		"ResourceQuota/brain-quota":     {"unchanged", ""},
		"LimitRange/brain-limits":       {"unchanged", ""},
		"NetworkPolicy/brain-isolation": {"unchanged", ""},
		"ConfigMap/settings":            {"configured", `~ data.color: "blue" → "green"`},
		"Service/web":                   {"unchanged", ""},
		"ConfigMap/fresh":               {"created", "new object"},
		"ConfigMap/extra":               {"pruned", "would be deleted"},
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("dry run results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, snapshot(t, c.ns)); diff != "" {
		t.Errorf("dry run changed the cluster (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(inv, inventory(t, c.ns)); diff != "" {
		t.Errorf("dry run changed the inventory (-before +after):\n%s", diff)
	}
	if a := actions(res)["ConfigMap/extra"]; a != proto.ActionPruned {
		t.Errorf("ConfigMap/extra %s, want pruned", a)
	}
}
