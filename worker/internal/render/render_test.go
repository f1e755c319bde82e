package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/backendim/brain/proto"
)

// found is what a test compares of a rendered object.
type found struct {
	File       string
	Line       int
	APIVersion string
	Kind       string
	Name       string
}

func summarize(out *Output) []found {
	var got []found
	for _, o := range out.Objects {
		got = append(got, found{File: o.File, Line: o.Line, APIVersion: o.GetAPIVersion(), Kind: o.GetKind(), Name: o.GetName()})
	}
	return got
}

// file makes a MapFS file from lines, so tests can count lines by eye.
func file(lines ...string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(strings.Join(lines, "\n") + "\n"), Mode: 0o644}
}

// cm is a one-line-per-field ConfigMap document of 4 lines.
func cm(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name
}

func cmFile(names ...string) *fstest.MapFile {
	docs := make([]string, len(names))
	for i, n := range names {
		docs[i] = cm(n)
	}
	return file(strings.Join(docs, "\n---\n"))
}

func cmFound(file string, line int, name string) found {
	return found{File: file, Line: line, APIVersion: "v1", Kind: "ConfigMap", Name: name}
}

// wantError checks that err is a *proto.Error with code and message.
func wantError(t *testing.T, err error, code proto.Code, msg string) {
	t.Helper()
	var pe *proto.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v (%T), want a *proto.Error", err, err)
	}
	if diff := cmp.Diff(proto.Error{Code: code, Message: msg}, *pe); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

func TestRenderFindsDirectory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		dir     string
		wantDir string
		want    []found
	}{
		{
			name: ".brain comes first",
			fsys: fstest.MapFS{
				".brain/a.yaml": cmFile("brain"), "deploy/a.yaml": cmFile("deploy"), "k8s/a.yaml": cmFile("k8s"),
				"kubernetes/a.yaml": cmFile("kubernetes"), "manifests/a.yaml": cmFile("manifests"),
			},
			wantDir: ".brain",
			want:    []found{cmFound(".brain/a.yaml", 1, "brain")},
		},
		{
			name: "deploy before k8s",
			fsys: fstest.MapFS{
				"deploy/a.yaml": cmFile("deploy"), "k8s/a.yaml": cmFile("k8s"),
				"kubernetes/a.yaml": cmFile("kubernetes"), "manifests/a.yaml": cmFile("manifests"),
			},
			wantDir: "deploy",
			want:    []found{cmFound("deploy/a.yaml", 1, "deploy")},
		},
		{
			name: "k8s before kubernetes",
			fsys: fstest.MapFS{
				"k8s/a.yaml": cmFile("k8s"), "kubernetes/a.yaml": cmFile("kubernetes"), "manifests/a.yaml": cmFile("manifests"),
			},
			wantDir: "k8s",
			want:    []found{cmFound("k8s/a.yaml", 1, "k8s")},
		},
		{
			name:    "kubernetes before manifests",
			fsys:    fstest.MapFS{"kubernetes/a.yaml": cmFile("kubernetes"), "manifests/a.yaml": cmFile("manifests")},
			wantDir: "kubernetes",
			want:    []found{cmFound("kubernetes/a.yaml", 1, "kubernetes")},
		},
		{
			name:    "manifests",
			fsys:    fstest.MapFS{"manifests/a.yaml": cmFile("manifests")},
			wantDir: "manifests",
			want:    []found{cmFound("manifests/a.yaml", 1, "manifests")},
		},
		{
			name:    "a file named like a directory is passed over",
			fsys:    fstest.MapFS{"deploy": file("not a directory"), "k8s/a.yaml": cmFile("k8s")},
			wantDir: "k8s",
			want:    []found{cmFound("k8s/a.yaml", 1, "k8s")},
		},
		{
			name:    "the request's path wins",
			fsys:    fstest.MapFS{"deploy/a.yaml": cmFile("deploy"), "apps/web/a.yaml": cmFile("web")},
			dir:     "apps/web/",
			wantDir: "apps/web",
			want:    []found{cmFound("apps/web/a.yaml", 1, "web")},
		},
		{
			name:    "the request's path may be untidy",
			fsys:    fstest.MapFS{".brain/a.yaml": cmFile("brain"), "deploy/a.yaml": cmFile("deploy")},
			dir:     "./deploy/",
			wantDir: "deploy",
			want:    []found{cmFound("deploy/a.yaml", 1, "deploy")},
		},
		{
			name:    "the request's path may be the root",
			fsys:    fstest.MapFS{"a.yaml": cmFile("root"), "deploy/b.yaml": cmFile("deploy")},
			dir:     ".",
			wantDir: ".",
			want:    []found{cmFound("a.yaml", 1, "root"), cmFound("deploy/b.yaml", 1, "deploy")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := Render(t.Context(), tt.fsys, tt.dir, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if out.Dir != tt.wantDir || out.Kustomize {
				t.Errorf("Dir, Kustomize = %q, %v; want %q, false", out.Dir, out.Kustomize, tt.wantDir)
			}
			if diff := cmp.Diff(tt.want, summarize(out)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderNotFound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fsys fstest.MapFS
		dir  string
		want string
	}{
		{
			name: "no manifest directory",
			fsys: fstest.MapFS{"README.md": file("hello"), "src/main.go": file("package main")},
			want: "no manifest directory in this commit: looked for .brain/, deploy/, k8s/, kubernetes/, manifests/; add one, or name the directory with path",
		},
		{
			name: "the request's path does not exist",
			fsys: fstest.MapFS{"deploy/a.yaml": cmFile("a")},
			dir:  "deploy/prod",
			want: "path deploy/prod/ does not exist in this commit",
		},
		{
			name: "the request's path is a file",
			fsys: fstest.MapFS{"deploy/a.yaml": cmFile("a")},
			dir:  "deploy/a.yaml",
			want: "path deploy/a.yaml is not a directory in this commit",
		},
		{
			name: "the request's path leaves the repository",
			fsys: fstest.MapFS{"deploy/a.yaml": cmFile("a")},
			dir:  "../deploy",
			want: "path ../deploy is not a directory inside the repository",
		},
		{
			name: "empty directory",
			fsys: fstest.MapFS{"deploy/README.md": file("# nothing here"), "deploy/.hidden.yaml": cmFile("hidden")},
			want: "deploy/ holds no Kubernetes objects",
		},
		{
			name: "only empty documents",
			fsys: fstest.MapFS{
				"deploy/a.yaml": file("# just a comment", "---", "---", "~"),
				"deploy/b.json": file(" "),
				"deploy/c.yml":  file(""),
				"deploy/d.yaml": file("apiVersion: v1", "kind: List", "items: []"),
			},
			want: "deploy/ holds no Kubernetes objects",
		},
		{
			name: "empty root",
			fsys: fstest.MapFS{"README.md": file("hi")},
			dir:  ".",
			want: "the repository root holds no Kubernetes objects",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := Render(t.Context(), tt.fsys, tt.dir, DefaultLimits())
			if out != nil {
				t.Errorf("output = %+v, want nil", out)
			}
			wantError(t, err, proto.CodeManifestsNotFound, tt.want)
		})
	}
}

func TestRenderPlainFiles(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		// Sorted by path: "web.yaml" comes before "web/..." because '.' sorts before '/'.
		"deploy/web.yaml": file(
			"# the web tier",      // 1
			"---",                 // 2
			cm("web-a"),           // 3-6
			"---",                 // 7
			"",                    // 8
			"",                    // 9
			"# comment",           // 10
			cm("web-b"),           // 11-14
			"--- # empty",         // 15
			"---",                 // 16
			"apiVersion: apps/v1", // 17
			"kind: Deployment",
			"metadata:",
			"  name: web",
		),
		"deploy/web/svc.yml": file(
			"apiVersion: v1",
			"kind: Service",
			"metadata: {name: web}",
		),
		"deploy/list.yaml": file(
			"apiVersion: v1", // 1
			"kind: List",
			"items:",
			"- apiVersion: v1", // 4
			"  kind: Secret",
			"  metadata: {name: s1}",
			"- {apiVersion: v1, kind: Secret, metadata: {name: s2}}", // 7
		),
		"deploy/one.json": file(
			`{`,
			`  "apiVersion": "v1", "kind": "ServiceAccount",`,
			`  "metadata": {"name": "robot"}`,
			`}`,
		),
		"deploy/list.json": file(
			`{"apiVersion": "apps/v1", "kind": "DeploymentList", "items": [`,
			`  {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1"}},`,
			`  {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d2"}}`,
			`]}`,
			``,
			`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "streamed"}}`,
		),
		"deploy/crlf.yaml":          {Data: []byte("apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: crlf-a\r\n---\r\n" + cm("crlf-b") + "\r\n")},
		"deploy/UPPER.YAML":         cmFile("upper"),
		"deploy/notes.txt":          file("apiVersion: nope"),
		"deploy/.hidden.yaml":       file("not: [valid"),
		"deploy/.git/config.yaml":   file("not: [valid"),
		"deploy/chart/values.yamlx": file("not: [valid"),
		"elsewhere/x.yaml":          file("not: [valid"),
	}
	out, err := Render(t.Context(), fsys, "", DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := []found{
		cmFound("deploy/UPPER.YAML", 1, "upper"),
		cmFound("deploy/crlf.yaml", 1, "crlf-a"),
		cmFound("deploy/crlf.yaml", 6, "crlf-b"),
		{File: "deploy/list.json", Line: 1, APIVersion: "apps/v1", Kind: "Deployment", Name: "d1"},
		{File: "deploy/list.json", Line: 1, APIVersion: "apps/v1", Kind: "Deployment", Name: "d2"},
		cmFound("deploy/list.json", 6, "streamed"),
		{File: "deploy/list.yaml", Line: 4, APIVersion: "v1", Kind: "Secret", Name: "s1"},
		{File: "deploy/list.yaml", Line: 7, APIVersion: "v1", Kind: "Secret", Name: "s2"},
		{File: "deploy/one.json", Line: 1, APIVersion: "v1", Kind: "ServiceAccount", Name: "robot"},
		cmFound("deploy/web.yaml", 3, "web-a"),
		cmFound("deploy/web.yaml", 11, "web-b"),
		{File: "deploy/web.yaml", Line: 17, APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
		{File: "deploy/web/svc.yml", Line: 1, APIVersion: "v1", Kind: "Service", Name: "web"},
	}
	if diff := cmp.Diff(want, summarize(out)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	if out.Files != 7 || out.Dir != "deploy" || out.Kustomize {
		t.Errorf("Files, Dir, Kustomize = %d, %q, %v; want 7, \"deploy\", false", out.Files, out.Dir, out.Kustomize)
	}
}

// TestRenderValues checks that values mean what they mean to kubectl: JSON numbers are int64 or
// float64 (what unstructured objects hold), YAML 1.1 booleans, and timestamps stay strings.
func TestRenderValues(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{"deploy/a.yaml": file(
		cm("values"),
		"data:",
		"  quoted: \"007\"",
		"  when: 2024-01-02",
		"spec:",
		"  replicas: 3",
		"  ratio: 0.5",
		"  enabled: yes",
		"  anchor: &a {x: 1}",
		"  alias: *a",
	)}
	out, err := Render(t.Context(), fsys, "", DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "values"},
		"data": map[string]any{"quoted": "007", "when": "2024-01-02"},
		"spec": map[string]any{
			"replicas": int64(3), "ratio": 0.5, "enabled": true,
			"anchor": map[string]any{"x": int64(1)}, "alias": map[string]any{"x": int64(1)},
		},
	}
	if diff := cmp.Diff(want, out.Objects[0].Object); diff != "" {
		t.Errorf("object (-want +got):\n%s", diff)
	}
	if cp := out.Objects[0].DeepCopy(); !cmp.Equal(cp.Object, want) {
		t.Errorf("DeepCopy changed the object")
	}
}

func TestRenderInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{
			name: "scanner error in a later document",
			fsys: fstest.MapFS{"deploy/web.yaml": file(
				cm("a"), // 1-4
				"---",   // 5
				"apiVersion: v1",
				"kind: ConfigMap",
				"metadata:",
				"  name: b",
				"   labels: x", // 10
			)},
			want: "deploy/web.yaml:10: mapping values are not allowed in this context",
		},
		{
			name: "parser error in a later document",
			fsys: fstest.MapFS{"deploy/web.yaml": file(
				cm("a"),         // 1-4
				"---",           // 5
				cm("b"),         // 6-9
				"data:",         // 10
				"  list: [a, b", // 11
				"  next: c",
			)},
			want: "deploy/web.yaml:11: did not find expected ',' or ']'",
		},
		{
			name: "error on the first line of a later document",
			fsys: fstest.MapFS{"deploy/web.yaml": file(
				cm("a"),   // 1-4
				"---",     // 5
				"a: b: c", // 6
			)},
			want: "deploy/web.yaml:6: mapping values are not allowed in this context",
		},
		{
			name: "error on the first line of the file",
			fsys: fstest.MapFS{"deploy/web.yaml": file("a: b: c")},
			want: "deploy/web.yaml:1: mapping values are not allowed in this context",
		},
		{
			name: "tab indentation",
			fsys: fstest.MapFS{"deploy/web.yaml": file(cm("a"), "data:", "\tkey: v")},
			want: "deploy/web.yaml:6: found character that cannot start any token",
		},
		{
			name: "unterminated flow mapping at the end",
			fsys: fstest.MapFS{"deploy/web.yaml": file(cm("a"), "---", "", "data: {a: 1")},
			want: "deploy/web.yaml:7: did not find expected ',' or '}'",
		},
		{
			name: "unknown alias",
			fsys: fstest.MapFS{"deploy/web.yaml": file(cm("a"), "---", cm("b"), "data: *nowhere")},
			want: "deploy/web.yaml:10: unknown anchor 'nowhere' referenced",
		},
		{
			name: "control character",
			fsys: fstest.MapFS{"deploy/web.yaml": file(cm("a"), "---", cm("b"), "data: {x: \"\x01\"}")},
			want: "deploy/web.yaml:10: control characters are not allowed",
		},
		{
			name: "invalid document separator",
			fsys: fstest.MapFS{"deploy/web.yaml": file(cm("a"), "--- kind: x")},
			want: `deploy/web.yaml:5: "--- kind: x": put the document separator --- on a line of its own`,
		},
		{
			name: "duplicate key",
			fsys: fstest.MapFS{"deploy/web.yaml": file(cm("a"), "---", cm("b"), "  namespace: x", "  name: c")},
			want: `deploy/web.yaml:11: key "name" appears twice in one mapping (first on line 9)`,
		},
		{
			name: "not a mapping",
			fsys: fstest.MapFS{"deploy/web.yaml": file(cm("a"), "---", "- a", "- b")},
			want: "deploy/web.yaml:6: expected a Kubernetes object (a mapping with apiVersion, kind and metadata), found a list",
		},
		{
			name: "a scalar",
			fsys: fstest.MapFS{"deploy/web.yaml": file("hello")},
			want: `deploy/web.yaml:1: expected a Kubernetes object (a mapping with apiVersion, kind and metadata), found the value "hello"`,
		},
		{
			name: "no metadata.name",
			fsys: fstest.MapFS{"deploy/web.yaml": file(
				cm("a"), "---", "", "# the deployment", // 1-7
				"apiVersion: apps/v1", // 8
				"kind: Deployment",
				"metadata:",
				"  labels: {app: web}",
			)},
			want: "deploy/web.yaml:8: object has no metadata.name",
		},
		{
			name: "generateName",
			fsys: fstest.MapFS{"deploy/job.yaml": file("apiVersion: batch/v1", "kind: Job", "metadata:", "  generateName: migrate-")},
			want: "deploy/job.yaml:1: Job has metadata.generateName but no metadata.name: name required (Brain applies objects by name)",
		},
		{
			name: "a value kubectl's YAML decoder refuses",
			fsys: fstest.MapFS{"deploy/web.yaml": file(cm("a"), "---", cm("b"), "data:", "  n: !!int x")},
			want: "deploy/web.yaml:6: cannot decode !!str `x` as a !!int", // the line of the document
		},
		{
			name: "no kind",
			fsys: fstest.MapFS{"deploy/web.yaml": file("apiVersion: v1", "metadata: {name: a}")},
			want: "deploy/web.yaml:1: object has no kind",
		},
		{
			name: "no apiVersion",
			fsys: fstest.MapFS{"deploy/web.yaml": file("kind: ConfigMap", "metadata: {name: a}")},
			want: "deploy/web.yaml:1: object has no apiVersion",
		},
		{
			name: "List item without a name",
			fsys: fstest.MapFS{"deploy/list.yaml": file(
				"apiVersion: v1", "kind: List", "items:",
				"- {apiVersion: v1, kind: Secret, metadata: {name: a}}",
				"- apiVersion: v1", // 5
				"  kind: Secret",
			)},
			want: "deploy/list.yaml:5: object has no metadata.name",
		},
		{
			name: "List item not an object",
			fsys: fstest.MapFS{"deploy/list.yaml": file("apiVersion: v1", "kind: List", "items:", "- 7")},
			want: "deploy/list.yaml:4: items[0] of List is not an object",
		},
		{
			name: "invalid JSON",
			fsys: fstest.MapFS{"deploy/a.json": file(`{`, `  "apiVersion": "v1",`, `  "kind": "ConfigMap",`, `  "metadata": {"name": "a"},`, `}`)},
			want: "deploy/a.json:5: invalid character '}' looking for beginning of object key string",
		},
		{
			name: "truncated JSON",
			fsys: fstest.MapFS{"deploy/a.json": file(`{`, `  "apiVersion": "v1",`)},
			want: "deploy/a.json:2: unexpected EOF",
		},
		{
			name: "JSON array",
			fsys: fstest.MapFS{"deploy/a.json": file(``, `[{"apiVersion": "v1"}]`)},
			want: "deploy/a.json:2: expected a Kubernetes object (a JSON object with apiVersion, kind and metadata), found an array",
		},
		{
			name: "kustomization below the manifest directory",
			fsys: fstest.MapFS{"deploy/a.yaml": cmFile("a"), "deploy/base/kustomization.yaml": file("resources: [a.yaml]")},
			want: "deploy/base/kustomization.yaml: kustomize builds only a kustomization at the manifest directory itself (deploy/); set path to deploy/base/, or add a kustomization to deploy/ that lists it",
		},
		{
			name: "symbolic link",
			fsys: fstest.MapFS{"deploy/a.yaml": cmFile("a"), "deploy/b.yaml": {Data: []byte("../b.yaml"), Mode: fs.ModeSymlink}},
			want: "deploy/b.yaml: is a symbolic link; Brain reads only files stored in the repository, so replace it with the file itself",
		},
		{
			name: "two kustomization files",
			fsys: fstest.MapFS{"deploy/kustomization.yaml": file("resources: []"), "deploy/kustomization.yml": file("resources: []")},
			want: "deploy/: has deploy/kustomization.yaml and deploy/kustomization.yml; keep only one kustomization file",
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

func TestRenderLimits(t *testing.T) {
	t.Parallel()
	three := fstest.MapFS{"deploy/a.yaml": cmFile("a", "b"), "deploy/b.yaml": cmFile("c"), "deploy/c.yaml": cmFile("d")}
	size := int64(len(three["deploy/a.yaml"].Data))
	tests := []struct {
		name string
		lim  Limits
		want string
	}{
		{
			name: "files",
			lim:  Limits{MaxFiles: 2},
			want: "more than 2 manifest files to read (RENDER_MAX_FILES=2); deploy fewer files or ask the operator to raise the limit",
		},
		{
			name: "bytes of one file",
			lim:  Limits{MaxFileBytes: size - 1},
			want: fmt.Sprintf("deploy/a.yaml is %d B, more than the %d B allowed for one manifest file (RENDER_MAX_FILE_BYTES=%d); split it or ask the operator to raise the limit",
				size, size-1, size-1),
		},
		{
			name: "bytes of all files",
			lim:  Limits{MaxTotalBytes: size + 10},
			want: fmt.Sprintf("manifest files add up to more than %d B (RENDER_MAX_TOTAL_BYTES=%d) at deploy/b.yaml; deploy less or ask the operator to raise the limit",
				size+10, size+10),
		},
		{
			name: "objects",
			lim:  Limits{MaxObjects: 3},
			want: "more than 3 Kubernetes objects (RENDER_MAX_OBJECTS=3); deploy fewer objects or ask the operator to raise the limit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(t.Context(), three, "", tt.lim)
			wantError(t, err, proto.CodeManifestLimit, tt.want)
		})
	}
	t.Run("exactly at every limit", func(t *testing.T) {
		t.Parallel()
		total := size + 2*int64(len(three["deploy/b.yaml"].Data))
		out, err := Render(t.Context(), three, "", Limits{MaxFiles: 3, MaxFileBytes: size, MaxTotalBytes: total, MaxObjects: 4})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Objects) != 4 || out.Files != 3 {
			t.Errorf("objects, files = %d, %d; want 4, 3", len(out.Objects), out.Files)
		}
	})
}

func TestDefaultLimits(t *testing.T) {
	t.Parallel()
	want := Limits{MaxFiles: 500, MaxFileBytes: 1 << 20, MaxTotalBytes: 10 << 20, MaxObjects: 1000}
	if diff := cmp.Diff(want, DefaultLimits()); diff != "" {
		t.Errorf("DefaultLimits (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, Limits{MaxFiles: -1}.withDefaults()); diff != "" {
		t.Errorf("zero Limits (-want +got):\n%s", diff)
	}
}

func TestRenderCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, fsys := range []fstest.MapFS{
		{"deploy/a.yaml": cmFile("a")},
		{"deploy/kustomization.yaml": file("resources: [a.yaml]"), "deploy/a.yaml": cmFile("a")},
	} {
		_, err := Render(ctx, fsys, "", DefaultLimits())
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	}
}

func TestByteSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 1 << 20: "1 MiB", 10 << 20: "10 MiB", 3 << 30: "3 GiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// brokenFS is a MapFS whose files named in broken fail to open, as a damaged object store would.
type brokenFS struct {
	fstest.MapFS
	broken string
}

var errBroken = errors.New("object store damaged")

func (f brokenFS) Open(name string) (fs.File, error) {
	if name == f.broken {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errBroken}
	}
	return f.MapFS.Open(name)
}

// TestRenderReadFailure checks that a failure to read the commit is not blamed on the user: it
// is a plain error, not a *proto.Error, and keeps its cause.
func TestRenderReadFailure(t *testing.T) {
	t.Parallel()
	for _, fsys := range []brokenFS{
		{MapFS: fstest.MapFS{"deploy/a.yaml": cmFile("a"), "deploy/b.yaml": cmFile("b")}, broken: "deploy/b.yaml"},
		{MapFS: fstest.MapFS{"deploy/kustomization.yaml": file("resources: [b.yaml]"), "deploy/b.yaml": cmFile("b")}, broken: "deploy/b.yaml"},
	} {
		_, err := Render(t.Context(), fsys, "", DefaultLimits())
		var pe *proto.Error
		if errors.As(err, &pe) || !errors.Is(err, errBroken) {
			t.Errorf("error = %v, want a plain error wrapping %v", err, errBroken)
		}
		if err != nil && !strings.Contains(err.Error(), "deploy/b.yaml") {
			t.Errorf("error %q does not name the file", err)
		}
	}
}
