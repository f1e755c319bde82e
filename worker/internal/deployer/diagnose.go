package deployer

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/backendim/brain/proto"
)

// maxProblems is how many distinct pod problems one object's message names.
const maxProblems = 2

// limits are the thresholds past which the wait gives up on a pod.
type limits struct {
	crashLoopRestarts int32 // restarts of a crash-looping container
}

// rollsOut reports whether an object's health depends on pods it starts: the wait then looks at
// those pods to say what blocks it.
func rollsOut(h *health) bool {
	if h.live == nil {
		return false
	}
	switch h.live.GroupVersionKind().GroupKind().String() {
	case "Deployment.apps", "ReplicaSet.apps", "StatefulSet.apps", "DaemonSet.apps", "Job.batch", "Pod":
		return true
	}
	return false
}

// diagnose describes what a pending workload waits for, from its status and its pods', and sets
// h.failure when the outcome is known: an image that cannot be pulled, a crash loop, a rollout
// past its progress deadline, a failed Job.
func diagnose(h *health, pods []corev1.Pod, rss []appsv1.ReplicaSet, lim limits) {
	kind := h.live.GetKind()
	if kind == "Pod" {
		var pod corev1.Pod
		if runtime.DefaultUnstructuredConverter.FromUnstructured(h.live.Object, &pod) != nil {
			return
		}
		diagnosePod(h, pod, lim)
		return
	}
	own := podsOf(h.live, pods, rss)
	parts := []string{workloadSummary(h)}
	if msg := createFailure(h.live); msg != "" {
		parts = append(parts, msg)
	}
	problems, fatal := podProblems(own, lim)
	parts = append(parts, problems...)
	h.message = strings.Join(nonEmpty(parts), "; ")
	switch {
	case kind == "Job" && h.status == status.FailedStatus:
		h.failure = proto.Errorf(proto.CodeJobFailed, "%s failed%s%s", h.it.describe(), failureDetail(h.live),
			lastExit(own))
	case kind == "Deployment" && progressDeadlineExceeded(h.live):
		h.failure = proto.Errorf(proto.CodeProgressDeadline,
			"%s made no progress for %ds (ProgressDeadlineExceeded): %s", h.it.describe(),
			progressDeadline(h.live), h.message)
	case fatal != nil:
		h.failure = proto.Errorf(fatal.code, "%s: %s", h.it.describe(), fatal.text)
	case h.status == status.FailedStatus:
		h.failure = proto.Errorf(proto.CodeHealthFailed, "%s failed: %s%s", h.it.describe(), h.message,
			failureDetail(h.live))
	}
}

// diagnosePod judges a Pod the repository deploys itself. kstatus calls a crash-looping or
// unschedulable pod Failed at once; Brain applies its own limits instead.
func diagnosePod(h *health, pod corev1.Pod, lim limits) {
	problems, fatal := podProblems([]corev1.Pod{pod}, lim)
	if h.status == status.FailedStatus {
		h.status = status.InProgressStatus
	}
	if len(problems) > 0 {
		h.message = strings.Join(problems, "; ")
	}
	switch {
	case fatal != nil:
		h.failure = proto.Errorf(fatal.code, "%s: %s", h.it.describe(), fatal.text)
	case pod.Status.Phase == corev1.PodFailed:
		h.status = status.FailedStatus
		h.failure = proto.Errorf(proto.CodeHealthFailed, "%s failed%s", h.it.describe(), lastExit([]corev1.Pod{pod}))
	}
}

// podsOf returns the pods of an object's current rollout: for a Deployment those of its newest
// ReplicaSet, otherwise those it controls.
func podsOf(live *unstructured.Unstructured, pods []corev1.Pod, rss []appsv1.ReplicaSet) []corev1.Pod {
	owner := live.GetUID()
	if live.GetKind() == "Deployment" {
		owner = newestReplicaSet(owner, rss)
	}
	var out []corev1.Pod
	for _, p := range pods {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == owner && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// newestReplicaSet is the UID of the ReplicaSet of a Deployment's latest revision.
func newestReplicaSet(deployment types.UID, rss []appsv1.ReplicaSet) types.UID {
	var uid types.UID
	best := -1
	for _, rs := range rss {
		ref := metav1.GetControllerOf(&rs)
		if ref == nil || ref.UID != deployment {
			continue
		}
		if rev, err := strconv.Atoi(rs.Annotations["deployment.kubernetes.io/revision"]); err == nil && rev > best {
			best, uid = rev, rs.UID
		}
	}
	return uid
}

// workloadSummary counts a workload's replicas (or a Job's completions), or repeats kstatus.
func workloadSummary(h *health) string {
	obj := h.live.Object
	num := func(fields ...string) int64 {
		v, _, _ := unstructured.NestedInt64(obj, fields...)
		return v
	}
	want, found, _ := unstructured.NestedInt64(obj, "spec", "replicas")
	if !found {
		want = 1
	}
	switch h.live.GetKind() {
	case "Deployment", "StatefulSet", "ReplicaSet":
		switch ready, avail, updated := num("status", "readyReplicas"), num("status", "availableReplicas"),
			num("status", "updatedReplicas"); {
		case ready < want:
			return fmt.Sprintf("%d/%d replicas ready", ready, want)
		case h.live.GetKind() == "Deployment" && avail < want:
			return fmt.Sprintf("%d/%d replicas available", avail, want)
		case h.live.GetKind() != "ReplicaSet" && updated < want:
			return fmt.Sprintf("%d/%d replicas updated", updated, want)
		}
	case "DaemonSet":
		if ready, want := num("status", "numberReady"), num("status", "desiredNumberScheduled"); ready < want {
			return fmt.Sprintf("%d/%d pods ready", ready, want)
		}
	case "Job":
		completions, found, _ := unstructured.NestedInt64(obj, "spec", "completions")
		if !found {
			completions = 1
		}
		return fmt.Sprintf("%d/%d completions", num("status", "succeeded"), completions)
	}
	return h.message
}

// createFailure says why a controller cannot create the workload's pods (its ReplicaFailure
// condition): a quota, Pod Security, another admission refusal.
func createFailure(live *unstructured.Unstructured) string {
	if !hasCondition(live, "ReplicaFailure") {
		return ""
	}
	msg, _ := condition(live, "ReplicaFailure")["message"].(string)
	return refusal(msg)
}

var (
	quotaRE       = regexp.MustCompile(`exceeded quota: ([^,]+), requested: (\S+), used: (\S+), limited: (\S+)`)
	podSecurityRE = regexp.MustCompile(`violates PodSecurity "([^"]+)": (.*)`)
)

// refusal turns the API server's refusal of a pod into words: "quota brain-quota exceeded:
// requested cpu 4 (2 allowed, 0 in use)".
func refusal(msg string) string {
	if m := quotaRE.FindStringSubmatch(msg); m != nil {
		return "quota " + m[1] + " exceeded: " + quotaExcess(m[2], m[3], m[4])
	}
	if m := podSecurityRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("pods refused by Pod Security %q: %s", m[1], clean(m[2], maxQuote))
	}
	if _, rest, ok := strings.Cut(msg, "is forbidden: "); ok {
		msg = rest
	}
	return "cannot create pods: " + clean(msg, maxQuote)
}

// quotaExcess names each resource whose request does not fit: "requested cpu 4 (2 allowed, 0 in use)".
func quotaExcess(requested, used, limited string) string {
	parse := func(s string) map[string]string {
		out := map[string]string{}
		for _, kv := range strings.Split(s, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				out[k] = v
			}
		}
		return out
	}
	req, use, lim := parse(requested), parse(used), parse(limited)
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(req)) {
		r, errR := resource.ParseQuantity(req[name])
		u, errU := resource.ParseQuantity(use[name])
		l, errL := resource.ParseQuantity(lim[name])
		if errR == nil && errU == nil && errL == nil {
			sum := u.DeepCopy()
			sum.Add(r)
			if sum.Cmp(l) <= 0 {
				continue // this one fits
			}
		}
		parts = append(parts, fmt.Sprintf("requested %s %s (%s allowed, %s in use)", quotaResource(name), req[name],
			lim[name], use[name]))
	}
	if len(parts) == 0 {
		return "requested " + requested + " (limits " + limited + ", in use " + used + ")"
	}
	return strings.Join(parts, ", ")
}

// quotaResource is a quota resource in words: "requests.cpu" → "cpu", "limits.memory" → "memory limit".
func quotaResource(name string) string {
	if r, ok := strings.CutPrefix(name, "requests."); ok {
		return r
	}
	if r, ok := strings.CutPrefix(name, "limits."); ok {
		return r + " limit"
	}
	return name
}

func progressDeadlineExceeded(live *unstructured.Unstructured) bool {
	c := condition(live, "Progressing")
	return c != nil && c["status"] == "False" && c["reason"] == "ProgressDeadlineExceeded"
}

// hasCondition reports whether live has condition typ with status True.
func hasCondition(live *unstructured.Unstructured, typ string) bool {
	c := condition(live, typ)
	return c != nil && c["status"] == "True"
}

// condition returns live's status condition of type typ, or nil.
func condition(live *unstructured.Unstructured, typ string) map[string]any {
	conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == typ {
			return m
		}
	}
	return nil
}

func progressDeadline(live *unstructured.Unstructured) int64 {
	s, found, _ := unstructured.NestedInt64(live.Object, "spec", "progressDeadlineSeconds")
	if !found {
		return 600
	}
	return s
}

// lastExit quotes how the last failed container of pods ended: "; pod x: container y exited with
// code 1: <its termination message>".
func lastExit(pods []corev1.Pod) string {
	for i := len(pods) - 1; i >= 0; i-- {
		for _, cs := range slices.Concat(pods[i].Status.InitContainerStatuses, pods[i].Status.ContainerStatuses) {
			t := cs.State.Terminated
			if t == nil {
				t = cs.LastTerminationState.Terminated
			}
			if t != nil && t.ExitCode != 0 {
				return fmt.Sprintf("; pod %s: container %s %s", pods[i].Name, cs.Name, exitText(t))
			}
		}
	}
	return ""
}

func nonEmpty(parts []string) []string {
	return slices.DeleteFunc(parts, func(s string) bool { return s == "" })
}
