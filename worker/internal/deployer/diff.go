package deployer

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Diff summaries of a dry run.
const (
	diffNew      = "new object"
	diffDeleted  = "would be deleted"
	maxDiffLines = 20
	maxDiffValue = 40
)

// diffSummary lists what applying would change in live to make it merged, one change per line:
// "~ spec.replicas: 1 → 3", "+ data.b", "- metadata.labels.tier". Only labels, annotations and the
// object's content count, not status or other metadata; values of Secrets are never shown.
func diffSummary(live, merged *unstructured.Unstructured) string {
	showValues := live.GetKind() != "Secret"
	var lines []string
	add := func(op, path string, from, to any) {
		line := op + " " + path
		if showValues && op == "~" && isScalar(from) && isScalar(to) {
			line += ": " + shortValue(from) + " → " + shortValue(to)
		}
		lines = append(lines, line)
	}
	diffValues("", comparable(live), comparable(merged), add)
	if len(lines) > maxDiffLines {
		more := len(lines) - maxDiffLines
		lines = append(lines[:maxDiffLines], fmt.Sprintf("… and %d more changes", more))
	}
	return strings.Join(lines, "\n")
}

// comparable is the part of obj a diff shows.
func comparable(obj *unstructured.Unstructured) map[string]any {
	out := map[string]any{}
	for k, v := range obj.Object {
		if k != "metadata" && k != "status" && k != "apiVersion" && k != "kind" {
			out[k] = v
		}
	}
	meta := map[string]any{}
	if l, ok := obj.Object["metadata"].(map[string]any); ok {
		for _, k := range []string{"labels", "annotations"} {
			if v, ok := l[k]; ok {
				meta[k] = v
			}
		}
	}
	if len(meta) > 0 {
		out["metadata"] = meta
	}
	return out
}

func diffValues(path string, a, b any, add func(op, path string, from, to any)) {
	am, aIsMap := a.(map[string]any)
	bm, bIsMap := b.(map[string]any)
	if aIsMap && bIsMap {
		keys := make([]string, 0, len(am)+len(bm))
		for k := range am {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			av, inA := am[k]
			bv, inB := bm[k]
			p := joinPath(path, k)
			switch {
			case !inA:
				add("+", p, nil, bv)
			case !inB:
				add("-", p, av, nil)
			default:
				diffValues(p, av, bv, add)
			}
		}
		return
	}
	as, aIsList := a.([]any)
	bs, bIsList := b.([]any)
	if aIsList && bIsList && len(as) == len(bs) {
		for i := range as {
			diffValues(path+"["+strconv.Itoa(i)+"]", as[i], bs[i], add)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		add("~", path, a, b)
	}
}

func joinPath(path, key string) string {
	if strings.ContainsAny(key, "./[]") {
		key = "[" + strconv.Quote(key) + "]"
		return path + key
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, bool, int64, float64, nil:
		return true
	}
	return false
}

func shortValue(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		s = "null"
	case string:
		s = strconv.Quote(v)
	default:
		s = fmt.Sprint(v)
	}
	if r := []rune(s); len(r) > maxDiffValue {
		s = string(r[:maxDiffValue-1]) + "…"
	}
	return s
}
