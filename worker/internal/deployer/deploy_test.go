package deployer_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/backendim/brain/proto"
)

const (
	settingsBlue = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: blue
`
	extraCM = `apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
data:
  a: "1"
`
	webService = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
`
)

// join makes one multi-document YAML file.
func join(docs ...string) string { return strings.Join(docs, "---\n") }

var appV1 = join(settingsBlue, extraCM, webService)

func TestFirstDeployCreatesNamespaceAndGuards(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	res, rec := deploy(t, d, c.request(objects(t, "k8s/app.yaml", appV1)))

	want := []string{
		"Namespace/" + c.ns + " created",
		"ResourceQuota/brain-quota created",
		"LimitRange/brain-limits created",
		"NetworkPolicy/brain-isolation created",
		"ConfigMap/settings created",
		"ConfigMap/extra created",
		"Service/web created",
	}
	if diff := cmp.Diff(want, rec.applying()); diff != "" {
		t.Errorf("applying events (-want +got):\n%s", diff)
	}
	for _, r := range res {
		if r.Status != "Current" {
			t.Errorf("%s/%s status %q, want Current", r.Kind, r.Name, r.Status)
		}
	}
	wantFiles := map[string]string{"settings": "k8s/app.yaml", "web": "k8s/app.yaml", "brain-quota": ""}
	for _, r := range res {
		if f, ok := wantFiles[r.Name]; ok && r.File != f {
			t.Errorf("%s file = %q, want %q", r.Name, r.File, f)
		}
	}

	ns := get(t, nsGVR, "", c.ns)
	if ns == nil {
		t.Fatalf("namespace %s not created", c.ns)
	}
	wantLabels := map[string]string{
		"app.kubernetes.io/managed-by":       "brain",
		"brain.dev/user":                     c.user,
		"brain.dev/chat":                     c.id,
		"pod-security.kubernetes.io/enforce": "baseline",
		"pod-security.kubernetes.io/warn":    "baseline",
		"kubernetes.io/metadata.name":        c.ns,
	}
	if diff := cmp.Diff(wantLabels, ns.GetLabels()); diff != "" {
		t.Errorf("namespace labels (-want +got):\n%s", diff)
	}
	guards := []struct {
		gvr  schema.GroupVersionResource
		name string
		path []string
		want any
	}{
		{schema.GroupVersionResource{Version: "v1", Resource: "resourcequotas"}, "brain-quota", []string{"spec", "hard", "pods"}, "50"},
		{schema.GroupVersionResource{Version: "v1", Resource: "limitranges"}, "brain-limits", []string{"spec", "limits"}, nil},
		{schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}, "brain-isolation", []string{"spec", "policyTypes"}, []any{"Ingress"}},
	}
	for _, g := range guards {
		obj := get(t, g.gvr, c.ns, g.name)
		if obj == nil {
			t.Errorf("%s %s not created", g.gvr.Resource, g.name)
			continue
		}
		if g.want == nil {
			continue
		}
		got, _, _ := unstructured.NestedFieldCopy(obj.Object, g.path...)
		if diff := cmp.Diff(g.want, got); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", g.name, strings.Join(g.path, "."), diff)
		}
	}
	if diff := cmp.Diff([]string{"ConfigMap/extra", "ConfigMap/settings", "Service/web"}, inventory(t, c.ns)); diff != "" {
		t.Errorf("inventory (-want +got):\n%s", diff)
	}
}

// inventory lists "Kind/name" of the chat's inventory ConfigMap.
func inventory(t testing.TB, ns string) []string {
	t.Helper()
	cm := get(t, cmGVR, ns, "brain-inventory")
	if cm == nil {
		return nil
	}
	data, _, _ := unstructured.NestedString(cm.Object, "data", "objects")
	var refs []struct{ Kind, Name string }
	if err := json.Unmarshal([]byte(data), &refs); err != nil {
		t.Fatalf("inventory %q: %v", data, err)
	}
	var out []string
	for _, r := range refs {
		out = append(out, r.Kind+"/"+r.Name)
	}
	return out
}

func TestRedeploy(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	deploy(t, d, c.request(objects(t, "app.yaml", appV1)))

	settingsGreen := strings.Replace(settingsBlue, "blue", "green", 1)
	steps := []struct {
		name      string
		manifests string
		want      map[string]string
		inventory []string
	}{
		{"unchanged", appV1, map[string]string{"ConfigMap/settings": "unchanged", "ConfigMap/extra": "unchanged",
			"Service/web": "unchanged"}, []string{"ConfigMap/extra", "ConfigMap/settings", "Service/web"}},
		{"changed", join(settingsGreen, extraCM, webService), map[string]string{"ConfigMap/settings": "configured", "ConfigMap/extra": "unchanged",
			"Service/web": "unchanged"}, []string{"ConfigMap/extra", "ConfigMap/settings", "Service/web"}},
		{"removed", join(settingsGreen, webService), map[string]string{"ConfigMap/settings": "unchanged", "ConfigMap/extra": "pruned",
			"Service/web": "unchanged"}, []string{"ConfigMap/settings", "Service/web"}},
	}
	for _, s := range steps {
		res, _ := deploy(t, d, c.request(objects(t, "app.yaml", s.manifests)))
		got := actions(res)
		for _, own := range []string{"Namespace/" + c.ns, "ResourceQuota/brain-quota", "LimitRange/brain-limits", "NetworkPolicy/brain-isolation"} {
			if got[own] != proto.ActionUnchanged {
				t.Errorf("%s: %s %s, want unchanged", s.name, own, got[own])
			}
			delete(got, own)
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s: actions (-want +got):\n%s", s.name, diff)
		}
		if diff := cmp.Diff(s.inventory, inventory(t, c.ns)); diff != "" {
			t.Errorf("%s: inventory (-want +got):\n%s", s.name, diff)
		}
	}
	if get(t, cmGVR, c.ns, "extra") != nil {
		t.Error("pruned ConfigMap/extra still exists")
	}
	cm := get(t, cmGVR, c.ns, "settings")
	if color, _, _ := unstructured.NestedString(cm.Object, "data", "color"); color != "green" {
		t.Errorf("settings color = %q, want green", color)
	}
}

func TestFailedApplyPrunesNothing(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	deploy(t, d, c.request(objects(t, "app.yaml", join(settingsBlue, extraCM))))

	green := strings.Replace(settingsBlue, "blue", "green", 1)
	broken := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: broken}\ndata: {port: 8080}\n"
	deployErr(t, d, c.request(objects(t, "app.yaml", join(green, broken))), proto.CodeInvalidObject)
	if get(t, cmGVR, c.ns, "extra") == nil {
		t.Error("a failed deploy pruned ConfigMap/extra")
	}
	cm := get(t, cmGVR, c.ns, "settings")
	if color, _, _ := unstructured.NestedString(cm.Object, "data", "color"); color != "blue" {
		t.Errorf("a failed deploy applied settings: color = %q", color)
	}

	res, rec := deploy(t, d, c.request(objects(t, "app.yaml", green)))
	want := map[string]string{"ConfigMap/settings": "configured", "ConfigMap/extra": "pruned"}
	got := actions(res)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s %s, want %s", k, got[k], v)
		}
	}
	for _, e := range rec.applying() {
		if strings.Contains(e, "broken") {
			t.Errorf("reported %q for an object that never existed", e)
		}
	}
	if diff := cmp.Diff([]string{"ConfigMap/settings"}, inventory(t, c.ns)); diff != "" {
		t.Errorf("inventory (-want +got):\n%s", diff)
	}
}
