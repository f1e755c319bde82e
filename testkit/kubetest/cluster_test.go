package kubetest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/backendim/brain/testkit/kubetest"
)

// TestCluster drives the full cluster through what the worker's health checks meet on a real
// one: every object below is acted on by the real controllers, the scheduler and kwok.
func TestCluster(t *testing.T) {
	t.Parallel()
	env := kubetest.StartCluster(t)
	cs := clientset(t, env.Admin)
	nodes, err := cs.CoreV1().Nodes().List(ctx(t), metav1.ListOptions{})
	if err != nil || len(nodes.Items) != kubetest.NodeCount {
		t.Fatalf("nodes: %d, %v; want %d", len(nodes.Items), err, kubetest.NodeCount)
	}
	tests := []struct {
		name     string
		manifest string
		until    func(ctx context.Context, cs kubernetes.Interface, ns string) (bool, string)
	}{
		{"deployment becomes available and its service gets endpoints", deploymentYAML("web", "", "") + "---\n" + serviceYAML,
			func(ctx context.Context, cs kubernetes.Interface, ns string) (bool, string) {
				d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
				if err != nil || d.Status.AvailableReplicas != 2 {
					return false, fmt.Sprintf("deployment: %v %+v", err, d.Status)
				}
				slices, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
				if err != nil || len(slices.Items) == 0 || readyEndpoints(slices.Items[0]) != 2 {
					return false, fmt.Sprintf("endpoint slices: %v %+v", err, slices)
				}
				return true, ""
			}},
		{"job completes", jobYAML(""), func(ctx context.Context, cs kubernetes.Interface, ns string) (bool, string) {
			return jobCondition(ctx, cs, ns, batchv1.JobComplete)
		}},
		{"failing job fails", jobYAML(kubetest.FailExit), func(ctx context.Context, cs kubernetes.Interface, ns string) (bool, string) {
			return jobCondition(ctx, cs, ns, batchv1.JobFailed)
		}},
		{"crash loop restarts and backs off", deploymentYAML("web", kubetest.FailCrashLoop, ""),
			podState(func(s corev1.ContainerStatus) bool {
				return s.RestartCount >= 2 && s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" &&
					s.LastTerminationState.Terminated != nil && s.LastTerminationState.Terminated.ExitCode == 3 &&
					s.LastTerminationState.Terminated.Message == "boom"
			})},
		{"image pull fails and backs off", deploymentYAML("web", kubetest.FailImagePull, ""),
			podState(func(s corev1.ContainerStatus) bool {
				return s.State.Waiting != nil && s.State.Waiting.Reason == "ImagePullBackOff"
			})},
		{"never ready", deploymentYAML("web", kubetest.FailNeverReady, ""),
			podState(func(s corev1.ContainerStatus) bool { return s.State.Running != nil && !s.Ready })},
		{"too big for any node is unschedulable", deploymentYAML("web", "", "64"),
			func(ctx context.Context, cs kubernetes.Interface, ns string) (bool, string) {
				pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
				if err != nil || len(pods.Items) == 0 {
					return false, fmt.Sprintf("pods: %v", err)
				}
				for _, c := range pods.Items[0].Status.Conditions {
					if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonUnschedulable &&
						strings.Contains(c.Message, "Insufficient cpu") {
						return true, ""
					}
				}
				return false, fmt.Sprintf("pod conditions: %+v", pods.Items[0].Status.Conditions)
			}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := fmt.Sprintf("cluster-%d", i)
			kubetest.Apply(t, env.Admin, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n"))
			kubetest.Apply(t, env.Admin, []byte(strings.ReplaceAll(tt.manifest, "NAMESPACE", ns)))
			c, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			var last string
			for {
				ok, why := tt.until(c, cs, ns)
				if ok {
					return
				}
				last = why
				select {
				case <-c.Done():
					t.Fatalf("not reached in 90s; last seen: %s\ncontrol plane output:\n%s", last, env.Output())
				case <-time.After(200 * time.Millisecond): // polling the API server: nothing to wait on
				}
			}
		})
	}
}

func deploymentYAML(name, fail, cpu string) string {
	labels := "app: " + name
	if fail != "" {
		labels += ", " + kubetest.FailLabel + ": " + fail
	}
	resources := ""
	if cpu != "" {
		resources = "\n        resources: {requests: {cpu: \"" + cpu + "\"}}"
	}
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `, namespace: NAMESPACE}
spec:
  replicas: 2
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata:
      labels: {` + labels + `}
      annotations: {` + kubetest.ExitCodeAnnotation + `: "3", ` + kubetest.MessageAnnotation + `: boom}
    spec:
      containers:
      - name: app
        image: registry.invalid/app:1` + resources + "\n"
}

const serviceYAML = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: NAMESPACE}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`

func jobYAML(fail string) string {
	labels := "{}"
	if fail != "" {
		labels = "{" + kubetest.FailLabel + ": " + fail + "}"
	}
	return `apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: NAMESPACE}
spec:
  backoffLimit: 0
  template:
    metadata: {labels: ` + labels + `}
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: registry.invalid/migrate:1}]
`
}

func jobCondition(ctx context.Context, cs kubernetes.Interface, ns string, want batchv1.JobConditionType) (bool, string) {
	j, err := cs.BatchV1().Jobs(ns).Get(ctx, "migrate", metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	for _, c := range j.Status.Conditions {
		if c.Type == want && c.Status == corev1.ConditionTrue {
			return true, ""
		}
	}
	return false, fmt.Sprintf("job status: %+v", j.Status)
}

// podState waits until every container of some pod of the namespace satisfies ok.
func podState(ok func(corev1.ContainerStatus) bool) func(context.Context, kubernetes.Interface, string) (bool, string) {
	return func(ctx context.Context, cs kubernetes.Interface, ns string) (bool, string) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, p := range pods.Items {
			all := len(p.Status.ContainerStatuses) > 0
			for _, s := range p.Status.ContainerStatuses {
				all = all && ok(s)
			}
			if all {
				return true, ""
			}
			seen = append(seen, fmt.Sprintf("%s %s %+v", p.Name, p.Status.Phase, p.Status.ContainerStatuses))
		}
		return false, strings.Join(seen, "; ")
	}
}

func readyEndpoints(s discoveryv1.EndpointSlice) int {
	n := 0
	for _, e := range s.Endpoints {
		if e.Conditions.Ready != nil && *e.Conditions.Ready {
			n++
		}
	}
	return n
}
