package render

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The YAML parser (go.yaml.in/yaml/v3) counts lines from 0 internally and adds 1 only for
// scanner errors: a parser error says "line N" for what is line N+1, and an error on the first
// line carries no line at all. yamlErrorLine undoes that, so messages name the line people see.

var yamlLineError = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// parserProblem reports whether msg is a message of the YAML parser (as opposed to its scanner),
// whose line numbers are one short.
func parserProblem(msg string) bool {
	switch msg {
	case "did not find expected ',' or ']'", "did not find expected ',' or '}'",
		"did not find expected '-' indicator", "did not find expected <document start>",
		"did not find expected <stream-start>", "did not find expected key",
		"did not find expected node content", "found duplicate %TAG directive",
		"found duplicate %YAML directive", "found incompatible YAML document",
		"found undefined tag handle":
		return true
	}
	return false
}

var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// yamlErrorLine returns the 1-based line within doc that a YAML parse error of doc concerns, and
// the parser's message without its "yaml: line N:" prefix.
func yamlErrorLine(err error, doc []byte) (int, string) {
	msg := err.Error()
	line := 0
	if m := yamlLineError.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if parserProblem(msg) {
			line++
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		switch {
		case unknownAnchor.MatchString(msg):
			line = lineOf(doc, bytes.Index(doc, []byte("*"+unknownAnchor.FindStringSubmatch(msg)[1])))
		case strings.Contains(msg, "UTF-8") || strings.Contains(msg, "control characters") ||
			strings.Contains(msg, "Unicode"):
			line = lineOf(doc, firstUnreadable(doc))
		default:
			line = 1 // the parser leaves out line numbers on the first line
		}
	}
	return clampLine(line, doc), msg
}

// clampLine keeps line within the lines doc has: an error "at the end of the stream" is reported
// on the line after the last newline, which people do not see as a line.
func clampLine(line int, doc []byte) int {
	last := bytes.Count(doc, []byte("\n"))
	if len(doc) > 0 && doc[len(doc)-1] != '\n' {
		last++
	}
	if line > last {
		line = last
	}
	if line < 1 {
		line = 1
	}
	return line
}

// lineOf returns the 1-based line of byte offset off in doc (1 for a negative offset).
func lineOf(doc []byte, off int) int {
	if off < 0 {
		return 1
	}
	return bytes.Count(doc[:off], []byte("\n")) + 1
}

// firstUnreadable returns the offset of the first byte YAML refuses: invalid UTF-8 or a control
// character other than tab, newline and carriage return; -1 if there is none.
func firstUnreadable(doc []byte) int {
	for i := 0; i < len(doc); {
		r, size := utf8.DecodeRune(doc[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		if !printable(r) {
			return i
		}
		i += size
	}
	return -1
}

// printable is YAML's c-printable set.
func printable(r rune) bool {
	switch {
	case r == '\t', r == '\n', r == '\r', r == 0x85:
		return true
	case r >= 0x20 && r <= 0x7E:
		return true
	case r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}
