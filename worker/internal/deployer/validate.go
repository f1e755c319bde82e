package deployer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// validate has the API server check objects before anything is applied, so an invalid object or
// a field conflict fails the job with nothing changed.
//
// When the chat's namespace does not exist yet, its objects cannot be dry-run there: they are
// dry-run created in the "default" namespace instead (an AlreadyExists answer comes after
// validation and admission, so it counts as valid).
//
// When it exists, only objects that another field manager also manages can conflict: those are
// dry-run applied without forcing ownership (unless the operator forces it), which reports the
// conflict. The others are validated by the apply itself, which dry-runs every object of a stage
// before it changes any. This keeps an unchanged redeploy at two requests per object.
//
// Objects of kinds that a CRD of the same deploy defines are checked when they are applied.
func (d *Deployer) validate(ctx context.Context, items []*item, nsExists bool) error {
	check := make([]bool, len(items))
	for i, it := range items {
		check[i] = !it.crdKind && (!nsExists || !d.opts.ForceConflicts)
	}
	if nsExists && !d.opts.ForceConflicts {
		shared, err := d.sharedObjects(ctx, items)
		if err != nil {
			return err
		}
		for i, it := range items {
			check[i] = check[i] && shared[it]
		}
	}
	errs := make([]error, len(items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i, it := range items {
		if !check[i] {
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

// sharedObjects marks the objects that exist and have fields of another field manager, with one
// metadata-only list per kind. When a kind cannot be listed, all its objects are marked, so the
// dry run reports why.
func (d *Deployer) sharedObjects(ctx context.Context, items []*item) (map[*item]bool, error) {
	type group struct {
		gvk schema.GroupVersionKind
		ns  string
	}
	byGroup := map[group][]*item{}
	for _, it := range items {
		if !it.crdKind {
			g := group{it.obj.GroupVersionKind(), it.obj.GetNamespace()}
			byGroup[g] = append(byGroup[g], it)
		}
	}
	shared := map[*item]bool{}
	for g, members := range byGroup {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(g.gvk.GroupVersion().WithKind(g.gvk.Kind + "List"))
		var opts []client.ListOption
		if g.ns != "" {
			opts = append(opts, client.InNamespace(g.ns))
		}
		if err := d.client.List(ctx, list, opts...); err != nil {
			if unreachable(err) {
				return nil, d.clusterError("list "+g.gvk.Kind+" objects", err)
			}
			for _, it := range members {
				shared[it] = true
			}
			continue
		}
		foreign := map[string]bool{}
		for _, o := range list.Items {
			for _, mf := range o.ManagedFields {
				if mf.Manager != d.opts.FieldManager && mf.Subresource == "" {
					foreign[o.Name] = true
				}
			}
		}
		for _, it := range members {
			shared[it] = foreign[it.obj.GetName()]
		}
	}
	return shared, nil
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
