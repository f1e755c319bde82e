package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/backendim/brain/proto/healthcheck"
	"github.com/backendim/brain/testkit/stack"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/natsauth"
	"github.com/backendim/brain/testkit/gitserver"
	"github.com/backendim/brain/testkit/kubetest"
	"github.com/backendim/brain/testkit/natstest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func waitReady(t *testing.T, base string, logs *stack.Buffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := get(t, base+"/ready"); code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker not ready in 30s; log:\n%s", logs)
		}
		<-time.After(50 * time.Millisecond)
	}
}

func TestServeRunsJobsThenStops(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	sha := repo.Commit(t, "Add config", map[string]string{"k8s/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n"})
	addr := stack.FreeAddr(t)
	vars := ns.Env(natsauth.Worker)
	for k, v := range map[string]string{"LISTEN_ADDR": addr, "KUBE_AUTH": "none",
		"CACHE_DIR": t.TempDir(), "GIT_ALLOW_HTTP": "true", "GIT_ALLOW_PRIVATE_NETWORKS": "true",
		"WORKER_ID": "main-test", "LOG_FORMAT": "json", "SHUTDOWN_TIMEOUT": "5s"} {
		vars[k] = v
	}
	logs := &stack.Buffer{}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vars[k] }, logs) }()
	base := "http://" + addr
	waitReady(t, base, logs)

	_, js := ns.Connect(t)
	job := proto.Job{JobID: proto.NewJobID(), UserID: "u1", ChatID: "c1", RepoURL: repo.URL(), CommitHash: "main"}
	rec, _ := json.Marshal(proto.JobStatus{Job: job, State: proto.StateQueued, Published: true})
	kv, err := js.KeyValue(ctx, proto.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, job.JobID, rec); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(job)
	if _, err := js.Publish(ctx, proto.JobSubject("u1", "c1"), data, jetstream.WithMsgID(job.JobID)); err != nil {
		t.Fatal(err)
	}
	final := waitFinal(t, js, job)
	if final.Type != proto.TypeSuccess || final.Payload.Commit != sha || len(final.Payload.Objects) != 1 ||
		final.Payload.Objects[0].Action != proto.ActionFound {
		t.Errorf("final = %+v", final)
	}

	if code, body := get(t, base+"/health"); code != http.StatusOK {
		t.Errorf("/health = %d %s", code, body)
	}
	// The counters move after the ack, which follows the final event.
	for _, want := range []string{`brain_worker_jobs_total{result="succeeded"} 1`, `brain_worker_git_cache_total{result="miss"} 1`,
		"brain_worker_stage_duration_seconds_bucket", "brain_worker_jobs_in_flight 0", "go_goroutines"} {
		waitMetric(t, base, want)
	}
	if err := healthcheck.Run(ctx, "worker", nil, func(k string) string { return vars[k] }, io.Discard); err != nil {
		t.Errorf("healthcheck of a running worker: %v", err)
	}

	stop() // SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("worker did not stop")
	}
	if err := healthcheck.Run(context.Background(), "worker", []string{"-listen-addr", addr}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("healthcheck of a stopped worker succeeded")
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "job ") || msg == "git fetch" {
			if rec["job"] != job.JobID || rec["chat"] != "c1" {
				t.Errorf("log line about the job lacks its IDs: %s", line)
			}
		}
	}
}

// TestServeNeedsItsNATSIdentity: without its seed, or with another role's, the worker does not run.
func TestServeNeedsItsNATSIdentity(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	ns.ExpectViolations() // the gateway's identity may not receive the worker's replies
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no credentials", map[string]string{"NATS_URL": ns.ClientURL()}, "Authorization Violation (no NATS_NKEY_FILE or NATS_CREDS_FILE is set)"},
		{"the gateway's seed", ns.Env(natsauth.Gateway), "refuses this identity the worker's replies"},
		{"both an nkey and a creds file", map[string]string{"NATS_URL": ns.ClientURL(), "NATS_NKEY_FILE": ns.SeedFile(natsauth.Worker),
			"NATS_CREDS_FILE": ns.SeedFile(natsauth.Worker)}, "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"LISTEN_ADDR": stack.FreeAddr(t), "KUBE_AUTH": "none", "CACHE_DIR": t.TempDir(),
				"WORKER_ID": "no-identity"}
			for k, v := range tt.env {
				vars[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err := run(ctx, nil, func(k string) string { return vars[k] }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func waitMetric(t *testing.T, base, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, metrics := get(t, base+"/metrics")
		if strings.Contains(metrics, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
			return
		}
		<-time.After(20 * time.Millisecond)
	}
}

func waitFinal(t *testing.T, js jetstream.JetStream, job proto.Job) proto.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, proto.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{proto.EventSubject(job.UserID, job.ChatID)}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("waiting for the final event: %v", err)
		}
		msg, err := proto.DecodeMessage(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		if msg.JobID == job.JobID && msg.Final() {
			return msg
		}
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"KUBE_AUTH": "none", "WORKER_CONCURRENCY": "0"}
	err := run(context.Background(), nil, func(k string) string { return vars[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "WORKER_CONCURRENCY") {
		t.Errorf("run = %v, want an error naming WORKER_CONCURRENCY", err)
	}
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	kube := kubetest.Start(t)
	tests := []struct {
		name    string
		cfg     func() string
		wantErr string
		want    []string
	}{
		{"admin has every permission", func() string { return kube.Kubeconfig(t, kube.Admin) }, "",
			[]string{"identity:", "deployments.apps", "checks passed"}},
		{"a user without RBAC misses them", func() string { return kube.Kubeconfig(t, kube.User(t, "nobody")) },
			"permissions missing", []string{"identity: nobody", "NO"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"KUBE_AUTH": "kubeconfig", "KUBECONFIG": tt.cfg()}
			var out bytes.Buffer
			err := run(context.Background(), []string{"doctor"}, func(k string) string { return vars[k] }, &out)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("doctor = %v, want error %q\n%s", err, tt.wantErr, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
	vars := map[string]string{"KUBE_AUTH": "none"}
	if err := run(context.Background(), []string{"doctor"}, func(k string) string { return vars[k] }, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "KUBE_AUTH=none") {
		t.Errorf("doctor with KUBE_AUTH=none = %v", err)
	}
}
