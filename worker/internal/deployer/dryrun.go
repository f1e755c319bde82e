package deployer

import (
	"context"

	"github.com/fluxcd/pkg/ssa"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/backendim/brain/proto"
)

// dryRun reports what a deploy would do, with a diff summary per object, and changes nothing:
// not the objects, not the namespace, not the inventory. The objects were already checked by
// validate; this adds what would change.
func (r *run) dryRun(ctx context.Context, items []*item, nsExists bool) error {
	d := r.d
	guards, disabled := d.guardItems(r.req.Namespace)
	all := append([]*item{d.namespaceItem(r.req)}, guards...)
	all = append(all, items...)
	if !nsExists {
		// The namespace itself can be dry-run; nothing inside a namespace that does not exist can.
		if _, err := r.diff(ctx, all[0]); err != nil {
			return err
		}
		for _, it := range all {
			r.applied(it, proto.ActionCreated, diffNew, crdNote(it))
		}
		return nil
	}
	diffs := make([]diffResult, len(all))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i, it := range all {
		if it.crdKind {
			diffs[i] = diffResult{action: proto.ActionCreated}
			continue
		}
		g.Go(func() error {
			var err error
			diffs[i], err = r.diff(gctx, it)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, it := range all {
		r.applied(it, diffs[i].action, diffs[i].summary, crdNote(it))
	}
	for _, it := range disabled {
		live := it.obj.DeepCopy()
		err := d.client.Get(ctx, client.ObjectKeyFromObject(it.obj), live)
		switch {
		case err == nil && live.GetLabels()[managedByLabel] == managedByValue:
			r.applied(it, proto.ActionPruned, diffDeleted, "switched off by the operator")
		case err != nil && !apierrors.IsNotFound(err):
			return d.objectError(it, "look up", err)
		}
	}
	return r.dryRunPrune(ctx, items)
}

// dryRunPrune reports the objects of the inventory that this deploy would delete.
func (r *run) dryRunPrune(ctx context.Context, items []*item) error {
	old, err := r.d.readInventory(ctx, r.req.Namespace)
	if err != nil {
		return err
	}
	want := make([]ref, len(items))
	for i, it := range items {
		want[i] = refOf(it.obj)
	}
	for _, s := range missing(old, want) {
		r.applied(&item{obj: s.object()}, proto.ActionPruned, diffDeleted, "")
	}
	return nil
}

type diffResult struct {
	action  string
	summary string
}

// diff has the API server dry-run the apply of one object and compares the result with the live
// object.
func (r *run) diff(ctx context.Context, it *item) (diffResult, error) {
	entry, live, merged, err := r.d.rm.Diff(ctx, it.obj.DeepCopy(), ssa.DiffOptions{})
	if err != nil {
		return diffResult{}, r.d.objectError(it, "dry-run", err)
	}
	switch entry.Action {
	case ssa.CreatedAction:
		return diffResult{action: proto.ActionCreated, summary: diffNew}, nil
	case ssa.ConfiguredAction:
		return diffResult{action: proto.ActionConfigured, summary: diffSummary(live, merged)}, nil
	}
	return diffResult{action: proto.ActionUnchanged}, nil
}

// crdNote explains why an object was not checked by the API server in a dry run.
func crdNote(it *item) string {
	if it.crdKind {
		return "its kind is defined by a CRD of this deploy, so the API server checks it only when applied"
	}
	return ""
}
