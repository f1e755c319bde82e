package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/backendim/brain/testkit/kubetest"
)

// workerUser is the identity the local control plane gives the worker: the ServiceAccount of
// deploy/kubernetes/base/worker-rbac.yaml, with exactly that RBAC.
const workerUser = "system:serviceaccount:brain:brain-worker"

// clusterEnv chooses the cluster the worker deploys to: the one in KUBECONFIG when set, otherwise
// a local control plane (kube-apiserver and etcd on 127.0.0.1, built on first use). The returned
// stop function ends the local control plane.
func clusterEnv(ctx context.Context, s settings, getenv func(string) string, say func(string, ...any)) (map[string]string, func(), error) {
	if kc := getenv("KUBECONFIG"); kc != "" {
		say("deploying to the cluster of KUBECONFIG=%s", kc)
		return map[string]string{"KUBE_AUTH": "kubeconfig", "KUBECONFIG": kc, "KUBE_CONTEXT": getenv("KUBE_CONTEXT")}, func() {}, nil
	}
	say("no KUBECONFIG: starting a local control plane (kube-apiserver + etcd on 127.0.0.1;")
	say("the first run builds them from Go modules, about 5-10 minutes, then they are cached)")
	env, stop, err := kubetest.StartMain()
	if err != nil {
		return nil, nil, err
	}
	kubeconfig, err := workerKubeconfig(ctx, env, s)
	if err != nil {
		stop()
		return nil, nil, err
	}
	say("local control plane at %s; the worker uses %s (RBAC of deploy/kubernetes/base/worker-rbac.yaml)", env.Admin.Host, kubeconfig)
	say("NOTE: this control plane runs no kubelet or controllers: objects are created, but Deployments never")
	say("become available, so the real deploy ends with health_timeout naming them. Use KUBECONFIG for a real cluster.")
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
