package render

import (
	"bytes"
	"errors"
	"testing"
	"testing/fstest"

	"github.com/backendim/brain/proto"
)

// FuzzRender renders a repository whose only manifest is one fuzzed file, as YAML and as JSON.
// Whatever the content, Render must not panic, must fail only with a manifest error a user can
// act on, and must return only complete objects with a line inside the file.
func FuzzRender(f *testing.F) {
	for _, seed := range []string{
		cm("a"),
		cm("a") + "\n---\n" + cm("b") + "\n",
		"apiVersion: v1\nkind: List\nitems:\n- " + `{apiVersion: v1, kind: Secret, metadata: {name: s}}`,
		`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}`,
		`{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}]}`,
		"a: [1,\n",
		"--- x\n",
		"a: &a [*a]\n",
		"\xef\xbb\xbfapiVersion: v1\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"deploy/app.yaml", "deploy/app.json"} {
			out, err := Render(t.Context(), fstest.MapFS{name: {Data: data}}, "", DefaultLimits())
			if err != nil {
				var pe *proto.Error
				if !errors.As(err, &pe) {
					t.Fatalf("%s: error %v (%T) is not a *proto.Error", name, err, err)
				}
				switch pe.Code {
				case proto.CodeInvalidManifest, proto.CodeManifestsNotFound, proto.CodeManifestLimit:
				default:
					t.Fatalf("%s: unexpected code %s: %v", name, pe.Code, err)
				}
				continue
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, o := range out.Objects {
				if o.GetAPIVersion() == "" || o.GetKind() == "" || o.GetName() == "" {
					t.Fatalf("%s: incomplete object %v", name, o.Object)
				}
				if o.File != name || o.Line < 1 || o.Line > lines {
					t.Fatalf("%s: object %s at %s:%d, outside the file of %d lines", name, o.GetName(), o.File, o.Line, lines)
				}
				o.DeepCopy() // panics on values an unstructured object may not hold
			}
		}
	})
}
