package render

import (
	"context"
	"io/fs"
	"strings"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/backendim/brain/proto"
)

// maxKustomizeMessage bounds how much of a kustomize error a user is shown.
const maxKustomizeMessage = 800

// buildKustomization builds the kustomization in dir. It first copies the files the
// kustomization refers to (and those its bases and components refer to, recursively) into an
// in-memory filesystem, refusing remote references, so kustomize runs with no access to the
// network, the disk or the git binary. Within that copy the load restrictions are off, so
// overlays may use files of sibling directories as kustomize's default allows only for bases.
func buildKustomization(ctx context.Context, fsys fs.FS, dir string, b *budget, emit emitFunc) error {
	c := newKustCopy(fsys, b)
	if err := c.kustomization(ctx, dir, ""); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsNone
	opts.PluginConfig = types.DisabledPluginConfig() // builtins only; Helm stays off
	rm, err := krusty.MakeKustomizer(opts).Run(c.mem, memPath(dir))
	if err != nil {
		return proto.Errorf(proto.CodeInvalidManifest, "kustomize build %s failed: %s", showDir(dir), kustomizeMessage(err))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	file := "kustomize:" + dir
	for _, r := range rm.Resources() {
		j, err := r.MarshalJSON()
		if err != nil {
			return invalid(file, 0, "%s %s: %v", r.GetKind(), r.GetName(), err)
		}
		var m map[string]any
		if err := utiljson.Unmarshal(j, &m); err != nil {
			return invalid(file, 0, "%s %s: %v", r.GetKind(), r.GetName(), err)
		}
		if err := emitObject(file, 0, m, emit); err != nil {
			return err
		}
	}
	return nil
}

// memPath is where a repository path lives in the in-memory copy.
func memPath(p string) string {
	if p == "." {
		return "/"
	}
	return "/" + p
}

// kustomizeMessage shortens a kustomize error for a user: the in-memory root is the repository
// root, and long messages are cut.
func kustomizeMessage(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(msg) > maxKustomizeMessage {
		msg = msg[:maxKustomizeMessage] + "…"
	}
	return msg
}

// newKustCopy returns an empty copy of the files a kustomization needs.
func newKustCopy(fsys fs.FS, b *budget) *kustCopy {
	return &kustCopy{
		fsys:   fsys,
		b:      b,
		mem:    filesys.MakeFsInMemory(),
		seen:   make(map[string]bool),
		copied: make(map[string]bool),
	}
}
