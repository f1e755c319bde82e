package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"

	"github.com/backendim/brain/proto"
)

// searchDirs are the directories Render looks for, in order, when the request names none.
func searchDirs() []string { return []string{".brain", "deploy", "k8s", "kubernetes", "manifests"} }

// Render finds and renders the manifests of a commit. fsys is the commit's tree, rooted at the
// repository root; dir is the request's path ("" = look for the first of .brain/, deploy/, k8s/,
// kubernetes/ and manifests/ that exists). A kustomization in that directory is built with
// kustomize from an in-memory copy of the files it refers to (remote bases, Helm charts and
// plugins refused); otherwise every *.yaml, *.yml and *.json file below it is read, in path order,
// skipping hidden files and directories. Limits bound the files, bytes and objects; a zero field
// of lim means its default.
//
// Errors a user can fix are *proto.Error values: manifests_not_found, invalid_manifest (naming
// file and line) and manifest_limit. Other errors are failures to read fsys, or ctx's error.
func Render(ctx context.Context, fsys fs.FS, dir string, lim Limits) (*Output, error) {
	out, err := render(ctx, fsys, dir, lim)
	if err != nil {
		var pe *proto.Error
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, fmt.Errorf("render: %w", err)
	}
	return out, nil
}

func render(ctx context.Context, fsys fs.FS, dir string, lim Limits) (*Output, error) {
	dir, err := manifestDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	kfile, err := kustomizationFile(fsys, dir)
	if err != nil {
		return nil, err
	}
	b := &budget{lim: lim.withDefaults()}
	out := &Output{Dir: dir, Kustomize: kfile != ""}
	emit := func(o Object) error {
		if err := b.admitObjects(1); err != nil {
			return err
		}
		out.Objects = append(out.Objects, o)
		return nil
	}
	if out.Kustomize {
		err = buildKustomization(ctx, fsys, dir, b, emit)
	} else {
		err = readManifests(ctx, fsys, dir, b, emit)
	}
	if err != nil {
		return nil, err
	}
	out.Files = b.files
	if len(out.Objects) == 0 {
		return nil, proto.Errorf(proto.CodeManifestsNotFound, "%s holds no Kubernetes objects", showDir(dir))
	}
	return out, nil
}

// showDir is how messages name a repository directory: "deploy/", or "the repository root".
func showDir(dir string) string {
	if dir == "." {
		return "the repository root"
	}
	return dir + "/"
}

// manifestDir returns the directory to render, repository-relative and clean ("." for the root).
func manifestDir(fsys fs.FS, dir string) (string, error) {
	if dir != "" {
		clean := path.Clean(strings.TrimSuffix(dir, "/"))
		if !fs.ValidPath(clean) {
			return "", proto.Errorf(proto.CodeManifestsNotFound, "path %s is not a directory inside the repository", dir)
		}
		fi, err := fs.Stat(fsys, clean)
		if errors.Is(err, fs.ErrNotExist) {
			return "", proto.Errorf(proto.CodeManifestsNotFound, "path %s does not exist in this commit", showDir(clean))
		}
		if err != nil {
			return "", fmt.Errorf("stat %s: %w", clean, err)
		}
		if !fi.IsDir() {
			return "", proto.Errorf(proto.CodeManifestsNotFound, "path %s is not a directory in this commit", clean)
		}
		return clean, nil
	}
	for _, d := range searchDirs() {
		fi, err := fs.Stat(fsys, d)
		if err == nil && fi.IsDir() {
			return d, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("stat %s: %w", d, err)
		}
	}
	return "", proto.Errorf(proto.CodeManifestsNotFound,
		"no manifest directory in this commit: looked for %s/; add one, or name the directory with path",
		strings.Join(searchDirs(), "/, "))
}

// kustomizationFile returns the kustomization file of dir, or "" when it has none.
func kustomizationFile(fsys fs.FS, dir string) (string, error) {
	var found []string
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		name := path.Join(dir, n)
		fi, err := fs.Stat(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("stat %s: %w", name, err)
		}
		if !fi.Mode().IsRegular() {
			return "", notRegular(name, fi.Mode())
		}
		found = append(found, name)
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", invalid(showDir(dir), 0, "has %s; keep only one kustomization file", strings.Join(found, " and "))
}

// notRegular is the error for a manifest that is a symbolic link or a submodule, which have no
// content inside the commit.
func notRegular(name string, mode fs.FileMode) error {
	what := "not a regular file"
	if mode&fs.ModeSymlink != 0 {
		what = "a symbolic link"
	}
	return invalid(name, 0, "is %s; Brain reads only files stored in the repository, so replace it with the file itself", what)
}

// readManifests decodes every manifest file below dir.
func readManifests(ctx context.Context, fsys fs.FS, dir string, b *budget, emit emitFunc) error {
	files, err := manifestFiles(fsys, dir, b)
	if err != nil {
		return err
	}
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := b.readFile(fsys, name)
		if err != nil {
			return err
		}
		if err := decodeFile(name, data, emit); err != nil {
			return err
		}
	}
	return nil
}

// manifestFiles lists the *.yaml, *.yml and *.json files below dir, sorted by path, skipping
// hidden files and directories. It stops as soon as there are more than the budget allows.
func manifestFiles(fsys fs.FS, dir string, b *budget) ([]string, error) {
	var files []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isManifest(p) {
			return nil
		}
		if !d.Type().IsRegular() {
			return notRegular(p, d.Type())
		}
		if isKustomization(p) {
			return invalid(p, 0, "kustomize builds only a kustomization at the manifest directory itself (%s); set path to %s, or add a kustomization to %s that lists it",
				showDir(dir), showDir(path.Dir(p)), showDir(dir))
		}
		files = append(files, p)
		if len(files) > b.lim.MaxFiles {
			return b.tooManyFiles()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

func isManifest(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func isKustomization(name string) bool {
	base := path.Base(name)
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if base == n {
			return true
		}
	}
	return false
}
