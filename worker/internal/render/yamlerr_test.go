package render

import (
	"testing"

	"github.com/backendim/brain/proto"
)

// TestYAMLErrorLines places each broken document after a valid one (lines 1-5), so the line in
// the message must count from the start of the file, and checks the line people would point at.
func TestYAMLErrorLines(t *testing.T) {
	t.Parallel()
	const prefix = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n---\n" // the document below starts on line 6
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"unclosed flow sequence", "a: 1\nb: [1,\nc: 3\n", "x.yaml:7: did not find expected ',' or ']'"},
		{"unclosed flow sequence at the end", "a: 1\nb: 2\nc: 3\nd: [\n", "x.yaml:9: did not find expected node content"},
		{"unclosed flow mapping on the first line", "a: {b\n", "x.yaml:6: did not find expected ',' or '}'"},
		{"extra closing bracket", "a: 1\nb: [a, b]]\n", "x.yaml:7: did not find expected key"},
		{"over-indented key", "a: 1\n  b: 2\n", "x.yaml:7: mapping values are not allowed in this context"},
		{"under-indented key", "a:\n  b: 1\n c: 2\n", "x.yaml:8: did not find expected key"},
		{"two values on the first line", "a: b: c\n", "x.yaml:6: mapping values are not allowed in this context"},
		{"sequence after mapping", "a: 1\n- b\n", "x.yaml:7: did not find expected key"},
		{"mapping after sequence", "- a\nb: 1\n", "x.yaml:7: did not find expected '-' indicator"},
		// The parser names the line the sequence starts on, not the stray key below it.
		{"key inside a sequence", "a: 1\nb:\n  - x\n  y: 2\n", "x.yaml:8: did not find expected '-' indicator"},
		{"block scalar dedent", "a: 1\nb: |\n  x\n y: 2\n", "x.yaml:9: did not find expected key"},
		{"tab indentation", "a: 1\n\tb: 2\n", "x.yaml:7: found a tab character that violates indentation"},
		{"unterminated double quote", "a: 1\nb: \"unterminated\nc: 2\n", "x.yaml:7: found unexpected end of stream"},
		{"unterminated single quote", "key: value\nother: 'x\n", "x.yaml:7: found unexpected end of stream"},
		{"text after a quoted value", "a: 1\nb: 'x' y\n", "x.yaml:7: did not find expected key"},
		{"reserved character", "a: 1\nb: @x\n", "x.yaml:7: found character that cannot start any token"},
		{"bad escape", "a: 1\nb: \"\\q\"\n", "x.yaml:7: found unknown escape character"},
		{"empty anchor", "a: 1\nb: &\n", "x.yaml:7: did not find expected alphabetic or numeric character"},
		{"unclosed verbatim tag", "a: 1\nb: !<tag\n", "x.yaml:7: did not find the expected '>'"},
		{"unknown alias", "a: 1\nb: 2\nc: *x\n", "x.yaml:8: unknown anchor 'x' referenced"},
		{"invalid UTF-8", "a: 1\nb: \xff\n", "x.yaml:7: invalid leading UTF-8 octet"},
		{"control character", "a: 1\nb: 2\nc: \x07\n", "x.yaml:8: control characters are not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := decodeFile("x.yaml", []byte(prefix+tt.doc), func(Object) error { return nil })
			wantError(t, err, proto.CodeInvalidManifest, tt.want)
		})
	}
}
