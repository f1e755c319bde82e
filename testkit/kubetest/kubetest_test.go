package kubetest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/backendim/brain/testkit/kubetest"
)

var kube *kubetest.Env

func TestMain(m *testing.M) {
	env, stop, err := kubetest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kube = env
	code := m.Run()
	stop()
	os.Exit(code)
}

func clientset(t *testing.T, cfg *rest.Config) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func whoAmI(t *testing.T, cfg *rest.Config) authnv1.UserInfo {
	t.Helper()
	r, err := clientset(t, cfg).AuthenticationV1().SelfSubjectReviews().Create(ctx(t), &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review: %v", err)
	}
	return r.Status.UserInfo
}

func TestIdentities(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    func(t *testing.T) *rest.Config
		user   string
		groups []string
	}{
		{"admin", func(*testing.T) *rest.Config { return kube.Admin }, "kubetest-admin", []string{"system:masters", "system:authenticated"}},
		{"user", func(t *testing.T) *rest.Config { return kube.User(t, "alice", "devs") }, "alice", []string{"devs", "system:authenticated"}},
		{"kubeconfig", func(t *testing.T) *rest.Config {
			path := kube.Kubeconfig(t, kube.User(t, "bob"))
			cfg, err := clientcmd.BuildConfigFromFlags("", path)
			if err != nil {
				t.Fatalf("load %s: %v", path, err)
			}
			return cfg
		}, "bob", []string{"system:authenticated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := whoAmI(t, tt.cfg(t))
			if diff := cmp.Diff(tt.user, got.Username); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.groups, got.Groups); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoopbackOnly(t *testing.T) {
	t.Parallel()
	if !strings.HasPrefix(kube.Admin.Host, "https://127.0.0.1:") {
		t.Errorf("API server at %s, want https://127.0.0.1:<port>", kube.Admin.Host)
	}
	cfg := rest.CopyConfig(kube.Admin)
	cfg.WarningHandler = rest.NoWarnings{} // v1 Endpoints is deprecated, and still what the reconciler writes
	ep, err := clientset(t, cfg).CoreV1().Endpoints("default").Get(ctx(t), "kubernetes", metav1.GetOptions{})
	if err == nil && len(ep.Subsets) > 0 {
		t.Errorf("endpoint reconciler ran: default/kubernetes has %v", ep.Subsets)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("get endpoints: %v", err)
	}
}

// readerRBAC grants USER the listing of namespaces.
const readerRBAC = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: kubetest-ns-reader-USER
rules:
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list]
---
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubetest-ns-reader-USER
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubetest-ns-reader-USER}
subjects:
- {kind: User, name: USER, apiGroup: rbac.authorization.k8s.io}
`

func TestUserHasOnlyGrantedRBAC(t *testing.T) {
	t.Parallel()
	user := fmt.Sprintf("carol-%d", time.Now().UnixNano()) // -count=2 runs this again on the same server
	cs := clientset(t, kube.User(t, user))
	if _, err := cs.CoreV1().Namespaces().List(ctx(t), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list namespaces before RBAC: err = %v, want forbidden", err)
	}
	objs := kubetest.Apply(t, kube.Admin, []byte(strings.ReplaceAll(readerRBAC, "USER", user)))
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	if diff := cmp.Diff([]string{"ClusterRole/kubetest-ns-reader-" + user, "ClusterRoleBinding/kubetest-ns-reader-" + user}, names); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	// The API server's RBAC authorizer learns of new bindings through a watch: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := cs.CoreV1().Namespaces().List(ctx(t), metav1.ListOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
			t.Fatalf("list namespaces after RBAC: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling the API server: there is no event to wait on
	}
	if _, err := cs.CoreV1().Secrets("default").List(ctx(t), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list secrets: err = %v, want forbidden", err)
	}
}

func TestApplyDefaultsNamespaceAndFails(t *testing.T) {
	t.Parallel()
	objs := kubetest.Apply(t, kube.Admin, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kubetest-cm"},"data":{"a":"b"}}`))
	if diff := cmp.Diff("default", objs[0].GetNamespace()); diff != "" {
		t.Errorf("namespace (-want +got):\n%s", diff)
	}
	tests := []struct{ name, yaml, want string }{
		{"unknown kind", "apiVersion: v1\nkind: Nope\nmetadata: {name: x}\n", "apply Nope/x"},
		{"no name", "apiVersion: v1\nkind: ConfigMap\n", "no kind or name"},
		{"invalid", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n", "apply ConfigMap/Bad_Name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := kubetest.ApplyYAML(ctx(t), kube.Admin, []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestAssetsFromEnv(t *testing.T) {
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "kube-apiserver"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, dir, want string }{
		{"working", kube.Assets, ""},
		{"missing", filepath.Join(empty, "nope"), "kube-apiserver from KUBEBUILDER_ASSETS"},
		{"not executable", empty, "is not an executable file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBEBUILDER_ASSETS", tt.dir)
			dir, err := kubetest.Assets()
			switch {
			case tt.want == "" && (err != nil || dir != tt.dir):
				t.Errorf("Assets() = %q, %v; want %q, nil", dir, err, tt.dir)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Assets() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestStartStopsAtCleanup(t *testing.T) {
	t.Parallel()
	var cfg *rest.Config
	t.Run("running", func(t *testing.T) {
		env := kubetest.Start(t)
		cfg = env.Admin
		if got := whoAmI(t, cfg).Username; got != "kubetest-admin" {
			t.Errorf("user = %q, want kubetest-admin", got)
		}
	})
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 5 * time.Second
	_, err := clientset(t, cfg).Discovery().ServerVersion()
	if err == nil {
		t.Fatal("API server still answers after its test ended")
	}
}
