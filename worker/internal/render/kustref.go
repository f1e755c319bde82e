package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustCopy follows the references of a kustomization, refusing remote ones and copying the
// local files they name into mem.
type kustCopy struct {
	fsys   fs.FS
	b      *budget
	mem    filesys.FileSystem
	seen   map[string]bool // kustomization directories followed, with their plugin root
	copied map[string]bool // repository paths copied into mem
}

// kustomization follows the kustomization in dir. pluginRoot is set when the directory was named
// in generators, transformers or validators: its resources are then plugin configurations whose
// file references kustomize resolves against pluginRoot.
func (c *kustCopy) kustomization(ctx context.Context, dir, pluginRoot string) error {
	key := dir + "\x00" + pluginRoot
	if c.seen[key] {
		return nil
	}
	c.seen[key] = true
	kfile, err := kustomizationFile(c.fsys, dir)
	if err != nil || kfile == "" {
		return err // with no kustomization here, kustomize says what is missing
	}
	data, err := c.copy(ctx, kfile)
	if err != nil {
		return err
	}
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return invalid(kfile, 0, "%v", err)
	}
	if err := refuseUnsupported(kfile, &k); err != nil {
		return err
	}
	r := refs{c: c, kfile: kfile, dir: dir}
	for _, e := range k.Resources {
		r.resource(ctx, "resources", e, pluginRoot)
	}
	for _, e := range k.Bases {
		r.resource(ctx, "bases", e, pluginRoot)
	}
	for _, e := range k.Components {
		r.resource(ctx, "components", e, pluginRoot)
	}
	r.plugins(ctx, "generators", k.Generators)
	r.plugins(ctx, "transformers", k.Transformers)
	r.plugins(ctx, "validators", k.Validators)
	r.files(ctx, "crds", k.Crds...)
	r.files(ctx, "configurations", k.Configurations...)
	for _, p := range k.PatchesStrategicMerge {
		if !strings.Contains(string(p), "\n") { // else an inline patch
			r.files(ctx, "patchesStrategicMerge", string(p))
		}
	}
	for _, p := range append(k.Patches, k.PatchesJson6902...) {
		r.files(ctx, "patches", p.Path)
	}
	for _, p := range k.Replacements {
		r.files(ctx, "replacements", p.Path)
	}
	for _, g := range k.ConfigMapGenerator {
		r.generatorSources(ctx, "configMapGenerator", g.KvPairSources)
	}
	for _, g := range k.SecretGenerator {
		r.generatorSources(ctx, "secretGenerator", g.KvPairSources)
	}
	return r.err
}

// refuseUnsupported refuses the kustomize features Brain leaves out: Helm charts (they would
// run helm and fetch charts) and custom OpenAPI schemas (kustomize keeps the schema in
// process-wide state, so one build's schema would leak into another's).
func refuseUnsupported(kfile string, k *types.Kustomization) error {
	if len(k.HelmCharts) > 0 || len(k.HelmChartInflationGenerator) > 0 || k.HelmGlobals != nil {
		return invalid(kfile, 0, "helmCharts are not supported; render the chart (helm template) and commit its output")
	}
	if len(k.OpenAPI) > 0 {
		return invalid(kfile, 0, "openapi is not supported; remove it (kustomize's built-in schema is used)")
	}
	return nil
}

// refs checks and copies the references of one kustomization file; the first error sticks.
type refs struct {
	c     *kustCopy
	kfile string // the kustomization file, for messages
	dir   string // its directory, which relative references start from
	err   error
}

// resource follows a resources, bases or components entry: a file, or a directory with a
// kustomization of its own.
func (r *refs) resource(ctx context.Context, field, entry, pluginRoot string) {
	p, fi := r.local(field, entry)
	if fi == nil {
		return
	}
	if fi.IsDir() {
		r.setErr(r.c.kustomization(ctx, p, pluginRoot))
		return
	}
	data, err := r.c.copy(ctx, p)
	if err == nil && pluginRoot != "" {
		err = r.c.pluginConfig(ctx, p, data, pluginRoot)
	}
	r.setErr(err)
}

// plugins follows generators, transformers or validators entries: inline configurations, or
// files and directories of them.
func (r *refs) plugins(ctx context.Context, field string, entries []string) {
	for _, e := range entries {
		var n yaml.Node
		if yaml.Unmarshal([]byte(e), &n) == nil && len(n.Content) > 0 && n.Content[0].Kind == yaml.MappingNode {
			r.setErr(r.c.pluginConfig(ctx, r.kfile, []byte(e), r.dir))
			continue
		}
		r.resource(ctx, field, e, r.dir)
	}
}

// files copies plain files the kustomization loads (patches, CRDs, configurations, ...).
func (r *refs) files(ctx context.Context, field string, entries ...string) {
	for _, e := range entries {
		if e == "" {
			continue
		}
		if p, fi := r.local(field, e); fi != nil && fi.Mode().IsRegular() {
			_, err := r.c.copy(ctx, p)
			r.setErr(err)
		}
	}
}

// generatorSources copies the files of a configMapGenerator or secretGenerator.
func (r *refs) generatorSources(ctx context.Context, field string, s types.KvPairSources) {
	for _, f := range s.FileSources {
		if _, p, ok := strings.Cut(f, "="); ok {
			f = p // key=path
		}
		r.files(ctx, field+" files", f)
	}
	r.files(ctx, field+" envs", s.EnvSources...)
	r.files(ctx, field+" env", s.EnvSource)
}

// local resolves a reference of the kustomization to a repository path, refusing remote and
// escaping references. It returns a nil FileInfo (and records no error) when the path does not
// exist: kustomize then reports it in its own words.
func (r *refs) local(field, entry string) (string, fs.FileInfo) {
	if r.err != nil {
		return "", nil
	}
	p, err := resolveRef(r.kfile, field, r.dir, entry)
	if err != nil {
		r.err = err
		return "", nil
	}
	fi, err := fs.Stat(r.c.fsys, p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		r.err = fmt.Errorf("stat %s: %w", p, err)
		return "", nil
	case !fi.IsDir() && !fi.Mode().IsRegular():
		r.err = notRegular(p, fi.Mode())
		return "", nil
	}
	return p, fi
}

func (r *refs) setErr(err error) {
	if r.err == nil {
		r.err = err
	}
}

// resolveRef turns entry, a reference in kfile relative to dir, into a repository path.
func resolveRef(kfile, field, dir, entry string) (string, error) {
	if isRemote(entry) {
		return "", invalid(kfile, 0, "%s entry %q is remote; Brain builds only from this repository's own files: copy what it refers to into the repository",
			field, entry)
	}
	if path.IsAbs(entry) {
		return "", invalid(kfile, 0, "%s entry %q is an absolute path; use a path relative to %s", field, entry, showDir(dir))
	}
	p := path.Join(dir, entry)
	if !fs.ValidPath(p) {
		return "", invalid(kfile, 0, "%s entry %q points outside the repository", field, entry)
	}
	return p, nil
}

// scpUser is the "user@" that starts an scp-style git URL (git@github.com:org/repo).
var scpUser = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*@`)

// isRemote reports whether kustomize would fetch ref from elsewhere instead of reading a local
// path: a URL with a scheme (kustomize clones git URLs and downloads http(s) files), a
// go-getter "git::" prefix, an scp-style "user@host:path", or a github.com path. It errs on the
// side of remote.
func isRemote(ref string) bool {
	s := strings.TrimSpace(ref)
	l := strings.ToLower(s)
	if strings.HasPrefix(l, "git::") || strings.Contains(s, "://") ||
		strings.HasPrefix(l, "github.com/") || strings.HasPrefix(l, "github.com:") || scpUser.MatchString(s) {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && (strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https"))
}

// isPluginPathKey reports whether key, in a builtin plugin configuration, names files kustomize
// loads (PatchTransformer path, PatchStrategicMergeTransformer paths, ConfigMapGenerator files,
// ReplacementTransformer path, ValueAddTransformer targetFilePath, ...). Case does not matter:
// kustomize decodes configurations through JSON.
func isPluginPathKey(key string) bool {
	switch strings.ToLower(key) {
	case "path", "paths", "files", "envs", "env", "targetfilepath", "valuesfile", "additionalvaluesfiles":
		return true
	}
	return false
}

// pluginConfig checks a plugin configuration (a file, or an inline one in kfile): every file it
// names must be local, and is copied. References resolve against root, as kustomize does.
func (c *kustCopy) pluginConfig(ctx context.Context, name string, data []byte, root string) error {
	r := refs{c: c, kfile: name, dir: root}
	_ = splitYAML(name, data, func(doc []byte, _ int) error {
		var n yaml.Node
		if yaml.Unmarshal(doc, &n) == nil { // a config that does not parse is kustomize's to report
			r.pluginNode(ctx, &n)
		}
		return r.err
	})
	return r.err
}

// pluginNode walks a plugin configuration for file references.
func (r *refs) pluginNode(ctx context.Context, n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if isPluginPathKey(n.Content[i].Value) {
				r.pluginRefs(ctx, n.Content[i].Value, n.Content[i+1])
			}
		}
	}
	for _, ch := range n.Content {
		r.pluginNode(ctx, ch)
	}
}

// pluginRefs checks and copies the value of a file-naming key of a plugin configuration.
func (r *refs) pluginRefs(ctx context.Context, key string, v *yaml.Node) {
	vals := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		vals = v.Content
	}
	for _, s := range vals {
		if s.Kind != yaml.ScalarNode || strings.Contains(s.Value, "\n") {
			continue
		}
		f := s.Value
		if _, p, ok := strings.Cut(f, "="); ok && !isRemote(f) {
			f = p // key=path
		}
		r.files(ctx, key, f)
	}
}

// copy copies one repository file into mem within the budget and returns its content.
func (c *kustCopy) copy(ctx context.Context, p string) ([]byte, error) {
	if c.copied[p] {
		return c.mem.ReadFile(memPath(p))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := c.b.readFile(c.fsys, p)
	if err != nil {
		return nil, err
	}
	if err := c.mem.WriteFile(memPath(p), data); err != nil {
		return nil, fmt.Errorf("copy %s into memory: %w", p, err)
	}
	c.copied[p] = true
	return data, nil
}
