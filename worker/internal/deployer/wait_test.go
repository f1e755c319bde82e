package deployer_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/kubetest"
	"github.com/backendim/brain/worker/internal/deployer"
)

// The tests of this file run against kubetest's full cluster: the real controllers roll out what
// Brain applies, the scheduler places the pods on kwok's nodes, and kwok plays them — healthy, or
// failing as the kubetest.FailLabel of their template asks. Nothing writes a status by hand.

// workload is a Deployment (or, with kind Job, a Job) named name whose pods carry fail (a
// kubetest.Fail* value, or "") and request cpu ("" for the LimitRange's default).
type workload struct {
	kind, name, fail, cpu, exitCode, message string
	replicas                                 int
	extraSpec                                string // more lines of the Deployment's spec
}

func (w workload) yaml() string {
	labels := "app: " + w.name
	if w.fail != "" {
		labels += ", " + kubetest.FailLabel + ": " + w.fail
	}
	annotations := map[string]string{kubetest.ExitCodeAnnotation: w.exitCode, kubetest.MessageAnnotation: w.message}
	var ann []string
	for k, v := range annotations {
		if v != "" {
			ann = append(ann, k+": "+strconv.Quote(v))
		}
	}
	resources := ""
	if w.cpu != "" {
		resources = "\n        resources: {requests: {cpu: \"" + w.cpu + "\"}, limits: {cpu: \"" + w.cpu + "\"}}"
	}
	pod := `    metadata:
      labels: {` + labels + `}
      annotations: {` + strings.Join(ann, ", ") + `}
    spec:
      RESTART
      containers:
      - name: ` + w.name + `
        image: registry.invalid/` + w.name + `:1` + resources + "\n"
	if w.kind == "Pod" {
		var lines []string
		for _, l := range strings.Split(strings.Replace(pod, "RESTART", "restartPolicy: Never", 1), "\n") {
			lines = append(lines, strings.TrimPrefix(l, "    "))
		}
		return "apiVersion: v1\nkind: Pod\n" + strings.Replace(strings.Join(lines, "\n"), "metadata:\n", "metadata:\n  name: "+w.name+"\n", 1)
	}
	if w.kind == "Job" {
		return `apiVersion: batch/v1
kind: Job
metadata:
  name: ` + w.name + `
spec:
  backoffLimit: 0
  template:
` + strings.Replace(pod, "RESTART", "restartPolicy: Never", 1)
	}
	replicas := w.replicas
	if replicas == 0 {
		replicas = 2
	}
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + w.name + `
spec:
  replicas: ` + strconv.Itoa(replicas) + `
  selector:
    matchLabels: {app: ` + w.name + `}` + w.extraSpec + `
  template:
` + strings.Replace(pod, "      RESTART\n", "", 1)
}

type outcome struct {
	res []proto.ObjectResult
	err error
}

func deployAsync(d *deployer.Deployer, req deployer.Request, rec *recorder) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := d.Deploy(ctx, req, rec.report)
		done <- outcome{res, err}
	}()
	return done
}

func await(t *testing.T, done <-chan outcome, timeout time.Duration) outcome {
	t.Helper()
	select {
	case o := <-done:
		return o
	case <-time.After(timeout):
		t.Fatalf("deploy did not end in %s", timeout)
		return outcome{}
	}
}

// waitingEvents returns the Pending lists of the "waiting" events recorded so far.
func (r *recorder) waitingEvents() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]string
	for _, m := range r.msgs {
		if m.Stage == proto.StageWaiting {
			out = append(out, m.Pending)
		}
	}
	return out
}

func TestWaitSucceedsWhenDeploymentBecomesAvailable(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	rec := newRecorder()
	web := workload{name: "web"}
	res, err := d.Deploy(ctxFor(t, 2*time.Minute), c.request(objects(t, "web.yaml", join(settingsBlue, web.yaml()))), rec.report)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if got := statuses(res)["Deployment/web"]; got != "Current" {
		t.Errorf("Deployment/web status %q, want Current", got)
	}
	// Whatever the wait reported on the way (on a fast machine it may have reported nothing), it
	// named the Deployment with what it waited for, never a status it had not read yet.
	for _, pending := range rec.waitingEvents() {
		if len(pending) != 1 || !strings.HasPrefix(pending[0], "Deployment/web: ") || strings.Contains(pending[0], "Unknown") {
			t.Errorf("pending = %q, want only Deployment/web with a reason", pending)
		}
	}
	dep := get(t, depGVR, c.ns, "web")
	if n, _, _ := unstructured.NestedInt64(dep.Object, "status", "availableReplicas"); n != 2 {
		t.Errorf("the Deployment has %d available replicas on the cluster, want 2", n)
	}
}

// TestWaitReportsAtOnceAndOnEveryChange: with a progress interval of an hour, every "waiting"
// event comes from a change of what is pending: the first as soon as the first read is done, the
// next ones as the crash loop's restart count rises, until the restart limit fails the job.
func TestWaitReportsAtOnceAndOnEveryChange(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	opts := testOptions()
	opts.ProgressInterval = time.Hour
	opts.CrashLoopRestarts = 4
	d := newDeployer(t, worker, opts)
	rec := newRecorder()
	web := workload{name: "web", fail: kubetest.FailCrashLoop, replicas: 1, exitCode: "3"}
	done := deployAsync(d, c.request(objects(t, "web.yaml", web.yaml())), rec)
	o := await(t, done, 2*time.Minute)
	if pe, ok := o.err.(*proto.Error); !ok || pe.Code != proto.CodeCrashLoop {
		t.Fatalf("deploy error = %v, want %s", o.err, proto.CodeCrashLoop)
	}
	events := rec.waitingEvents()
	restarts := map[string]bool{}
	re := regexp.MustCompile(`CrashLoopBackOff \(exit code 3, (\d+) restarts?\)`)
	for i, pending := range events {
		if i > 0 && cmp.Equal(pending, events[i-1]) {
			t.Errorf("waiting event %d repeats %q without a change", i, pending)
		}
		if m := re.FindStringSubmatch(strings.Join(pending, "\n")); m != nil {
			restarts[m[1]] = true
		}
	}
	if len(events) == 0 || len(restarts) < 2 {
		t.Errorf("waiting events %q: want the first at once, then the rising restart count (seen %v)", events, restarts)
	}
}

func TestWaitFailsFastWhenTheOutcomeIsKnown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		w    workload
		code proto.Code
		want []string
	}{
		{"crash loop", workload{name: "web", fail: kubetest.FailCrashLoop, exitCode: "3",
			message: "panic: boom\n\x1b[31mgoroutine 1 [running]\x1b[0m\n\u202etxt.exe"},
			proto.CodeCrashLoop, []string{"Deployment/web (web.yaml:1): pod web-", "container web keeps crashing",
				"CrashLoopBackOff (exit code 3, ", "its last message: panic: boom | goroutine 1 [running] | txt.exe"}},
		{"image pull", workload{name: "web", fail: kubetest.FailImagePull},
			proto.CodeImagePullFailed, []string{"Deployment/web (web.yaml:1): pod web-",
				"image registry.invalid/web:1 cannot be pulled (ImagePullBackOff)", "Check the image's name and tag"}},
		{"failed job", workload{kind: "Job", name: "migrate", fail: kubetest.FailExit, exitCode: "2", message: "migration 7 failed"},
			proto.CodeJobFailed, []string{"Job/migrate (web.yaml:1) failed (BackoffLimitExceeded", "; pod migrate-",
				"container migrate exited with code 2; its last message: migration 7 failed"}},
		{"failed pod", workload{kind: "Pod", name: "once", fail: kubetest.FailExit, exitCode: "7", message: "no config"},
			proto.CodeHealthFailed, []string{"Pod/once (web.yaml:1) failed; pod once: container once exited with code 7; its last message: no config"}},
		{"progress deadline", workload{name: "web", fail: kubetest.FailNeverReady, extraSpec: "\n  progressDeadlineSeconds: 2"},
			proto.CodeProgressDeadline, []string{"Deployment/web (web.yaml:1) made no progress for 2s (ProgressDeadlineExceeded): 0/2 replicas ready; pods web-",
				"running, not ready (its readiness probe does not pass)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newChat(t)
			opts := testOptions()
			opts.HealthTimeout = 90 * time.Second
			d := newDeployer(t, worker, opts)
			res, err := d.Deploy(ctxFor(t, 2*time.Minute), c.request(objects(t, "web.yaml", tt.w.yaml())), nil)
			pe, ok := err.(*proto.Error)
			if !ok || pe.Code != tt.code {
				t.Fatalf("deploy error = %v, want %s", err, tt.code)
			}
			t.Logf("%s: %s", pe.Code, pe.Message)
			for _, w := range tt.want {
				if !strings.Contains(pe.Message, w) {
					t.Errorf("message %q lacks %q", pe.Message, w)
				}
			}
			if pe.Code.Retryable() {
				t.Errorf("%s should not be retryable: the commit has to change", pe.Code)
			}
			if strings.ContainsAny(pe.Message, "\x1b\u202e\n") {
				t.Errorf("message %q carries control characters from the pod", pe.Message)
			}
			if got := statuses(res)[tt.w.kindOr()+"/"+tt.w.name]; got == "Current" {
				t.Errorf("%s status %q, want not Current", tt.w.name, got)
			}
		})
	}
}

// TestWaitNamesWhatBlocks: what a chat user sees while a rollout cannot go on, and in the
// health_timeout that ends it.
func TestWaitNamesWhatBlocks(t *testing.T) {
	t.Parallel()
	roomy, err := deployer.ParseGuards("requests.cpu=500,limits.cpu=500,pods=10", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		w      workload
		guards deployer.Guards
		want   string // a regular expression of the Deployment's pending entry
	}{
		{"never ready", workload{name: "web", fail: kubetest.FailNeverReady}, deployer.DefaultGuards(),
			`^Deployment/web: 0/2 replicas ready; pods web-\S+ and 1 more: running, not ready \(its readiness probe does not pass\)$`},
		{"no node fits", workload{name: "web", cpu: "64", replicas: 1}, roomy,
			`^Deployment/web: 0/1 replicas ready; pod web-\S+: cannot be scheduled: no node has 64 CPUs free \(0/2 nodes are available: 2 Insufficient cpu\)$`},
		{"quota", workload{name: "web", cpu: "4", replicas: 1}, deployer.DefaultGuards(),
			`^Deployment/web: 0/1 replicas ready; quota brain-quota exceeded: requested cpu 4 \(2 allowed, 0 in use\)$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newChat(t)
			opts := testOptions()
			opts.Guards = tt.guards
			opts.HealthTimeout = 15 * time.Second
			d := newDeployer(t, worker, opts)
			rec := newRecorder()
			done := deployAsync(d, c.request(objects(t, "web.yaml", tt.w.yaml())), rec)
			re := regexp.MustCompile(tt.want)
			rec.next(t, time.Minute, func(m proto.Message) bool {
				return m.Stage == proto.StageWaiting && len(m.Pending) == 1 && re.MatchString(m.Pending[0])
			})
			o := await(t, done, time.Minute)
			pe, ok := o.err.(*proto.Error)
			if !ok || pe.Code != proto.CodeHealthTimeout {
				t.Fatalf("deploy error = %v, want %s", o.err, proto.CodeHealthTimeout)
			}
			if !re.MatchString(strings.TrimPrefix(pe.Message[strings.Index(pe.Message, "Deployment/web"):], "")) {
				t.Errorf("health_timeout message %q does not say what blocks (%s)", pe.Message, tt.want)
			}
		})
	}
}

// TestWaitTimesOutNamingTheBlockingObject: only the object that is not healthy is named.
func TestWaitTimesOutNamingTheBlockingObject(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	opts := testOptions()
	opts.HealthTimeout = 2 * time.Second
	d := newDeployer(t, worker, opts)
	web := workload{name: "web", fail: kubetest.FailNeverReady}
	res, err := d.Deploy(ctxFor(t, time.Minute), c.request(objects(t, "web.yaml", join(settingsBlue, web.yaml()))), nil)
	pe, ok := err.(*proto.Error)
	if !ok || pe.Code != proto.CodeHealthTimeout {
		t.Fatalf("deploy error = %v, want %s", err, proto.CodeHealthTimeout)
	}
	if !pe.Code.Retryable() {
		t.Errorf("%s should be retryable", pe.Code)
	}
	for _, w := range []string{"1 of 6 objects", "2s", "Deployment/web: 0/2 replicas ready"} {
		if !strings.Contains(pe.Message, w) {
			t.Errorf("message %q lacks %q", pe.Message, w)
		}
	}
	if strings.Contains(pe.Message, "ConfigMap/settings") {
		t.Errorf("message %q names a healthy object", pe.Message)
	}
	want := map[string]string{"Deployment/web": "InProgress", "ConfigMap/settings": "Current"}
	got := statuses(res)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s status %q, want %q", k, got[k], v)
		}
	}
}

// TestApplyWaitsForQuotaToBeCounted: right after a ResourceQuota is created, the API server refuses
// objects it covers ("status unknown for quota") until the quota controller has counted it. Brain
// waits for that instead of failing the first deploy. On the full cluster that moment is too short
// to catch, so this test runs on an API server without controllers and plays the quota controller.
func TestApplyWaitsForQuotaToBeCounted(t *testing.T) {
	t.Parallel()
	env, cfg := bareAPIServer(t)
	c := newChat(t)
	d := newDeployer(t, cfg, testOptions())
	deploy(t, d, c.request(objects(t, "app.yaml", settingsBlue)))
	quotaGVR := schema.GroupVersionResource{Version: "v1", Resource: "resourcequotas"}
	setStatus(t, env.Admin, quotaGVR, c.ns, "brain-quota", func(int64) map[string]any {
		return map[string]any{"hard": map[string]any{"configmaps": "100"}} // counted: not yet
	})

	rec := newRecorder()
	done := deployAsync(d, c.request(objects(t, "app.yaml", join(settingsBlue, extraCM))), rec)
	m := rec.next(t, 20*time.Second, func(m proto.Message) bool {
		return m.Stage == proto.StageApplying && strings.Contains(m.Message, "count the namespace's ResourceQuota")
	})
	if !strings.Contains(m.Message, "status unknown for quota: brain-quota") {
		t.Errorf("message %q does not quote the API server", m.Message)
	}
	setStatus(t, env.Admin, quotaGVR, c.ns, "brain-quota", func(int64) map[string]any {
		return map[string]any{"hard": map[string]any{"configmaps": "100"}, "used": map[string]any{"configmaps": "2"}}
	})
	o := await(t, done, 30*time.Second)
	if o.err != nil {
		t.Fatalf("deploy: %v", o.err)
	}
	if got := actions(o.res)["ConfigMap/extra"]; got != proto.ActionCreated {
		t.Errorf("ConfigMap/extra %s, want created", got)
	}
}

// TestJobDeletedAfterFinishingIsHealthy: a Job with ttlSecondsAfterFinished disappears when it is
// done (the ttl-after-finished controller deletes it); that is success, not an object gone missing.
func TestJobDeletedAfterFinishingIsHealthy(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	job := strings.Replace(workload{kind: "Job", name: "migrate"}.yaml(), "  backoffLimit: 0\n",
		"  backoffLimit: 0\n  ttlSecondsAfterFinished: 0\n", 1)
	res, _ := deploy(t, d, c.request(objects(t, "job.yaml", job)))
	if got := statuses(res)["Job/migrate"]; got != "Current" {
		t.Errorf("Job/migrate status %q, want Current", got)
	}
}

var (
	bareOnce sync.Once
	bareEnv  *kubetest.Env
	bareCfg  *rest.Config
	bareErr  error
)

// bareAPIServer is an API server without controllers, shared by the tests that need one, and the
// worker's identity on it.
func bareAPIServer(t *testing.T) (*kubetest.Env, *rest.Config) {
	t.Helper()
	bareOnce.Do(func() {
		env, stop, err := kubetest.StartMain()
		if err != nil {
			bareErr = err
			return
		}
		stopBare = stop
		bareEnv = env
		bareCfg, bareErr = setUpWorker(env)
	})
	if bareErr != nil {
		t.Fatal(bareErr)
	}
	return bareEnv, bareCfg
}

func (w workload) kindOr() string {
	if w.kind == "" {
		return "Deployment"
	}
	return w.kind
}

// stopBare stops bareAPIServer's server; TestMain calls it.
var stopBare = func() {}

// webDeployment is a Deployment of two replicas.
var webDeployment = workload{name: "web"}.yaml()

// setStatus writes an object's status as a controller would (for the quota test, whose state is
// only a passing moment on a full cluster).
func setStatus(t *testing.T, cfg *rest.Config, gvr schema.GroupVersionResource, ns, name string, status func(generation int64) map[string]any) {
	t.Helper()
	ctx := ctxFor(t, 10*time.Second)
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := c.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	obj.Object["status"] = status(obj.GetGeneration())
	if _, err := c.Resource(gvr).Namespace(ns).UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status of %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
}
