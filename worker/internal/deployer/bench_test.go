package deployer_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/worker/internal/render"
)

// kubectl is the binary BenchmarkKubectlApply100 compares Brain with.
const kubectl = "/usr/bin/kubectl"

// hundred is 50 ConfigMaps and 50 Services, optionally with a namespace (for kubectl).
func hundred(ns string) string {
	var b strings.Builder
	meta := func(name string) string {
		if ns == "" {
			return "metadata: {name: " + name + "}\n"
		}
		return "metadata: {name: " + name + ", namespace: " + ns + "}\n"
	}
	for i := range 50 {
		fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\n%sdata: {index: %q, payload: %q}\n---\n",
			meta(fmt.Sprintf("config-%02d", i)), fmt.Sprint(i), strings.Repeat("x", 200))
		fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\n%sspec: {selector: {app: app-%02d}, ports: [{port: 80, targetPort: 8080}]}\n---\n",
			meta(fmt.Sprintf("svc-%02d", i)), i)
	}
	return b.String()
}

func hundredObjects(b *testing.B) []render.Object {
	objs := objects(b, "bench.yaml", hundred(""))
	if len(objs) != 100 {
		b.Fatalf("%d objects, want 100", len(objs))
	}
	return objs
}

// BenchmarkApply100 deploys 100 objects into a fresh namespace: policy, validation, namespace and
// guards, apply, inventory and the health wait, as the worker's ServiceAccount.
func BenchmarkApply100(b *testing.B) {
	d := newDeployer(b, worker, testOptions())
	objs := hundredObjects(b)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c := newChat(b)
		b.StartTimer()
		deploy(b, d, c.request(objs))
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkRedeployUnchanged100 deploys the same 100 objects again: everything is unchanged.
func BenchmarkRedeployUnchanged100(b *testing.B) {
	d := newDeployer(b, worker, testOptions())
	objs := hundredObjects(b)
	c := newChat(b)
	deploy(b, d, c.request(objs))
	b.ResetTimer()
	for range b.N {
		deploy(b, d, c.request(objs))
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkKubectlApply100 applies the same 100 objects, and their namespace, with
// `kubectl apply --server-side` as the same ServiceAccount, for docs/performance.md's ratio: once
// as people run it (client-side schema validation, which parses the server's OpenAPI document on
// every run) and once with --validate=false (the API requests alone). kubectl keeps its discovery
// cache between iterations, as it would on a workstation.
func BenchmarkKubectlApply100(b *testing.B) {
	for _, validate := range []string{"strict", "false"} {
		b.Run("validate="+validate, func(b *testing.B) {
			k := newKubectl(b, validate)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				c := newChat(b)
				file := k.write(b, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+c.ns+"}\n---\n"+hundred(c.ns))
				b.StartTimer()
				k.apply(b, file)
			}
			b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}

// BenchmarkKubectlReapplyUnchanged100 is BenchmarkRedeployUnchanged100 with kubectl.
func BenchmarkKubectlReapplyUnchanged100(b *testing.B) {
	for _, validate := range []string{"strict", "false"} {
		b.Run("validate="+validate, func(b *testing.B) {
			k := newKubectl(b, validate)
			c := newChat(b)
			file := k.write(b, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+c.ns+"}\n---\n"+hundred(c.ns))
			k.apply(b, file)
			b.ResetTimer()
			for range b.N {
				k.apply(b, file)
			}
			b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}

type kubectlRun struct {
	kubeconfig, cache, dir, validate string
}

func newKubectl(b *testing.B, validate string) *kubectlRun {
	if _, err := os.Stat(kubectl); err != nil {
		b.Fatalf("this benchmark compares with %s: %v", kubectl, err)
	}
	return &kubectlRun{kubeconfig: kube.Kubeconfig(b, worker), cache: b.TempDir(), dir: b.TempDir(), validate: validate}
}

func (k *kubectlRun) write(b *testing.B, manifests string) string {
	f, err := os.CreateTemp(k.dir, "*.yaml")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(manifests); err != nil {
		b.Fatal(err)
	}
	return filepath.Clean(f.Name())
}

func (k *kubectlRun) apply(b *testing.B, file string) {
	ctx := ctxFor(b, time.Minute)
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", k.kubeconfig, "--cache-dir", k.cache,
		"apply", "--server-side", "--validate="+k.validate, "--field-manager", "kubectl-bench", "-f", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("kubectl apply: %v\n%s", err, out.String())
	}
}
