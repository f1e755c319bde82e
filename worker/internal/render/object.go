// Package render finds the Kubernetes manifests of a commit and turns them into objects: a
// kustomization when there is one, otherwise every YAML and JSON file below the manifest directory.
package render

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// Limits bound what one commit may make the worker read and hold.
type Limits struct {
	MaxFiles      int   // manifest files read (RENDER_MAX_FILES)
	MaxFileBytes  int64 // size of one file (RENDER_MAX_FILE_BYTES)
	MaxTotalBytes int64 // bytes of all files read (RENDER_MAX_TOTAL_BYTES)
	MaxObjects    int   // objects rendered (RENDER_MAX_OBJECTS)
}

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{MaxFiles: 500, MaxFileBytes: 1 << 20, MaxTotalBytes: 10 << 20, MaxObjects: 1000}
}

// Object is one rendered Kubernetes object and where it came from.
type Object struct {
	*unstructured.Unstructured
	File string // repository-relative path, or "kustomize:<dir>" for kustomize output
	Line int    // 1-based line where the object's document starts in File; 0 if unknown
}

// Output is what Render found.
type Output struct {
	Dir       string // the manifest directory used, repository-relative
	Kustomize bool   // built with kustomize
	Files     int    // files read
	Objects   []Object
}
