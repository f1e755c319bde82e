package deployer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/kubetest"
)

// TestRefusedSetsApplyNothing deploys a valid ConfigMap next to one refused object, into a fresh
// namespace and into an existing one, and checks that nothing of the set was applied.
func TestRefusedSetsApplyNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		code proto.Code
		want []string // in the message
	}{
		{"foreign namespace", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kube-system}\n",
			proto.CodePolicyRefused, []string{"ConfigMap/x", "bad.yaml:8", `"kube-system"`}},
		{"cluster-scoped kind", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\nrules: []\n",
			proto.CodePolicyRefused, []string{"ClusterRole/x", "cluster-scoped", "APPLY_ALLOWED_KINDS"}},
		{"namespace object", "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n",
			proto.CodePolicyRefused, []string{"Namespace/other", "cluster-scoped"}},
		{"webhook", "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: x}\n",
			proto.CodePolicyRefused, []string{"MutatingWebhookConfiguration/x"}},
		{"crd", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n",
			proto.CodePolicyRefused, []string{"CustomResourceDefinition/widgets.example.com"}},
		{"rolebinding to clusterrole", "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: x}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}\nsubjects: [{kind: ServiceAccount, name: default}]\n",
			proto.CodePolicyRefused, []string{"RoleBinding/x", `ClusterRole "admin"`}},
		{"rolebinding to outsider", "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: x}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\nsubjects: [{kind: Group, name: system:authenticated, apiGroup: rbac.authorization.k8s.io}]\n",
			proto.CodePolicyRefused, []string{"RoleBinding/x", "system:authenticated"}},
		{"role granting escalate", "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: x}\n" +
			"rules: [{apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [escalate]}]\n",
			proto.CodePolicyRefused, []string{"Role/x", "escalate"}},
		{"reserved name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: brain-inventory}\n",
			proto.CodePolicyRefused, []string{"ConfigMap/brain-inventory", "reserves"}},
		{"unknown kind", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n",
			proto.CodeInvalidObject, []string{"Widget/x", "bad.yaml:8", "example.com/v1"}},
		{"duplicate", settingsBlue, proto.CodeInvalidObject, []string{"ConfigMap/settings", "bad.yaml:1", "bad.yaml:8", "twice"}},
		{"invalid value", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 70000}]\n",
			proto.CodeInvalidObject, []string{"Service/web", "bad.yaml:8", "must be between 1 and 65535"}},
		{"invalid name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n",
			proto.CodeInvalidObject, []string{"ConfigMap/Bad_Name", "bad.yaml:8", "RFC 1123"}},
		{"wrong type", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flags}\ndata: {enabled: yes}\n",
			proto.CodeInvalidObject, []string{"ConfigMap/flags", "bad.yaml:8", "string"}},
		{"forbidden by the worker's rbac", "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\n" +
			"spec: {selector: {a: b}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: nginx}]}}}\n",
			proto.CodeInvalidObject, []string{"ReplicationController/rc", "cannot", "worker's ClusterRole"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDeployer(t, worker, testOptions())
			objs := objects(t, "bad.yaml", join(settingsBlue, tt.doc))
			for _, existing := range []bool{false, true} {
				c := newChat(t)
				if existing {
					deploy(t, d, c.request(objects(t, "other.yaml", extraCM)))
				}
				msg := deployErr(t, d, c.request(objs), tt.code)
				for _, w := range tt.want {
					if !strings.Contains(msg, w) {
						t.Errorf("existing namespace %v: message %q lacks %q", existing, msg, w)
					}
				}
				if !existing && get(t, nsGVR, "", c.ns) != nil {
					t.Errorf("refused deploy created namespace %s", c.ns)
				}
				if existing && get(t, cmGVR, c.ns, "settings") != nil {
					t.Errorf("refused deploy applied ConfigMap/settings")
				}
			}
		})
	}
}

func TestConflictWithAnotherManager(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	deploy(t, d, c.request(objects(t, "app.yaml", extraCM)))
	// Someone else takes data.color of ConfigMap/settings.
	kubetest.Apply(t, kube.Admin, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: "+c.ns+"}\ndata: {color: red}\n"))

	msg := deployErr(t, d, c.request(objects(t, "app.yaml", join(settingsBlue, extraCM))), proto.CodeApplyConflict)
	for _, w := range []string{"ConfigMap/settings", "app.yaml:1", kubetest.FieldManager, ".data.color", "APPLY_FORCE_CONFLICTS"} {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q lacks %q", msg, w)
		}
	}
	opts := testOptions()
	opts.ForceConflicts = true
	res, _ := deploy(t, newDeployer(t, worker, opts), c.request(objects(t, "app.yaml", join(settingsBlue, extraCM))))
	if a := actions(res)["ConfigMap/settings"]; a != proto.ActionConfigured {
		t.Errorf("forced apply: ConfigMap/settings %s, want configured", a)
	}
}

func TestChatsAreIsolated(t *testing.T) {
	t.Parallel()
	d := newDeployer(t, worker, testOptions())
	a, b := newChat(t), newChat(t)
	deploy(t, d, a.request(objects(t, "app.yaml", join(settingsBlue, extraCM))))
	deploy(t, d, b.request(objects(t, "app.yaml", join(strings.Replace(settingsBlue, "blue", "red", 1), extraCM))))

	// A drops extra: only A's is pruned.
	res, _ := deploy(t, d, a.request(objects(t, "app.yaml", settingsBlue)))
	if got := actions(res)["ConfigMap/extra"]; got != proto.ActionPruned {
		t.Errorf("chat A: ConfigMap/extra %s, want pruned", got)
	}
	if get(t, cmGVR, b.ns, "extra") == nil {
		t.Error("chat A's prune deleted chat B's ConfigMap/extra")
	}
	for ns, want := range map[string]string{a.ns: "blue", b.ns: "red"} {
		cm := get(t, cmGVR, ns, "settings")
		if got := cm.Object["data"].(map[string]any)["color"]; got != want {
			t.Errorf("%s settings color = %v, want %s", ns, got, want)
		}
	}
	// B cannot reach into A's namespace.
	into := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: evil, namespace: " + a.ns + "}\n"
	deployErr(t, d, b.request(objects(t, "app.yaml", into)), proto.CodePolicyRefused)
	if get(t, cmGVR, a.ns, "evil") != nil {
		t.Error("chat B wrote into chat A's namespace")
	}
	// Each namespace keeps other namespaces' traffic out.
	np := get(t, schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}, b.ns, "brain-isolation")
	if np == nil {
		t.Fatal("no NetworkPolicy brain-isolation in chat B's namespace")
	}
	wantIngress := []any{map[string]any{"from": []any{map[string]any{"podSelector": map[string]any{}}}}}
	if diff := cmp.Diff(wantIngress, np.Object["spec"].(map[string]any)["ingress"]); diff != "" {
		t.Errorf("ingress rules (-want +got):\n%s", diff)
	}
}

const priorityClass = "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: %s}\nvalue: 1000\n"

// TestAllowedKinds deploys a cluster-scoped kind that the operator allowed (and granted the worker
// RBAC for, as docs/kubernetes.md says to), then prunes it.
func TestAllowedKinds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const user = "system:serviceaccount:brain:brain-worker-priority"
	extra := `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: brain-worker-priority}
rules: [{apiGroups: [scheduling.k8s.io], resources: [priorityclasses], verbs: [get, list, create, patch, delete]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: brain-worker-priority}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: brain-worker-priority}
subjects: [{kind: User, name: "` + user + `", apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: brain-worker-priority-base}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: brain-worker}
subjects: [{kind: User, name: "` + user + `", apiGroup: rbac.authorization.k8s.io}]
`
	if _, err := kubetest.ApplyYAML(ctx, kube.Admin, []byte(extra)); err != nil {
		t.Fatal(err)
	}
	cfg := kube.User(t, user)
	c := newChat(t)
	name := "brain-test-" + c.id
	objs := objects(t, "prio.yaml", join(settingsBlue, strings.ReplaceAll(priorityClass, "%s", name)))
	pcGVR := schema.GroupVersionResource{Group: "scheduling.k8s.io", Version: "v1", Resource: "priorityclasses"}

	deployErr(t, newDeployer(t, cfg, testOptions()), c.request(objs), proto.CodePolicyRefused)
	opts := testOptions()
	opts.AllowedKinds = []string{"scheduling.k8s.io/PriorityClass"}
	d := newDeployer(t, cfg, opts)
	res, _ := deploy(t, d, c.request(objs))
	if got := actions(res)["PriorityClass/"+name]; got != proto.ActionCreated {
		t.Errorf("PriorityClass %s, want created", got)
	}
	if get(t, pcGVR, "", name) == nil {
		t.Fatalf("PriorityClass %s not created", name)
	}
	res, _ = deploy(t, d, c.request(objects(t, "prio.yaml", settingsBlue)))
	if got := actions(res)["PriorityClass/"+name]; got != proto.ActionPruned {
		t.Errorf("PriorityClass %s, want pruned", got)
	}
	if get(t, pcGVR, "", name) != nil {
		t.Errorf("PriorityClass %s not pruned", name)
	}
}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.%s.example.com
spec:
  group: %s.example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`

const widget = `apiVersion: %s.example.com/v1
kind: Widget
metadata:
  name: w
spec:
  size: 3
`

// TestCRDAndItsObjectsInOneDeploy: an operator who allows CRDs lets a repository bring a CRD and
// objects of its kind together; the kind is unknown to the cluster until the CRD is applied.
func TestCRDAndItsObjectsInOneDeploy(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	group := "g" + c.id
	user := "system:serviceaccount:brain:brain-worker-crd-" + c.id
	extra := strings.NewReplacer("USER", user, "GROUP", group+".example.com", "NAME", "brain-worker-crd-"+c.id).Replace(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: NAME}
rules:
- {apiGroups: [apiextensions.k8s.io], resources: [customresourcedefinitions], verbs: [get, list, create, patch, delete]}
- {apiGroups: [GROUP], resources: [widgets], verbs: [get, list, create, patch, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: NAME}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: NAME}
subjects: [{kind: User, name: "USER", apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: NAME-base}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: brain-worker}
subjects: [{kind: User, name: "USER", apiGroup: rbac.authorization.k8s.io}]
`)
	kubetest.Apply(t, kube.Admin, []byte(extra))
	opts := testOptions()
	opts.AllowedKinds = []string{"apiextensions.k8s.io/CustomResourceDefinition"}
	d := newDeployer(t, kube.User(t, user), opts)
	objs := objects(t, "crd.yaml", join(strings.ReplaceAll(widgetCRD, "%s", group), strings.ReplaceAll(widget, "%s", group)))

	dry := c.request(objs)
	dry.DryRun = true
	res, _ := deploy(t, d, dry)
	if got := actions(res); got["Widget/w"] != proto.ActionCreated || got["CustomResourceDefinition/widgets."+group+".example.com"] != proto.ActionCreated {
		t.Errorf("dry run actions = %v", got)
	}

	res, _ = deploy(t, d, c.request(objs))
	want := map[string]string{"CustomResourceDefinition/widgets." + group + ".example.com": "Current", "Widget/w": "Current"}
	got := statuses(res)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s status %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	wGVR := schema.GroupVersionResource{Group: group + ".example.com", Version: "v1", Resource: "widgets"}
	if get(t, wGVR, c.ns, "w") == nil {
		t.Error("Widget/w not created")
	}
}
