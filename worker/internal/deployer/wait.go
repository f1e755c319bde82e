package deployer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/backendim/brain/proto"
)

// listLimit bounds the pods and ReplicaSets one status read lists in a namespace: a chat's pods
// are the attacker's to multiply, the worker's memory is not.
const listLimit = 200

// health is what the wait knows of one object.
type health struct {
	it      *item
	live    *unstructured.Unstructured // as last read; nil before the first read and when gone
	status  status.Status
	message string       // what it waits for, for a chat user: "1/2 replicas ready; pod web-…: …"
	failure *proto.Error // set when the object can no longer become healthy
}

// pending says what an object still waits for: "Deployment/web: 1/3 replicas ready".
func (h *health) pending() string {
	msg := h.message
	if msg == "" {
		msg = string(h.status)
	}
	return h.it.key() + ": " + msg
}

// healthSet is the status of every object of a wait, in the order of the deploy.
type healthSet struct {
	order []*health
}

// wait reads every object's status every PollInterval until all are Current, one can no longer
// become healthy, or HealthTimeout passes. It reports what is pending as soon as the first read
// is done, then whenever that changes (at most every ProgressMinInterval), and at least every
// ProgressInterval. It fills in each item's final status.
func (r *run) wait(ctx context.Context, items []*item) (*healthSet, error) {
	d := r.d
	states := &healthSet{}
	for _, it := range items {
		states.order = append(states.order, &health{it: it, status: status.UnknownStatus})
	}
	deadline := time.Now().Add(d.opts.HealthTimeout)
	rep := progressReporter{minGap: d.opts.ProgressMinInterval, repeat: d.opts.ProgressInterval}
	for {
		if err := r.readHealth(ctx, states); err != nil {
			return states, err
		}
		if f := states.failure(); f != nil {
			return states, f
		}
		list := pendingList(states)
		if len(list) == 0 {
			return states, nil
		}
		if rep.due(list, time.Now()) {
			r.progress(proto.Message{Stage: proto.StageWaiting, Pending: list,
				Message: fmt.Sprintf("waiting for %d of %d objects to become healthy", len(list), len(states.order))})
		}
		left := time.Until(deadline)
		if left <= 0 {
			return states, proto.Errorf(proto.CodeHealthTimeout,
				"%d of %d objects were not healthy after %s: %s", len(list), len(states.order), d.opts.HealthTimeout,
				strings.Join(list, "; "))
		}
		select {
		case <-time.After(min(d.opts.PollInterval, left)):
		case <-ctx.Done():
			return states, fmt.Errorf("wait for %s: %w", r.req.Namespace, ctx.Err())
		}
	}
}

// progressReporter decides when a "waiting" event is due: at the first read, on every change of
// what is pending but not sooner than minGap after the last one, and after repeat without change.
type progressReporter struct {
	minGap, repeat time.Duration
	last           []string
	at             time.Time
}

func (p *progressReporter) due(list []string, now time.Time) bool {
	switch {
	case p.at.IsZero(),
		!slices.Equal(list, p.last) && now.Sub(p.at) >= p.minGap,
		now.Sub(p.at) >= p.repeat:
		p.last, p.at = list, now
		return true
	}
	return false
}

// readHealth reads every object once, and the pods of those that roll out, and judges them.
func (r *run) readHealth(ctx context.Context, states *healthSet) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, h := range states.order {
		g.Go(func() error { return r.readObject(gctx, h) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var pending []*health
	for _, h := range states.order {
		if h.status != status.CurrentStatus && rollsOut(h) {
			pending = append(pending, h)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	pods, replicaSets, err := r.listPods(ctx)
	if err != nil {
		return err
	}
	lim := limits{crashLoopRestarts: r.d.opts.CrashLoopRestarts}
	for _, h := range pending {
		diagnose(h, pods, replicaSets, lim)
	}
	return nil
}

// readObject reads one object and computes its kstatus.
func (r *run) readObject(ctx context.Context, h *health) error {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(h.it.obj.GroupVersionKind())
	err := r.d.client.Get(ctx, client.ObjectKeyFromObject(h.it.obj), live)
	switch {
	case apierrors.IsNotFound(err):
		h.live, h.status, h.message = nil, status.NotFoundStatus, "not found: something deleted it"
		if deletedWhenDone(h.it.obj) {
			h.status, h.message = status.CurrentStatus, "finished and deleted (ttlSecondsAfterFinished)"
		}
		return nil
	case err != nil && (unreachable(err) || ctx.Err() != nil || errors.Is(err, context.Canceled)):
		return r.d.clusterError("read the status of "+h.it.key(), err)
	case err != nil:
		h.status, h.message = status.UnknownStatus, "cannot read its status: "+apiMessage(err)
		return nil
	}
	h.live = live
	res, err := status.Compute(live)
	if err != nil {
		h.status, h.message = status.UnknownStatus, "cannot tell its status: "+err.Error()
		return nil
	}
	h.status, h.message, h.failure = res.Status, res.Message, nil
	if h.status == status.CurrentStatus && h.it.obj.GroupVersionKind().GroupKind().String() == "Job.batch" &&
		!hasCondition(live, "Complete") {
		// kstatus calls a Job that started Current; Brain waits for it to complete, so that a
		// failing migration fails the deploy.
		h.status = status.InProgressStatus
	}
	if phase, _, _ := unstructured.NestedString(live.Object, "status", "phase"); h.it.obj.GetKind() == "Pod" &&
		h.it.obj.GroupVersionKind().Group == "" && phase == string(corev1.PodFailed) {
		h.status = status.FailedStatus // kstatus calls a failed pod Current: it has "completed"
	}
	if h.status == status.FailedStatus && !rollsOut(h) {
		h.failure = proto.Errorf(proto.CodeHealthFailed, "%s failed: %s%s", h.it.describe(), h.message,
			failureDetail(live))
	}
	return nil
}

// listPods lists the namespace's pods and ReplicaSets, at most listLimit of each.
func (r *run) listPods(ctx context.Context) ([]corev1.Pod, []appsv1.ReplicaSet, error) {
	var pods corev1.PodList
	if err := r.d.client.List(ctx, &pods, client.InNamespace(r.req.Namespace), client.Limit(listLimit)); err != nil {
		return nil, nil, r.d.clusterError("list the pods of "+r.req.Namespace, err)
	}
	var rss appsv1.ReplicaSetList
	if err := r.d.client.List(ctx, &rss, client.InNamespace(r.req.Namespace), client.Limit(listLimit)); err != nil {
		return nil, nil, r.d.clusterError("list the ReplicaSets of "+r.req.Namespace, err)
	}
	return pods.Items, rss.Items, nil
}

// failure is the first object that can no longer become healthy, or nil.
func (s *healthSet) failure() *proto.Error {
	for _, h := range s.order {
		if h.failure != nil {
			return h.failure
		}
	}
	return nil
}

// pendingList names every object that is not Current, in the order of the deploy.
func pendingList(states *healthSet) []string {
	var list []string
	for _, h := range states.order {
		if h.status != status.CurrentStatus {
			list = append(list, h.pending())
		}
	}
	return list
}

// failureDetail quotes the condition that says why an object failed: " (Reason: message)".
func failureDetail(live *unstructured.Unstructured) string {
	if live == nil {
		return ""
	}
	conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		typ, _ := m["type"].(string)
		st, _ := m["status"].(string)
		if st != "True" || (typ != "Failed" && typ != "Stalled" && typ != "ReplicaFailure") {
			continue
		}
		reason, _ := m["reason"].(string)
		msg, _ := m["message"].(string)
		return " (" + strings.TrimSuffix(reason+": "+clean(msg, maxQuote), ": ") + ")"
	}
	return ""
}

// deletedWhenDone reports whether obj is a Job that the cluster deletes once it has finished, so
// that its absence means success.
func deletedWhenDone(obj *unstructured.Unstructured) bool {
	if obj.GetKind() != "Job" || obj.GroupVersionKind().Group != "batch" {
		return false
	}
	_, found, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "ttlSecondsAfterFinished")
	return found
}
