package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/backendim/brain/proto"
)

// emitFunc receives each object decoded from a file, in order; an error stops decoding.
type emitFunc func(Object) error

// invalid is the error for a file that is not a valid manifest, naming the file and line (when
// line is 0 the line is unknown and left out).
func invalid(file string, line int, format string, args ...any) *proto.Error {
	if line <= 0 {
		return proto.Errorf(proto.CodeInvalidManifest, "%s: %s", file, fmt.Sprintf(format, args...))
	}
	return proto.Errorf(proto.CodeInvalidManifest, "%s:%d: %s", file, line, fmt.Sprintf(format, args...))
}

// decodeFile turns one manifest file into objects: JSON for *.json, else multi-document YAML.
func decodeFile(name string, data []byte, emit emitFunc) error {
	if strings.EqualFold(path.Ext(name), ".json") {
		return decodeJSON(name, data, emit)
	}
	return splitYAML(name, data, func(doc []byte, first int) error {
		return decodeYAMLDoc(name, doc, first, emit)
	})
}

// splitYAML calls fn with each document of a YAML stream and the 1-based line it starts on. It
// splits where kubectl does: at lines starting with "---" followed by nothing but a comment.
func splitYAML(name string, data []byte, fn func(doc []byte, firstLine int) error) error {
	start, startLine, line := 0, 1, 1
	for off := 0; off < len(data); line++ {
		next := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		text := bytes.TrimRight(data[off:next], "\r\n")
		if bytes.HasPrefix(text, []byte("---")) {
			if rest := bytes.TrimSpace(text[3:]); len(rest) > 0 && rest[0] != '#' {
				return invalid(name, line, "%q: put the document separator --- on a line of its own", text)
			}
			if err := fn(data[start:off], startLine); err != nil {
				return err
			}
			start, startLine = next, line+1
		}
		off = next
	}
	return fn(data[start:], startLine)
}

// decodeYAMLDoc decodes one YAML document that starts on line first of file name. The document
// is parsed twice: once into a node tree, for syntax errors with lines and the lines of objects,
// and once by sigs.k8s.io/yaml into JSON, so values mean what they mean to kubectl.
func decodeYAMLDoc(name string, doc []byte, first int, emit emitFunc) error {
	var n yaml.Node
	if err := yaml.Unmarshal(doc, &n); err != nil {
		line, msg := yamlErrorLine(err, doc)
		return invalid(name, first+line-1, "%s", msg)
	}
	if len(n.Content) == 0 {
		return nil // only comments, or nothing
	}
	root := n.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil
	}
	line := first + root.Line - 1
	if root.Kind != yaml.MappingNode {
		return invalid(name, line, "expected a Kubernetes object (a mapping with apiVersion, kind and metadata), found %s", nodeKind(root))
	}
	if dup, prev, key := duplicateKey(root); dup != nil {
		return invalid(name, first+dup.Line-1, "key %q appears twice in one mapping (first on line %d)", key, first+prev.Line-1)
	}
	j, err := sigsyaml.YAMLToJSON(doc)
	if err != nil {
		return invalid(name, line, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var m map[string]any
	if err := utiljson.Unmarshal(j, &m); err != nil {
		return invalid(name, line, "%v", err)
	}
	return emitObjects(name, line, m, itemLines(root, first), emit)
}

// nodeKind names a YAML node's kind for error messages.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

// duplicateKey finds a mapping below n that has the same scalar key twice, and returns the key
// node of the second and first occurrence.
func duplicateKey(n *yaml.Node) (dup, prev *yaml.Node, key string) {
	if n.Kind == yaml.MappingNode {
		seen := make(map[string]*yaml.Node, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				continue
			}
			if p, ok := seen[k.Value]; ok {
				return k, p, k.Value
			}
			seen[k.Value] = k
		}
	}
	if n.Kind == yaml.AliasNode {
		return nil, nil, ""
	}
	for _, c := range n.Content {
		if d, p, k := duplicateKey(c); d != nil {
			return d, p, k
		}
	}
	return nil, nil, ""
}

// itemLines returns the file lines of the entries of a top-level "items" sequence.
func itemLines(root *yaml.Node, first int) []int {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "items" || root.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		var lines []int
		for _, it := range root.Content[i+1].Content {
			lines = append(lines, first+it.Line-1)
		}
		return lines
	}
	return nil
}

// decodeJSON decodes a JSON file: one object, a List, or a stream of them.
func decodeJSON(name string, data []byte, emit emitFunc) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := skipSpace(data, int(dec.InputOffset()))
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return invalid(name, jsonErrorLine(data, err), "%v", err)
		}
		line := lineOf(data, start)
		if raw[0] != '{' {
			return invalid(name, line, "expected a Kubernetes object (a JSON object with apiVersion, kind and metadata), found %s", jsonKind(raw[0]))
		}
		var m map[string]any
		if err := utiljson.Unmarshal(raw, &m); err != nil {
			return invalid(name, line, "%v", err)
		}
		if err := emitObjects(name, line, m, nil, emit); err != nil {
			return err
		}
	}
}

func skipSpace(data []byte, off int) int {
	for off < len(data) && strings.IndexByte(" \t\r\n", data[off]) >= 0 {
		off++
	}
	return off
}

// jsonErrorLine returns the line a JSON decoding error concerns: where the syntax error is, or
// the last line for a file that ends too soon.
func jsonErrorLine(data []byte, err error) int {
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 {
		return lineOf(data, int(se.Offset)-1)
	}
	return clampLine(lineOf(data, len(data)), data)
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// emitObjects emits m, or the items of m when it is a List (kind v1 List, or any *List kind with
// an items array). itemLines are the lines of the items when known; line is used otherwise.
func emitObjects(name string, line int, m map[string]any, itemLines []int, emit emitFunc) error {
	kind, _ := m["kind"].(string)
	items, isList := m["items"]
	if !isList || !strings.HasSuffix(kind, "List") {
		return emitObject(name, line, m, emit)
	}
	if items == nil {
		return nil
	}
	list, ok := items.([]any)
	if !ok {
		return invalid(name, line, "items of %s must be a list of objects", kind)
	}
	for i, it := range list {
		il := line
		if i < len(itemLines) {
			il = itemLines[i]
		}
		im, ok := it.(map[string]any)
		if !ok {
			return invalid(name, il, "items[%d] of %s is not an object", i, kind)
		}
		if err := emitObject(name, il, im, emit); err != nil {
			return err
		}
	}
	return nil
}

// emitObject checks that m names itself completely and emits it.
func emitObject(name string, line int, m map[string]any, emit emitFunc) error {
	u := &unstructured.Unstructured{Object: m}
	if problem := objectProblem(u); problem != "" {
		return invalid(name, line, "%s", problem)
	}
	return emit(Object{Unstructured: u, File: name, Line: line})
}

// objectProblem says what a Kubernetes object lacks, or "" when it has apiVersion, kind and
// metadata.name.
func objectProblem(u *unstructured.Unstructured) string {
	switch {
	case u.GetAPIVersion() == "":
		return "object has no apiVersion"
	case u.GetKind() == "":
		return "object has no kind"
	case u.GetName() == "" && u.GetGenerateName() != "":
		return fmt.Sprintf("%s has metadata.generateName but no metadata.name: name required (Brain applies objects by name)", u.GetKind())
	case u.GetName() == "":
		return "object has no metadata.name"
	}
	return ""
}
