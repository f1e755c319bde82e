package deployer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/event"
	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/backendim/brain/proto"
)

// health is the last known status of one object.
type health struct {
	it      *item
	live    *unstructured.Unstructured // as last read, with its status; nil before the first read
	status  status.Status
	message string
}

// pending says what an object still waits for: "Deployment/web: 1/3 replicas available".
func (h *health) pending() string {
	msg := h.message
	if r := replicasMessage(h); r != "" {
		msg = r
	}
	if msg == "" {
		msg = string(h.status)
	}
	return h.it.key() + ": " + msg
}

// healthSet is the status of every object of a wait, in the order of the deploy.
type healthSet struct {
	order []*health
	byID  map[object.ObjMetadata]*health
}

// wait polls the objects' kstatus until all are Current, one is Failed, or HealthTimeout passes,
// reporting what is pending every ProgressInterval. It fills in each item's final status.
func (r *run) wait(ctx context.Context, items []*item) (*healthSet, error) {
	d := r.d
	states := &healthSet{byID: make(map[object.ObjMetadata]*health, len(items))}
	ids := make(object.ObjMetadataSet, 0, len(items))
	for _, it := range items {
		h := &health{it: it, status: status.UnknownStatus}
		states.order = append(states.order, h)
		states.byID[it.id()] = h
		ids = append(ids, it.id())
	}
	pollCtx, stop := context.WithCancel(ctx)
	defer stop()
	events := d.poller.Poll(pollCtx, ids, polling.PollOptions{PollInterval: d.opts.PollInterval})
	timeout := time.NewTimer(d.opts.HealthTimeout)
	defer timeout.Stop()
	progress := time.NewTicker(d.opts.ProgressInterval)
	defer progress.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok { // the poller gave up on a request that timed out
				if err := ctx.Err(); err != nil {
					return states, fmt.Errorf("wait for %s: %w", r.req.Namespace, err)
				}
				return states, d.clusterError("read the status of the objects in "+r.req.Namespace,
					context.DeadlineExceeded)
			}
			done, err := r.observe(states, e)
			if done || err != nil {
				return states, err
			}
		case <-progress.C:
			r.reportPending(states)
		case <-timeout.C:
			list := pendingList(states)
			return states, proto.Errorf(proto.CodeHealthTimeout,
				"%d of %d objects were not healthy after %s: %s", len(list), len(states.order), d.opts.HealthTimeout,
				strings.Join(list, "; "))
		case <-ctx.Done():
			return states, fmt.Errorf("wait for %s: %w", r.req.Namespace, ctx.Err())
		}
	}
}

// observe records one poller event and says whether the wait is over.
func (r *run) observe(states *healthSet, e event.Event) (bool, error) {
	switch e.Type {
	case event.ErrorEvent:
		return true, r.d.clusterError("read the status of the objects in "+r.req.Namespace, e.Error)
	case event.ResourceUpdateEvent:
	default:
		return false, nil
	}
	h, ok := states.byID[e.Resource.Identifier]
	if !ok {
		return false, nil
	}
	h.status, h.message = e.Resource.Status, e.Resource.Message
	if h.status == status.NotFoundStatus && deletedWhenDone(h.it.obj) {
		h.status, h.message = status.CurrentStatus, "finished and deleted (ttlSecondsAfterFinished)"
	}
	if e.Resource.Resource != nil {
		h.live = e.Resource.Resource
	}
	if err := e.Resource.Error; err != nil {
		if unreachable(err) {
			return true, r.d.clusterError("read the status of "+h.it.key(), err)
		}
		if h.message == "" {
			h.message = err.Error()
		}
	}
	if h.status == status.FailedStatus {
		return true, proto.Errorf(proto.CodeHealthFailed, "%s failed: %s%s", h.it.describe(), h.message,
			failureDetail(h.live))
	}
	for _, s := range states.order {
		if s.status != status.CurrentStatus {
			return false, nil
		}
	}
	return true, nil
}

func (r *run) reportPending(states *healthSet) {
	list := pendingList(states)
	if len(list) == 0 {
		return
	}
	r.progress(proto.Message{Stage: proto.StageWaiting, Pending: list,
		Message: fmt.Sprintf("waiting for %d of %d objects to become healthy", len(list), len(states.order))})
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

// replicasMessage describes a workload's rollout in replicas, or returns "".
func replicasMessage(h *health) string {
	if h.live == nil {
		return ""
	}
	switch h.live.GetKind() {
	case "Deployment", "StatefulSet", "ReplicaSet":
	default:
		return ""
	}
	obj := h.live.Object
	want, found, _ := unstructured.NestedInt64(obj, "spec", "replicas")
	if !found {
		want = 1
	}
	field := "availableReplicas"
	if h.live.GetKind() == "StatefulSet" {
		field = "readyReplicas"
	}
	got, _, _ := unstructured.NestedInt64(obj, "status", field)
	if got >= want {
		return ""
	}
	word := strings.TrimSuffix(field, "Replicas")
	return fmt.Sprintf("%d/%d replicas %s", got, want, word)
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
		return " (" + strings.TrimSuffix(reason+": "+msg, ": ") + ")"
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
