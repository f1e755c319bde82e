package render

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/backendim/brain/proto"
)

// appRepo is a repository with a base in base/ and an overlay in deploy/ that uses it through
// ../base, patches it, and generates a ConfigMap from a file in a sibling directory.
func appRepo() fstest.MapFS {
	return fstest.MapFS{
		"base/kustomization.yaml": file(
			"apiVersion: kustomize.config.k8s.io/v1beta1",
			"kind: Kustomization",
			"resources:",
			"- deployment.yaml",
			"- service.yaml",
		),
		"base/deployment.yaml": file(
			"apiVersion: apps/v1",
			"kind: Deployment",
			"metadata:",
			"  name: web",
			"spec:",
			"  replicas: 1",
			"  selector: {matchLabels: {app: web}}",
			"  template:",
			"    metadata: {labels: {app: web}}",
			"    spec:",
			"      containers:",
			"      - name: web",
			"        image: nginx:1.27",
		),
		"base/service.yaml": file(
			"apiVersion: v1",
			"kind: Service",
			"metadata:",
			"  name: web",
			"spec:",
			"  selector: {app: web}",
			"  ports: [{port: 80}]",
		),
		"deploy/kustomization.yaml": file(
			"resources:",
			"- ../base",
			"namePrefix: prod-",
			"patches:",
			"- path: replicas.yaml",
			"configMapGenerator:",
			"- name: settings",
			"  files:",
			"  - app.properties=../config/app.properties",
			"  options: {disableNameSuffixHash: true}",
		),
		"deploy/replicas.yaml": file(
			"apiVersion: apps/v1",
			"kind: Deployment",
			"metadata:",
			"  name: web",
			"spec:",
			"  replicas: 3",
		),
		"config/app.properties": file("color=blue"),
		"config/unused.bin":     {Data: make([]byte, 2<<20)},
		"src/main.go":           file("package main"),
	}
}

func TestRenderKustomize(t *testing.T) {
	t.Parallel()
	out, err := Render(t.Context(), appRepo(), "", DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := []found{
		{File: "kustomize:deploy", APIVersion: "apps/v1", Kind: "Deployment", Name: "prod-web"},
		{File: "kustomize:deploy", APIVersion: "v1", Kind: "Service", Name: "prod-web"},
		{File: "kustomize:deploy", APIVersion: "v1", Kind: "ConfigMap", Name: "prod-settings"},
	}
	if diff := cmp.Diff(want, summarize(out)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	// Only the files the kustomizations refer to were read: not src/ nor config/unused.bin.
	if out.Dir != "deploy" || !out.Kustomize || out.Files != 6 {
		t.Errorf("Dir, Kustomize, Files = %q, %v, %d; want \"deploy\", true, 6", out.Dir, out.Kustomize, out.Files)
	}
	replicas := out.Objects[0].Object["spec"].(map[string]any)["replicas"]
	if replicas != int64(3) {
		t.Errorf("replicas = %#v, want the patched int64(3)", replicas)
	}
	data := out.Objects[2].Object["data"]
	if diff := cmp.Diff(map[string]any{"app.properties": "color=blue\n"}, data); diff != "" {
		t.Errorf("generated ConfigMap data (-want +got):\n%s", diff)
	}
	for _, o := range out.Objects {
		o.DeepCopy() // panics on a value an unstructured object may not hold
	}
}

func TestRenderKustomizeFeatures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fsys fstest.MapFS
		dir  string
		want []found
	}{
		{
			name: "the request's path names the overlay; components; Kustomization file name",
			fsys: fstest.MapFS{
				"apps/web/overlays/prod/Kustomization": file("resources: [../../base]", "components: [../../../../components/labels]"),
				"apps/web/base/kustomization.yml":      file("resources: [cm.yaml]"),
				"apps/web/base/cm.yaml":                cmFile("web"),
				"components/labels/kustomization.yaml": file("apiVersion: kustomize.config.k8s.io/v1alpha1", "kind: Component", "namePrefix: c-"),
			},
			dir:  "apps/web/overlays/prod",
			want: []found{{File: "kustomize:apps/web/overlays/prod", APIVersion: "v1", Kind: "ConfigMap", Name: "c-web"}},
		},
		{
			name: "a transformer configuration file that loads a patch file",
			fsys: fstest.MapFS{
				"deploy/kustomization.yaml": file("resources: [cm.yaml]", "transformers: [rename.yaml]"),
				"deploy/cm.yaml":            cmFile("web"),
				"deploy/rename.yaml": file(
					"apiVersion: builtin",
					"kind: PatchTransformer",
					"metadata: {name: rename}",
					"path: patches/rename.yaml",
					"target: {kind: ConfigMap}",
				),
				"deploy/patches/rename.yaml": file("- {op: replace, path: /metadata/name, value: renamed}"),
			},
			want: []found{{File: "kustomize:deploy", APIVersion: "v1", Kind: "ConfigMap", Name: "renamed"}},
		},
		{
			name: "the root as manifest directory",
			fsys: fstest.MapFS{"kustomization.yaml": file("resources: [cm.yaml]"), "cm.yaml": cmFile("root")},
			dir:  ".",
			want: []found{{File: "kustomize:.", APIVersion: "v1", Kind: "ConfigMap", Name: "root"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := Render(t.Context(), tt.fsys, tt.dir, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarize(out)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRenderKustomizeRefused checks what is refused before kustomize runs: remote references
// anywhere kustomize would fetch them (it would otherwise run git or an HTTP client), Helm,
// custom OpenAPI schemas, and paths outside the repository.
func TestRenderKustomizeRefused(t *testing.T) {
	t.Parallel()
	const remote = "is remote; Brain builds only from this repository's own files: copy what it refers to into the repository"
	withKust := func(lines ...string) fstest.MapFS {
		return fstest.MapFS{"deploy/kustomization.yaml": file(lines...), "deploy/cm.yaml": cmFile("a")}
	}
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{
			name: "https base",
			fsys: withKust("resources:", "- cm.yaml", "- https://github.com/org/repo//deploy/base?ref=v1"),
			want: `deploy/kustomization.yaml: resources entry "https://github.com/org/repo//deploy/base?ref=v1" ` + remote,
		},
		{
			name: "github.com shorthand",
			fsys: withKust("resources: [github.com/org/repo/base]"),
			want: `deploy/kustomization.yaml: resources entry "github.com/org/repo/base" ` + remote,
		},
		{
			name: "scp-style ssh",
			fsys: withKust("resources: ['git@gitlab.example.com:org/repo.git/base']"),
			want: `deploy/kustomization.yaml: resources entry "git@gitlab.example.com:org/repo.git/base" ` + remote,
		},
		{
			name: "go-getter prefix",
			fsys: withKust("bases: ['git::ssh://git@example.com/org/repo']"),
			want: `deploy/kustomization.yaml: bases entry "git::ssh://git@example.com/org/repo" ` + remote,
		},
		{
			name: "file URL",
			fsys: withKust("components: ['file:///srv/repo']"),
			want: `deploy/kustomization.yaml: components entry "file:///srv/repo" ` + remote,
		},
		{
			name: "remote base of a local base",
			fsys: fstest.MapFS{
				"deploy/kustomization.yaml": file("resources: [../base]"),
				"base/kustomization.yaml":   file("resources: [cm.yaml, 'ssh://git@example.com/org/repo.git']"),
				"base/cm.yaml":              cmFile("a"),
			},
			want: `base/kustomization.yaml: resources entry "ssh://git@example.com/org/repo.git" ` + remote,
		},
		{
			name: "patch downloaded over HTTP",
			fsys: withKust("resources: [cm.yaml]", "patches:", "- path: http://patches.example.com/p.yaml"),
			want: `deploy/kustomization.yaml: patches entry "http://patches.example.com/p.yaml" ` + remote,
		},
		{
			name: "generator file downloaded over HTTP",
			fsys: withKust("configMapGenerator:", "- name: x", "  files: [key=https://example.com/x]"),
			want: `deploy/kustomization.yaml: configMapGenerator files entry "https://example.com/x" ` + remote,
		},
		{
			name: "remote path in a transformer configuration file",
			fsys: fstest.MapFS{
				"deploy/kustomization.yaml": file("resources: [cm.yaml]", "transformers: [t.yaml]"),
				"deploy/cm.yaml":            cmFile("a"),
				"deploy/t.yaml":             file("apiVersion: builtin", "kind: PatchTransformer", "metadata: {name: t}", "Path: https://example.com/p.yaml"),
			},
			want: `deploy/t.yaml: Path entry "https://example.com/p.yaml" ` + remote,
		},
		{
			name: "remote path in an inline generator configuration",
			fsys: withKust(
				"generators:",
				"- |",
				"  apiVersion: builtin",
				"  kind: ConfigMapGenerator",
				"  metadata: {name: g}",
				"  envs: [https://example.com/env]",
			),
			want: `deploy/kustomization.yaml: envs entry "https://example.com/env" ` + remote,
		},
		{
			name: "remote transformer directory",
			fsys: withKust("resources: [cm.yaml]", "validators: [https://example.com/org/validators]"),
			want: `deploy/kustomization.yaml: validators entry "https://example.com/org/validators" ` + remote,
		},
		{
			name: "helm chart",
			fsys: withKust("helmCharts:", "- name: redis", "  repo: https://charts.example.com"),
			want: "deploy/kustomization.yaml: helmCharts are not supported; render the chart (helm template) and commit its output",
		},
		{
			name: "custom OpenAPI schema",
			fsys: withKust("resources: [cm.yaml]", "openapi: {path: schema.json}"),
			want: "deploy/kustomization.yaml: openapi is not supported; remove it (kustomize's built-in schema is used)",
		},
		{
			name: "outside the repository",
			fsys: withKust("resources: [../../../etc]"),
			want: `deploy/kustomization.yaml: resources entry "../../../etc" points outside the repository`,
		},
		{
			name: "absolute path",
			fsys: withKust("resources: [/etc/passwd]"),
			want: `deploy/kustomization.yaml: resources entry "/etc/passwd" is an absolute path; use a path relative to deploy/`,
		},
		{
			name: "not a kustomization",
			fsys: withKust("resources: [cm.yaml]", "resourcez: [x]"),
			want: `deploy/kustomization.yaml: invalid Kustomization: json: unknown field "resourcez"`,
		},
		{
			name: "kustomize's own error",
			fsys: withKust("resources: [cm.yaml, missing.yaml]"),
			want: "kustomize build deploy/ failed: accumulating resources: accumulation err='accumulating resources from 'missing.yaml': " +
				"'/deploy/missing.yaml' doesn't exist': must build at directory: not a valid directory: '/deploy/missing.yaml' doesn't exist",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(t.Context(), tt.fsys, "", DefaultLimits())
			wantError(t, err, proto.CodeInvalidManifest, tt.want)
		})
	}
}

func TestRenderKustomizeLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		lim  Limits
		want string
	}{
		{
			name: "files copied count",
			lim:  Limits{MaxFiles: 5},
			want: "more than 5 manifest files to read (RENDER_MAX_FILES=5); deploy fewer files or ask the operator to raise the limit",
		},
		{
			name: "objects built count",
			lim:  Limits{MaxObjects: 2},
			want: "more than 2 Kubernetes objects (RENDER_MAX_OBJECTS=2); deploy fewer objects or ask the operator to raise the limit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(t.Context(), appRepo(), "", tt.lim)
			wantError(t, err, proto.CodeManifestLimit, tt.want)
		})
	}
}

func TestIsRemote(t *testing.T) {
	t.Parallel()
	for ref, want := range map[string]bool{
		"../base":                          false,
		"base":                             false,
		"./overlays/prod":                  false,
		"deployment.yaml":                  false,
		"weird@name":                       true, // kustomize reads it as scp-style user@host
		"github.com/org/repo":              true,
		"GitHub.com:org/repo":              true,
		"https://example.com/x.yaml":       true,
		"HTTP://example.com/x.yaml":        true,
		"http:example.com/x.yaml":          true,
		"ssh://git@example.com/r.git":      true,
		"git@example.com:org/r.git":        true,
		"git::https://example.com/r.git":   true,
		"file:///tmp/repo":                 true,
		"  https://example.com/x.yaml":     true,
		"example.com/org/repo//dir?ref=v1": false, // no scheme: kustomize treats it as a local path
	} {
		if got := isRemote(ref); got != want {
			t.Errorf("isRemote(%q) = %v, want %v", ref, got, want)
		}
	}
}
