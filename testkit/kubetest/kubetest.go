// Package kubetest runs a real Kubernetes control plane on 127.0.0.1 for tests and for devstack.
//
// Two modes:
//   - Start and StartMain: etcd and kube-apiserver only, with envtest
//     (sigs.k8s.io/controller-runtime/pkg/envtest). Objects are validated, admitted and stored,
//     but nothing acts on them: Deployments stay InProgress, deleted namespaces stay Terminating.
//   - StartCluster and StartClusterMain (Options.Cluster): also kube-controller-manager,
//     kube-scheduler and kwok (sigs.k8s.io/kwok) with NodeCount simulated nodes, so objects roll
//     out as on a cluster — ReplicaSets, pods scheduled and Ready, Jobs completed, endpoints,
//     quotas counted — without running any container. A pod label (FailLabel) makes kwok simulate
//     a crash loop, an image that cannot be pulled, a pod that never gets ready, or a failing
//     container. Nothing listens but etcd and kube-apiserver, on 127.0.0.1.
//
// The API server takes about 4 seconds to start (the cluster a few more), so share one per test
// package:
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
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Env is a running control plane.
type Env struct {
	// Admin is a client configuration for a member of system:masters.
	Admin *rest.Config
	// Assets is the directory that holds the kube-apiserver and etcd binaries.
	Assets string

	env      *envtest.Environment
	cluster  *cluster // nil without Options.Cluster
	work     string   // kubetest's own files (keys, kubeconfigs, kwok's stages), removed by Stop
	usersMu  sync.Mutex
	out      *tailBuffer
	stopOnce sync.Once
	stopErr  error
}

// Start starts an API server that is stopped when the test ends. It fails the test when the
// server cannot be started.
func Start(t testing.TB) *Env {
	t.Helper()
	return startTest(t, Options{})
}

// StartCluster is Start with Options.Cluster: Deployments roll out, pods run on simulated nodes.
func StartCluster(t testing.TB) *Env {
	t.Helper()
	return startTest(t, Options{Cluster: true})
}

func startTest(t testing.TB, o Options) *Env {
	t.Helper()
	e, err := Launch(o)
	if err != nil {
		t.Fatal(err)
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
func StartMain() (*Env, func(), error) { return startMain(Options{}) }

// StartClusterMain is StartMain with Options.Cluster.
func StartClusterMain() (*Env, func(), error) { return startMain(Options{Cluster: true}) }

func startMain(o Options) (*Env, func(), error) {
	e, err := Launch(o)
	if err != nil {
		return nil, nil, err
	}
	return e, func() {
		if err := e.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kubetest: %v\n", err)
		}
	}, nil
}

// Options shape what Launch starts.
type Options struct {
	// Cluster also starts kube-controller-manager, kube-scheduler and kwok, with NodeCount
	// simulated nodes: Deployments get ReplicaSets and pods, the scheduler places pods (or says why
	// it cannot), kwok makes them run and become Ready (or fail, see FailLabel), Jobs complete,
	// Services get endpoints, namespaces are deleted, quotas are counted. No container runs.
	// Without it only etcd and kube-apiserver run: objects are stored and validated, nothing acts
	// on them.
	Cluster bool
	// Dir, when set, keeps etcd's data in Dir/etcd across a Stop and the next Launch, so a
	// restarted cluster has its objects back; its other files are renewed on every Launch.
	// By default everything lives in temporary directories that Stop removes.
	Dir string
	// Logs, when set, receives the output of each process (etcd, kube-apiserver,
	// kube-controller-manager, kube-scheduler, kwok). By default the last lines are kept for Output.
	Logs func(component string) io.Writer
}

// Launch starts a control plane as o says. Call Stop when done with it.
func Launch(o Options) (*Env, error) {
	e, err := launch(o)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	return e, nil
}

func launch(o Options) (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	out := newTailBuffer(16 << 10)
	logs := o.Logs
	if logs == nil {
		logs = func(string) io.Writer { return out }
	}
	work, err := workDir(o.Dir)
	if err != nil {
		return nil, err
	}
	saKey, saPub, err := writeServiceAccountKey(work)
	if err != nil {
		_ = os.RemoveAll(work)
		return nil, err
	}
	var paths [2]string
	for i, name := range []string{"etcd", "kube-apiserver"} {
		if paths[i], err = diesWithParent(work, filepath.Join(assets, name)); err != nil {
			_ = os.RemoveAll(work)
			return nil, err
		}
	}
	useExisting := false
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		UseExistingCluster:    &useExisting,
		// envtest's 20 s are too few on a busy machine: kube-apiserver then fails to start
		// (seen with a parallel build of Kubernetes running).
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  stopTimeout,
	}
	env.ControlPlane.Etcd = &envtest.Etcd{
		Path: paths[0],
		Out:  logs("etcd"),
		Err:  logs("etcd"),
	}
	if o.Dir != "" {
		env.ControlPlane.Etcd.DataDir = filepath.Join(o.Dir, "etcd")
	}
	api := env.ControlPlane.GetAPIServer()
	api.Path = paths[1]
	api.Out, api.Err = logs("kube-apiserver"), logs("kube-apiserver")
	api.CertDir = filepath.Join(work, "apiserver")
	if err := os.MkdirAll(api.CertDir, 0o700); err != nil {
		_ = os.RemoveAll(work)
		return nil, fmt.Errorf("work directory: %w", err)
	}
	args := api.Configure()
	args.Set("advertise-address", "127.0.0.1")
	args.Set("endpoint-reconciler-type", "none")
	// envtest's /24 runs out after 254 Services; benchmarks create many more.
	args.Set("service-cluster-ip-range", "10.0.0.0/16")
	args.Set("service-account-key-file", saPub)
	args.Set("service-account-signing-key-file", saKey)
	if o.Cluster {
		// envtest turns the ServiceAccount admission plugin off because no controller creates the
		// default ServiceAccounts; here one does, so pods get their ServiceAccount as on a cluster.
		args.Disable("disable-admission-plugins")
	}
	e := &Env{Assets: assets, env: env, out: out, work: work}
	if _, err := env.Start(); err != nil {
		_ = e.Stop()
		return nil, fmt.Errorf("start kube-apiserver and etcd from %s: %w\n%s", assets, err, out.String())
	}
	admin, err := env.AddUser(envtest.User{Name: "kubetest-admin", Groups: []string{"system:masters"}}, baseConfig())
	if err != nil {
		_ = e.Stop()
		return nil, fmt.Errorf("add admin user: %w", err)
	}
	e.Admin = rest.CopyConfig(admin.Config())
	if o.Cluster {
		controllers, err := e.AddUser("kubetest-controllers", "system:masters")
		if err != nil {
			_ = e.Stop()
			return nil, err
		}
		e.cluster, err = startCluster(controllers, assets, work, saKey, logs)
		if err != nil {
			_ = e.Stop()
			return nil, fmt.Errorf("%w\n%s", err, out.String())
		}
	}
	return e, nil
}

// workDir makes the directory of the files kubetest writes itself: dir/run, emptied, or a new
// temporary directory.
func workDir(dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "kubetest-")
		if err != nil {
			return "", fmt.Errorf("work directory: %w", err)
		}
		return d, nil
	}
	work := filepath.Join(dir, "run")
	if err := os.RemoveAll(work); err != nil {
		return "", fmt.Errorf("work directory: %w", err)
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return "", fmt.Errorf("work directory: %w", err)
	}
	return work, nil
}

// baseConfig is what every client of a test server starts from: no client-side rate limit worth
// the name, since tests and benchmarks should measure the server, not the throttle.
func baseConfig() *rest.Config {
	return &rest.Config{QPS: 1000, Burst: 2000}
}

// Stop stops the control plane (the cluster's components first, then kube-apiserver and etcd)
// and removes its files, except the etcd data of Options.Dir. It may be called more than once.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		var errs []error
		if e.cluster != nil {
			errs = append(errs, e.cluster.stop())
		}
		if err := e.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop kube-apiserver and etcd: %w", err))
		}
		errs = append(errs, os.RemoveAll(e.work))
		e.stopErr = errors.Join(errs...)
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
