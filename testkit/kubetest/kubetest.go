// Package kubetest runs a real etcd and kube-apiserver on 127.0.0.1 for tests, with envtest
// (sigs.k8s.io/controller-runtime/pkg/envtest). No controller-manager, scheduler or kubelet runs:
// Deployments stay InProgress until a test writes their status, and deleted namespaces stay
// Terminating.
//
// The API server takes about 4 seconds to start, so share one per test package:
//
//	var kube *kubetest.Env
//
//	func TestMain(m *testing.M) {
//		env, stop, err := kubetest.StartMain()
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		kube = env
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
//
// The binaries come from the directory in KUBEBUILDER_ASSETS, or else from the project's
// scripts/kube-test-bins.sh, which builds them once and caches them. A missing binary fails the
// test; it never skips.
package kubetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Env is a running API server.
type Env struct {
	// Admin is a client configuration for a member of system:masters.
	Admin *rest.Config
	// Assets is the directory that holds the kube-apiserver and etcd binaries.
	Assets string

	env      *envtest.Environment
	usersMu  sync.Mutex
	out      *tailBuffer
	stopOnce sync.Once
	stopErr  error
}

// Start starts an API server that is stopped when the test ends. It fails the test when the
// server cannot be started.
func Start(t testing.TB) *Env {
	t.Helper()
	e, err := start()
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("kubetest: %v", err)
		}
	})
	return e
}

// StartMain starts an API server outside any test, for TestMain or a development tool. The
// returned function stops it; call it before the process exits, or etcd and kube-apiserver outlive
// it.
func StartMain() (*Env, func(), error) {
	e, err := start()
	if err != nil {
		return nil, nil, fmt.Errorf("kubetest: %w", err)
	}
	return e, func() {
		if err := e.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kubetest: %v\n", err)
		}
	}, nil
}

func start() (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	out := newTailBuffer(16 << 10)
	useExisting := false
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		UseExistingCluster:    &useExisting,
	}
	env.ControlPlane.Etcd = &envtest.Etcd{
		Path: filepath.Join(assets, "etcd"),
		Out:  out,
		Err:  out,
	}
	api := env.ControlPlane.GetAPIServer()
	api.Path = filepath.Join(assets, "kube-apiserver")
	api.Out, api.Err = out, out
	args := api.Configure()
	args.Set("advertise-address", "127.0.0.1")
	args.Set("endpoint-reconciler-type", "none")
	// envtest's /24 runs out after 254 Services; benchmarks create many more.
	args.Set("service-cluster-ip-range", "10.0.0.0/16")
	if _, err := env.Start(); err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("start kube-apiserver and etcd from %s: %w\n%s", assets, err, out.String())
	}
	admin, err := env.AddUser(envtest.User{Name: "kubetest-admin", Groups: []string{"system:masters"}}, baseConfig())
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("add admin user: %w", err)
	}
	return &Env{Admin: rest.CopyConfig(admin.Config()), Assets: assets, env: env, out: out}, nil
}

// baseConfig is what every client of a test server starts from: no client-side rate limit worth
// the name, since tests and benchmarks should measure the server, not the throttle.
func baseConfig() *rest.Config {
	return &rest.Config{QPS: 1000, Burst: 2000}
}

// Stop stops the API server and etcd and removes their data. It may be called more than once.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		if err := e.env.Stop(); err != nil {
			e.stopErr = fmt.Errorf("stop kube-apiserver and etcd: %w", err)
		}
	})
	return e.stopErr
}

// Output returns the last lines etcd and kube-apiserver wrote, for a failing test's log.
func (e *Env) Output() string { return e.out.String() }

// User returns a client configuration for a user authenticated by a client certificate, with the
// given groups. The user has no permissions but those RBAC grants to the name or the groups.
func (e *Env) User(t testing.TB, name string, groups ...string) *rest.Config {
	t.Helper()
	cfg, err := e.AddUser(name, groups...)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return cfg
}

// AddUser is User for callers without a testing.TB. It is safe for concurrent use (envtest's own
// AddUser is not: its certificate authority's serial counter races).
func (e *Env) AddUser(name string, groups ...string) (*rest.Config, error) {
	e.usersMu.Lock()
	defer e.usersMu.Unlock()
	u, err := e.env.AddUser(envtest.User{Name: name, Groups: groups}, baseConfig())
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", name, err)
	}
	return rest.CopyConfig(u.Config()), nil
}

// Kubeconfig writes a kubeconfig file for cfg (Admin or a User) into a temporary directory of the
// test and returns its path.
func (e *Env) Kubeconfig(t testing.TB, cfg *rest.Config) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := WriteKubeconfig(path, cfg); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return path
}

// WriteKubeconfig writes a kubeconfig file for cfg to path, readable by its owner only. Its one
// context is named "kubetest".
func WriteKubeconfig(path string, cfg *rest.Config) error {
	if cfg == nil {
		return errors.New("write kubeconfig: nil config")
	}
	const name = "kubetest"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData,
		ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "default"}
	kc.CurrentContext = name
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
