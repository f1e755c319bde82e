package deployer

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/backendim/brain/proto"
)

func (d *Deployer) applyOptions() ssa.ApplyOptions {
	return ssa.ApplyOptions{WaitInterval: d.opts.PollInterval, WaitTimeout: d.opts.HealthTimeout}
}

// apply server-side applies items in stages (CRDs and namespaces first) and reports one event per
// object. When it fails, the objects of the stages that were applied are still reported.
func (r *run) apply(ctx context.Context, items []*item) error {
	objs := make([]*unstructured.Unstructured, len(items))
	for i, it := range items {
		objs[i] = it.obj
	}
	var cs *ssa.ChangeSet
	err := r.whileQuotaPending(ctx, func() error {
		var err error
		cs, err = r.d.rm.ApplyAllStaged(ctx, objs, r.d.applyOptions())
		return err
	})
	actions := map[object.ObjMetadata]ssa.Action{}
	if cs != nil {
		for _, e := range cs.Entries {
			actions[e.ObjMetadata] = e.Action
		}
	}
	for _, it := range items {
		if a, ok := actions[it.id()]; ok {
			r.applied(it, string(a), "", "")
		}
	}
	if err != nil {
		return r.d.applyError(items, err)
	}
	return nil
}

// quotaWait bounds how long an apply waits for the quota controller to count a new ResourceQuota.
const quotaWait = time.Minute

// whileQuotaPending runs apply again every PollInterval, for up to quotaWait, as long as the API
// server refuses objects because a ResourceQuota of the namespace has not been counted yet: right
// after Brain creates the namespace's quota (or the operator changes it), until the quota
// controller has filled in its status.
func (r *run) whileQuotaPending(ctx context.Context, apply func() error) error {
	deadline := time.Now().Add(quotaWait)
	reported := false
	for {
		err := apply()
		if err == nil || !quotaPending(err) || time.Now().After(deadline) {
			return err
		}
		if !reported {
			reported = true
			r.progress(proto.Message{Stage: proto.StageApplying,
				Message: "waiting for the cluster to count the namespace's ResourceQuota (" + apiMessage(err) + ")"})
		}
		t := time.NewTimer(r.d.opts.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// applyError names the object an error of ssa concerns, when it can be told.
func (d *Deployer) applyError(items []*item, err error) error {
	var dry *ssaerrors.DryRunErr
	for _, it := range items {
		switch {
		case errors.As(err, &dry) && dry.InvolvedObject() != nil &&
			object.UnstructuredToObjMetadata(dry.InvolvedObject()) == it.id():
			return d.objectError(it, "apply", dry.Unwrap())
		case strings.HasPrefix(err.Error(), utils.FmtUnstructured(it.obj)+" "):
			return d.objectError(it, "apply", err)
		}
	}
	return d.clusterError("apply the objects of "+items[0].obj.GetNamespace(), err)
}

// applyNamespace applies the chat's namespace and its guard objects, and deletes guards the operator
// has switched off since an earlier deploy created them. It returns the objects it applied.
func (r *run) applyNamespace(ctx context.Context, nsExists bool) ([]*item, error) {
	d := r.d
	own := []*item{d.namespaceItem(r.req)}
	guards, disabled := d.guardItems(r.req.Namespace)
	own = append(own, guards...)
	if err := r.apply(ctx, own); err != nil {
		return nil, err
	}
	if !nsExists {
		return own, nil
	}
	for _, it := range disabled {
		if err := r.deleteGuard(ctx, it); err != nil {
			return nil, err
		}
	}
	return own, nil
}

// deleteGuard deletes a guard object that the operator switched off, if Brain created it.
func (r *run) deleteGuard(ctx context.Context, it *item) error {
	live := it.obj.DeepCopy()
	err := r.d.client.Get(ctx, client.ObjectKeyFromObject(it.obj), live)
	if apierrors.IsNotFound(err) || (err == nil && live.GetLabels()[managedByLabel] != managedByValue) {
		return nil
	}
	if err == nil {
		err = r.d.client.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationBackground))
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return r.d.objectError(it, "delete", err)
	}
	r.applied(it, proto.ActionPruned, "", "switched off by the operator")
	return nil
}

// prune deletes the objects of earlier deploys that this one no longer has, and reports each.
// Objects already gone are dropped silently; objects whose owner label no longer names this
// namespace are left alone.
func (r *run) prune(ctx context.Context, stale []ref) error {
	objs := make([]*unstructured.Unstructured, len(stale))
	for i, s := range stale {
		objs[i] = s.object()
	}
	sort.Sort(sort.Reverse(ssa.SortableUnstructureds(objs)))
	for _, obj := range objs {
		it := &item{obj: obj}
		deleted, err := r.pruneOne(ctx, it)
		if err != nil {
			return err
		}
		if deleted {
			r.applied(it, proto.ActionPruned, "", "")
		}
	}
	return nil
}

func (r *run) pruneOne(ctx context.Context, it *item) (bool, error) {
	live := it.obj.DeepCopy()
	err := r.d.client.Get(ctx, client.ObjectKeyFromObject(it.obj), live)
	switch {
	case apierrors.IsNotFound(err), meta.IsNoMatchError(err):
		return false, nil // gone already, or its kind is gone from the cluster and the object with it
	case err != nil:
		return false, r.d.objectError(it, "prune", err)
	case live.GetLabels()[ownerLabel] != r.req.Namespace:
		r.log.Warn("not pruning an object that is no longer labelled as this chat's", "object", it.key())
		return false, nil
	}
	err = r.d.client.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return false, r.d.objectError(it, "prune", err)
	}
	return true, nil
}
