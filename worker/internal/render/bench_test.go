package render

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

// BenchmarkRender100 renders 100 objects (a Deployment and a Service for each of 50 apps) from
// 10 files of multi-document YAML, as a plain manifest directory.
func BenchmarkRender100(b *testing.B) {
	fsys := fstest.MapFS{}
	for f := range 10 {
		var docs []string
		for a := range 5 {
			name := fmt.Sprintf("app-%d-%d", f, a)
			docs = append(docs, deployment(name), service(name))
		}
		fsys[fmt.Sprintf("deploy/app-%02d.yaml", f)] = &fstest.MapFile{Data: []byte(strings.Join(docs, "---\n"))}
	}
	b.ReportAllocs()
	for b.Loop() {
		out, err := Render(b.Context(), fsys, "", DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		if len(out.Objects) != 100 {
			b.Fatalf("objects = %d, want 100", len(out.Objects))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/object")
}

func deployment(name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels: {app: %[1]s}
spec:
  replicas: 2
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 8080}]
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {memory: 256Mi}
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
`, name)
}

func service(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector: {app: %[1]s}
  ports:
  - port: 80
    targetPort: 8080
`, name)
}
