package main

import (
	"context"
)

// clusterEnv chooses the cluster the worker deploys to: the one in KUBECONFIG when set, otherwise
// none yet (render only).
func clusterEnv(_ context.Context, _ settings, getenv func(string) string, say func(string, ...any)) (map[string]string, error) {
	if kc := getenv("KUBECONFIG"); kc != "" {
		say("deploying to the cluster of KUBECONFIG=%s", kc)
		return map[string]string{"KUBE_AUTH": "kubeconfig", "KUBECONFIG": kc}, nil
	}
	say("no KUBECONFIG: the worker renders manifests without applying them (KUBE_AUTH=none)")
	return map[string]string{"KUBE_AUTH": "none"}, nil
}
