package deployer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// validate has the API server check every object before anything is applied, so an invalid object
// or a field conflict fails the job with nothing changed.
//
// Each object is applied with server-side dry run as Brain's field manager, without forcing
// ownership unless the operator said so, which reports conflicts with other managers. When the
// chat's namespace does not exist yet, its objects cannot be dry-run there: they are dry-run
// created in the "default" namespace instead (an AlreadyExists answer comes after validation and
// admission, so it counts as valid).
//
// Objects of kinds that a CRD of the same deploy defines are checked when they are applied.
func (d *Deployer) validate(ctx context.Context, items []*item, nsExists bool) error {
	errs := make([]error, len(items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i, it := range items {
		if it.crdKind {
			continue
		}
		g.Go(func() error {
			errs[i] = d.validateOne(gctx, it, nsExists)
			return nil
		})
	}
	_ = g.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the first in the order of the repository
		}
	}
	return nil
}

func (d *Deployer) validateOne(ctx context.Context, it *item, nsExists bool) error {
	obj := it.obj.DeepCopy()
	if it.namespaced && !nsExists {
		obj.SetNamespace(metav1.NamespaceDefault)
		err := d.client.Create(ctx, obj, client.DryRunAll, client.FieldOwner(d.opts.FieldManager))
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return d.objectError(it, "check", inNamespace(err, it.obj.GetNamespace()))
		}
		return nil
	}
	opts := []client.PatchOption{client.DryRunAll, client.FieldOwner(d.opts.FieldManager)}
	if d.opts.ForceConflicts {
		opts = append(opts, client.ForceOwnership)
	}
	if err := d.client.Patch(ctx, obj, client.Apply, opts...); err != nil {
		return d.objectError(it, "check", err)
	}
	return nil
}

// inNamespace rewrites an API server message about the "default" namespace, where an object was
// checked, to name the chat's namespace, where it belongs.
func inNamespace(err error, ns string) error {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err
	}
	st := status.Status()
	st.Message = strings.ReplaceAll(st.Message, `namespace "default"`, fmt.Sprintf("namespace %q", ns))
	return &apierrors.StatusError{ErrStatus: st}
}
