package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/backendim/brain/testkit/kubetest"
)

// workerUser is the identity the local cluster gives the worker: the ServiceAccount of
// deploy/kubernetes/base/worker-rbac.yaml, with exactly that RBAC.
const workerUser = "system:serviceaccount:brain:brain-worker"

// clusterEnv chooses the cluster the worker deploys to: the one in KUBECONFIG when set, otherwise
// a local cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on
// 127.0.0.1, built on first use) whose etcd data lives in data/dev/kube, next to the NATS store,
// so that a restarted stack finds both as it left them. The returned stop function ends the
// local cluster.
func clusterEnv(ctx context.Context, s settings, logs *logFiles, getenv func(string) string, say func(string, ...any)) (map[string]string, func(), error) {
	if kc := getenv("KUBECONFIG"); kc != "" {
		say("deploying to the cluster of KUBECONFIG=%s; the NATS store in %s is kept across restarts", kc, s.data)
		return map[string]string{"KUBE_AUTH": "kubeconfig", "KUBECONFIG": kc, "KUBE_CONTEXT": getenv("KUBE_CONTEXT")}, func() {}, nil
	}
	say("no KUBECONFIG: starting a local cluster on 127.0.0.1 (etcd, kube-apiserver, kube-controller-manager,")
	say("kube-scheduler, and kwok's %d simulated nodes; the first run builds them from Go modules, about", kubetest.NodeCount)
	say("15 minutes, then they are cached in ~/.cache/brain). Its etcd data (%s) and the NATS store", filepath.Join(s.data, "kube"))
	say("(%s) are kept together across restarts; `make clean` resets both", filepath.Join(s.data, "nats"))
	env, err := kubetest.Launch(kubetest.Options{Cluster: true, Dir: filepath.Join(s.data, "kube"), Logs: logs.writer})
	if err != nil {
		return nil, nil, fmt.Errorf("%w\n(its logs are in %s; `make clean` starts afresh)", err, logs.dir)
	}
	stop := func() {
		if err := env.Stop(); err != nil {
			logs.note("devstack: stop the local cluster: %v", err)
		}
	}
	kubeconfig, err := workerKubeconfig(ctx, env, s)
	if err != nil {
		stop()
		return nil, nil, err
	}
	say("local cluster at %s; the worker uses %s (RBAC of deploy/kubernetes/base/worker-rbac.yaml)", env.Admin.Host, kubeconfig)
	say("NOTE: containers are simulated. kwok plays the kubelet: pods are scheduled onto its nodes and become")
	say("Ready, but no image is pulled and nothing runs. Use KUBECONFIG for a real cluster.")
	return map[string]string{"KUBE_AUTH": "kubeconfig", "KUBECONFIG": kubeconfig}, stop, nil
}

// workerKubeconfig applies the worker's RBAC and writes a kubeconfig for its identity.
func workerKubeconfig(ctx context.Context, env *kubetest.Env, s settings) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rbac, err := os.ReadFile(filepath.Join("deploy", "kubernetes", "base", "worker-rbac.yaml"))
	if err != nil {
		return "", fmt.Errorf("worker RBAC: %w", err)
	}
	ns := []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: brain}\n---\n")
	if _, err := kubetest.ApplyYAML(ctx, env.Admin, append(ns, rbac...)); err != nil {
		return "", fmt.Errorf("apply worker RBAC: %w", err)
	}
	cfg, err := env.AddUser(workerUser, "system:serviceaccounts", "system:serviceaccounts:brain")
	if err != nil {
		return "", err
	}
	path, err := filepath.Abs(filepath.Join(s.data, "kubeconfig"))
	if err != nil {
		return "", err
	}
	return path, kubetest.WriteKubeconfig(path, cfg)
}

// logFiles are the services' logs, one file per process under data/dev/logs, truncated at each
// start, so that the terminal shows only the deploy.
type logFiles struct {
	dir   string
	files map[string]*os.File
}

func openLogs(dir string) (*logFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	return &logFiles{dir: dir, files: map[string]*os.File{}}, nil
}

// writer returns the log file of a process, creating it on first use; on failure the output is
// dropped (and the failure noted in devstack.log).
func (l *logFiles) writer(name string) io.Writer {
	if f, ok := l.files[name]; ok {
		return f
	}
	f, err := os.OpenFile(filepath.Join(l.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		if name != "devstack" {
			l.note("devstack: log of %s: %v", name, err)
		}
		return io.Discard
	}
	l.files[name] = f
	return f
}

// note writes a line to devstack.log: what the stack itself has to say that does not belong on
// the terminal.
func (l *logFiles) note(format string, args ...any) {
	fmt.Fprintf(l.writer("devstack"), time.Now().UTC().Format(time.RFC3339)+" "+format+"\n", args...)
}

func (l *logFiles) close() {
	for _, f := range l.files {
		_ = f.Close()
	}
}
