package deployer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

func TestParseGuards(t *testing.T) {
	t.Parallel()
	def := DefaultGuards()
	tests := []struct {
		name                  string
		quota, lr, np, podSec string
		want                  func() Guards
		wantErr               string
	}{
		{name: "defaults", want: DefaultGuards},
		{name: "explicit true", quota: "true", lr: "true", np: "true", want: DefaultGuards},
		{name: "all off", quota: "false", lr: "false", np: "false", podSec: "none", want: func() Guards { return Guards{} }},
		{name: "custom quota", quota: "pods=5, requests.cpu=500m", want: func() Guards {
			g := DefaultGuards()
			g.Quota = corev1.ResourceList{"pods": resource.MustParse("5"), "requests.cpu": resource.MustParse("500m")}
			return g
		}},
		{name: "custom limit range", lr: "default.cpu=1,defaultRequest.memory=64Mi", podSec: "restricted", want: func() Guards {
			g := DefaultGuards()
			g.LimitDefault = corev1.ResourceList{"cpu": resource.MustParse("1")}
			g.LimitDefaultRequest = corev1.ResourceList{"memory": resource.MustParse("64Mi")}
			g.PodSecurity = "restricted"
			return g
		}},
		{name: "bad quantity", quota: "pods=many", wantErr: "NAMESPACE_QUOTA"},
		{name: "bad quota entry", quota: "pods", wantErr: "want name=quantity"},
		{name: "bad limit range field", lr: "max.cpu=1", wantErr: "default.<resource>"},
		{name: "bad switch", np: "maybe", wantErr: "NAMESPACE_NETWORKPOLICY"},
		{name: "bad level", podSec: "strict", wantErr: "NAMESPACE_POD_SECURITY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseGuards(tt.quota, tt.lr, tt.np, tt.podSec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want(), got); diff != "" {
				t.Errorf("guards (-want +got):\n%s", diff)
			}
		})
	}
	if len(def.Quota) == 0 || len(def.LimitDefault) == 0 || !def.NetworkPolicy || def.PodSecurity != "baseline" {
		t.Errorf("defaults switch a guard off: %+v", def)
	}
}

func TestAllowList(t *testing.T) {
	t.Parallel()
	a, err := parseAllowList([]string{"ClusterRole", " scheduling.k8s.io/PriorityClass ", ""})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		gk   schema.GroupKind
		want bool
	}{
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, true},
		{schema.GroupKind{Group: "example.com", Kind: "ClusterRole"}, true},
		{schema.GroupKind{Group: "scheduling.k8s.io", Kind: "PriorityClass"}, true},
		{schema.GroupKind{Group: "example.com", Kind: "PriorityClass"}, false},
		{schema.GroupKind{Kind: "Namespace"}, false},
	}
	for _, tt := range tests {
		if got := a.allows(tt.gk); got != tt.want {
			t.Errorf("allows(%v) = %v, want %v", tt.gk, got, tt.want)
		}
	}
	for _, bad := range []string{"/Kind", "group/", "a/b/c"} {
		if _, err := parseAllowList([]string{bad}); err == nil {
			t.Errorf("parseAllowList(%q) accepted it", bad)
		}
	}
}

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestDiffSummary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, live, merged, want string
	}{
		{"scalar", "kind: ConfigMap\ndata: {a: '1'}", "kind: ConfigMap\ndata: {a: '2'}", `~ data.a: "1" → "2"`},
		{"added and removed", "kind: ConfigMap\ndata: {a: x}", "kind: ConfigMap\ndata: {b: x}", "- data.a\n+ data.b"},
		{"list element", "kind: Deployment\nspec: {template: {spec: {containers: [{image: a}]}}}",
			"kind: Deployment\nspec: {template: {spec: {containers: [{image: b}]}}}",
			`~ spec.template.spec.containers[0].image: "a" → "b"`},
		{"labels, not status or other metadata", "kind: Service\nmetadata: {resourceVersion: '1', labels: {a: x}}\nstatus: {x: 1}",
			"kind: Service\nmetadata: {resourceVersion: '2', labels: {a: z}}\nstatus: {x: 2}", `~ metadata.labels.a: "x" → "z"`},
		{"dotted keys", "kind: ConfigMap\nmetadata: {annotations: {example.com/a: x}}", "kind: ConfigMap\nmetadata: {annotations: {example.com/a: z}}",
			`~ metadata.annotations["example.com/a"]: "x" → "z"`},
		{"secret values hidden", "kind: Secret\ndata: {a: eA==}", "kind: Secret\ndata: {a: eQ==}", "~ data.a"},
		{"replicas", "kind: Deployment\nspec: {replicas: 1}", "kind: Deployment\nspec: {replicas: 3}", "~ spec.replicas: 1 → 3"},
		{"null and long values", "kind: ConfigMap\ndata: {a: null, b: " + strings.Repeat("é", 50) + "}",
			"kind: ConfigMap\ndata: {a: x, b: z}", `~ data.a: null → "x"` + "\n" + `~ data.b: "` + strings.Repeat("é", 38) + `… → "z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, diffSummary(obj(t, tt.live), obj(t, tt.merged))); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
		})
	}
	var live, merged strings.Builder
	live.WriteString("kind: ConfigMap\ndata:\n")
	merged.WriteString("kind: ConfigMap\ndata:\n")
	for i := range 30 {
		live.WriteString("  k" + string(rune('A'+i)) + ": a\n")
		merged.WriteString("  k" + string(rune('A'+i)) + ": b\n")
	}
	lines := strings.Split(diffSummary(obj(t, live.String()), obj(t, merged.String())), "\n")
	if len(lines) != maxDiffLines+1 || lines[maxDiffLines] != "… and 10 more changes" {
		t.Errorf("long diff: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestLabelValue(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 62) + "_b"
	tests := map[string]string{
		"u1":       "u1",
		"User_One": "User_One",
		"-lead":    "lead",
		"trail_":   "trail",
		long:       strings.Repeat("a", 62),
	}
	for in, want := range tests {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGrantsPower(t *testing.T) {
	t.Parallel()
	const rb = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nroleRef: {kind: %s, name: r}\nsubjects: [%s]\n"
	const role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nrules: [{resources: [%s], verbs: [%s]}]\n"
	tests := []struct {
		name, y string
		refused bool
	}{
		{"binding own service account", fmt.Sprintf(rb, "Role", "{kind: ServiceAccount, name: app}"), false},
		{"binding own namespace explicitly", fmt.Sprintf(rb, "Role", "{kind: ServiceAccount, name: app, namespace: ns}"), false},
		{"binding a cluster role", fmt.Sprintf(rb, "ClusterRole", "{kind: ServiceAccount, name: app}"), true},
		{"binding another namespace's account", fmt.Sprintf(rb, "Role", "{kind: ServiceAccount, name: app, namespace: other}"), true},
		{"binding a user", fmt.Sprintf(rb, "Role", "{kind: User, name: alice}"), true},
		{"ordinary role", fmt.Sprintf(role, "configmaps", "get, list"), false},
		{"every verb on configmaps", fmt.Sprintf(role, "configmaps", "'*'"), false},
		{"every verb on roles", fmt.Sprintf(role, "roles", "'*'"), true},
		{"bind verb", fmt.Sprintf(role, "roles", "bind"), true},
		{"impersonate", fmt.Sprintf(role, "serviceaccounts", "impersonate"), true},
		{"not rbac", "apiVersion: example.com/v1\nkind: Role\nrules: [{verbs: [bind]}]\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			why := grantsPower(obj(t, tt.y), "ns")
			if (why != "") != tt.refused {
				t.Errorf("grantsPower = %q, want refused %v", why, tt.refused)
			}
		})
	}
}
