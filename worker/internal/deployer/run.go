package deployer

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/backendim/brain/proto"
)

// run is one Deploy call.
type run struct {
	d       *Deployer
	req     Request
	log     *slog.Logger
	report  func(proto.Message)
	results []proto.ObjectResult
}

func (r *run) deploy(ctx context.Context) ([]proto.ObjectResult, error) {
	d, ns := r.d, r.req.Namespace
	if ns == "" {
		return nil, errors.New("deploy: request without namespace")
	}
	items, err := d.admit(r.req)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		setOwner(it.obj, ns)
	}
	nsExists, err := r.namespaceExists(ctx)
	if err != nil {
		return nil, err
	}
	if err := d.validate(ctx, items, nsExists); err != nil {
		return nil, err
	}
	if r.req.DryRun {
		return r.results, r.dryRun(ctx, items, nsExists)
	}
	own, err := r.applyNamespace(ctx, nsExists)
	if err != nil {
		return r.results, err
	}
	old, err := d.readInventory(ctx, ns)
	if err != nil {
		return r.results, err
	}
	want := make([]ref, len(items))
	for i, it := range items {
		want[i] = refOf(it.obj)
	}
	// Record new objects before applying them, so a deploy that fails half way leaves none behind
	// that a later prune would not know of.
	added := missing(want, old)
	if len(added) > 0 {
		if err := d.writeInventory(ctx, ns, append(slices.Clone(old), added...)); err != nil {
			return r.results, err
		}
	}
	if err := r.apply(ctx, items); err != nil {
		return r.results, err
	}
	stale := missing(old, want)
	if err := r.prune(ctx, stale); err != nil {
		return r.results, err
	}
	if len(stale) > 0 || len(added) > 0 {
		if err := d.writeInventory(ctx, ns, want); err != nil {
			return r.results, err
		}
	}
	r.log.Debug("applied", "objects", len(items), "pruned", len(stale))
	states, err := r.wait(ctx, append(own, items...))
	r.setStatuses(states)
	return r.results, err
}

func (r *run) namespaceExists(ctx context.Context) (bool, error) {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	err := r.d.client.Get(ctx, client.ObjectKey{Name: r.req.Namespace}, ns)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, r.d.clusterError("look up namespace "+r.req.Namespace, err)
}

// progress sends a progress message of this job.
func (r *run) progress(m proto.Message) {
	m.Type = proto.TypeProgress
	m.JobID, m.ChatID = r.req.JobID, r.req.ChatID
	r.report(m)
}

// applied records and reports what happened to one object.
func (r *run) applied(it *item, action, diff, message string) {
	res := it.result(action)
	res.Diff, res.Message = diff, message
	r.results = append(r.results, res)
	text := it.key() + " " + action
	if message != "" {
		text += ": " + message
	}
	r.progress(proto.Message{Stage: proto.StageApplying, Message: text, Object: &res})
}

// setStatuses copies the final health of each object into the results.
func (r *run) setStatuses(states *healthSet) {
	if states == nil {
		return
	}
	byKey := make(map[[3]string]*health, len(states.order))
	for _, h := range states.order {
		byKey[[3]string{h.it.obj.GetNamespace(), h.it.obj.GetKind(), h.it.obj.GetName()}] = h
	}
	for i := range r.results {
		res := &r.results[i]
		h, ok := byKey[[3]string{res.Namespace, res.Kind, res.Name}]
		if !ok || res.Action == proto.ActionPruned {
			continue
		}
		res.Status = string(h.status)
		if h.status != status.CurrentStatus {
			res.Message = h.pending()
		}
	}
}
