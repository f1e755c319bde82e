package deployer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/worker/internal/deployer"
)

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
`

const migrateJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: busybox:1.36
        command: ["false"]
`

// setStatus writes an object's status as the controller that is not running here would.
func setStatus(t *testing.T, gvr schema.GroupVersionResource, ns, name string, status func(generation int64) map[string]any) {
	t.Helper()
	ctx := ctxFor(t, 10*time.Second)
	obj := get(t, gvr, ns, name)
	if obj == nil {
		t.Fatalf("%s %s/%s does not exist", gvr.Resource, ns, name)
	}
	obj.Object["status"] = status(obj.GetGeneration())
	if _, err := admin(t).Resource(gvr).Namespace(ns).UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status of %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
}

func available(replicas int64) func(int64) map[string]any {
	now := time.Now().UTC().Format(time.RFC3339)
	return func(generation int64) map[string]any {
		return map[string]any{
			"observedGeneration": generation,
			"replicas":           replicas, "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
			"conditions": []any{
				map[string]any{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
					"lastUpdateTime": now, "lastTransitionTime": now},
				map[string]any{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
					"lastUpdateTime": now, "lastTransitionTime": now},
			},
		}
	}
}

type outcome struct {
	res []proto.ObjectResult
	err error
}

func deployAsync(d *deployer.Deployer, req deployer.Request, rec *recorder) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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

func TestWaitSucceedsWhenDeploymentBecomesAvailable(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	rec := newRecorder()
	done := deployAsync(d, c.request(objects(t, "web.yaml", join(settingsBlue, webDeployment))), rec)

	m := rec.next(t, 20*time.Second, func(m proto.Message) bool { return m.Stage == proto.StageWaiting })
	if diff := cmp.Diff([]string{"Deployment/web: 0/2 replicas available"}, m.Pending); diff != "" {
		t.Errorf("pending (-want +got):\n%s", diff)
	}
	if m.Type != proto.TypeProgress || m.ChatID != c.id || !strings.Contains(m.Message, "1 of ") {
		t.Errorf("waiting message = %+v", m)
	}
	setStatus(t, depGVR, c.ns, "web", available(2))

	o := await(t, done, 20*time.Second)
	if o.err != nil {
		t.Fatalf("deploy: %v", o.err)
	}
	if got := statuses(o.res)["Deployment/web"]; got != "Current" {
		t.Errorf("Deployment/web status %q, want Current", got)
	}
}

func TestWaitTimesOutNamingTheBlockingObject(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	opts := testOptions()
	opts.HealthTimeout = 2 * time.Second
	d := newDeployer(t, worker, opts)
	start := time.Now()
	res, err := d.Deploy(ctxFor(t, time.Minute), c.request(objects(t, "web.yaml", join(settingsBlue, webDeployment))), nil)
	pe, ok := err.(*proto.Error)
	if !ok || pe.Code != proto.CodeHealthTimeout {
		t.Fatalf("deploy error = %v, want %s", err, proto.CodeHealthTimeout)
	}
	if !pe.Code.Retryable() {
		t.Errorf("%s should be retryable", pe.Code)
	}
	for _, w := range []string{"1 of 6 objects", "2s", "Deployment/web: 0/2 replicas available"} {
		if !strings.Contains(pe.Message, w) {
			t.Errorf("message %q lacks %q", pe.Message, w)
		}
	}
	if strings.Contains(pe.Message, "ConfigMap/settings") {
		t.Errorf("message %q names a healthy object", pe.Message)
	}
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("timed out after %s, want about 2s", elapsed)
	}
	want := map[string]string{"Deployment/web": "InProgress", "ConfigMap/settings": "Current"}
	got := statuses(res)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s status %q, want %q", k, got[k], v)
		}
	}
}

func TestWaitFailsFastOnFailedJob(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	opts := testOptions()
	opts.HealthTimeout = time.Minute
	d := newDeployer(t, worker, opts)
	rec := newRecorder()
	done := deployAsync(d, c.request(objects(t, "job.yaml", migrateJob)), rec)

	rec.next(t, 20*time.Second, func(m proto.Message) bool { return m.Stage == proto.StageWaiting })
	now := time.Now().UTC().Format(time.RFC3339)
	setStatus(t, jobGVR, c.ns, "migrate", func(int64) map[string]any {
		return map[string]any{
			"startTime": now, "completionTime": nil, "failed": int64(1),
			"conditions": []any{
				map[string]any{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
					"message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
				map[string]any{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
					"message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
			},
		}
	})
	start := time.Now()
	o := await(t, done, 20*time.Second)
	pe, ok := o.err.(*proto.Error)
	if !ok || pe.Code != proto.CodeHealthFailed {
		t.Fatalf("deploy error = %v, want %s", o.err, proto.CodeHealthFailed)
	}
	for _, w := range []string{"Job/migrate", "job.yaml:1", "backoff limit"} {
		if !strings.Contains(pe.Message, w) {
			t.Errorf("message %q lacks %q", pe.Message, w)
		}
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("failed after %s, want fast (health timeout is a minute)", elapsed)
	}
	if got := statuses(o.res)["Job/migrate"]; got != "Failed" {
		t.Errorf("Job/migrate status %q, want Failed", got)
	}
}

// TestApplyWaitsForQuotaToBeCounted: right after a ResourceQuota is created, the API server refuses
// objects it covers ("status unknown for quota") until the quota controller has counted it. Brain
// waits for that instead of failing the first deploy. No controller runs here, so the test plays it.
func TestApplyWaitsForQuotaToBeCounted(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	deploy(t, d, c.request(objects(t, "app.yaml", settingsBlue)))
	quotaGVR := schema.GroupVersionResource{Version: "v1", Resource: "resourcequotas"}
	setStatus(t, quotaGVR, c.ns, "brain-quota", func(int64) map[string]any {
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
	setStatus(t, quotaGVR, c.ns, "brain-quota", func(int64) map[string]any {
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
// done; that is success, not an object gone missing.
func TestJobDeletedAfterFinishingIsHealthy(t *testing.T) {
	t.Parallel()
	c := newChat(t)
	d := newDeployer(t, worker, testOptions())
	rec := newRecorder()
	job := strings.Replace(migrateJob, "  backoffLimit: 0\n", "  backoffLimit: 0\n  ttlSecondsAfterFinished: 0\n", 1)
	done := deployAsync(d, c.request(objects(t, "job.yaml", job)), rec)
	rec.next(t, 20*time.Second, func(m proto.Message) bool { return m.Stage == proto.StageWaiting })
	if err := admin(t).Resource(jobGVR).Namespace(c.ns).Delete(ctxFor(t, 10*time.Second), "migrate",
		metav1.DeleteOptions{PropagationPolicy: new(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	o := await(t, done, 20*time.Second)
	if o.err != nil {
		t.Fatalf("deploy: %v", o.err)
	}
	if got := statuses(o.res)["Job/migrate"]; got != "Current" {
		t.Errorf("Job/migrate status %q, want Current", got)
	}
}
