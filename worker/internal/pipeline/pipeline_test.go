package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/gitserver"
	"github.com/backendim/brain/testkit/kubetest"
	"github.com/backendim/brain/worker/internal/deployer"
	"github.com/backendim/brain/worker/internal/gitcache"
	"github.com/backendim/brain/worker/internal/metrics"
	"github.com/backendim/brain/worker/internal/render"
	"github.com/backendim/brain/worker/internal/urlpolicy"
)

const configMap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\ndata: {k: v}\n"

// recorder collects progress messages; report may be called from several goroutines.
type recorder struct {
	mu   sync.Mutex
	msgs []proto.Message
}

func (r *recorder) report(m proto.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *recorder) stages() []proto.Stage {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []proto.Stage
	for _, m := range r.msgs {
		if len(out) == 0 || out[len(out)-1] != m.Stage {
			out = append(out, m.Stage)
		}
	}
	return out
}

func (r *recorder) find(s proto.Stage) proto.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m.Stage == s {
			return m
		}
	}
	return proto.Message{}
}

func newCache(t *testing.T) *gitcache.Cache {
	t.Helper()
	c, err := gitcache.Open(gitcache.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler),
		Policy: urlpolicy.Policy{AllowHTTP: true, AllowPrivateNetworks: true}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRunRenderOnly(t *testing.T) {
	t.Parallel()
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	sha := repo.Commit(t, "Kustomized", map[string]string{
		".brain/kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: x-\n",
		".brain/cm.yaml":            strings.ReplaceAll(configMap, "%s", "app"),
	})
	m := metrics.New(prometheus.NewRegistry())
	p := New(Options{Git: newCache(t), Metrics: m})
	job := proto.Job{JobID: proto.NewJobID(), UserID: "u1", ChatID: "c1", RepoURL: repo.URL(), CommitHash: "main"}

	rec := &recorder{}
	res, err := p.Run(t.Context(), job, rec.report)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]proto.Stage{proto.StageFetching, proto.StageCheckedOut, proto.StageRendering}, rec.stages()); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	if got := rec.find(proto.StageFetching).Message; got != "fetching "+repo.URL()+" at main" {
		t.Errorf("fetching = %q", got)
	}
	if got := rec.find(proto.StageRendering); got.Count != 1 || got.Message != "rendered 1 object from .brain/ with kustomize" {
		t.Errorf("rendering = %+v", got)
	}
	want := &proto.Result{Commit: sha, Subject: "Kustomized", Ref: "main", Namespace: "im-c1-u1", Path: ".brain",
		Objects: []proto.ObjectResult{{Kind: "ConfigMap", Name: "x-app", File: "kustomize:.brain", Action: proto.ActionFound}}}
	if diff := cmp.Diff(want, res, cmpIgnoreTimes()); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}

	job.CommitHash = sha // a full SHA already cached needs no fetch
	rec = &recorder{}
	res, err = p.Run(t.Context(), job, rec.report)
	if err != nil {
		t.Fatal(err)
	}
	if !res.CacheHit || !strings.HasSuffix(rec.find(proto.StageCheckedOut).Message, "(cache hit)") {
		t.Errorf("second run: cacheHit=%v, checked_out %q", res.CacheHit, rec.find(proto.StageCheckedOut).Message)
	}
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"git cache hits", testutil.ToFloat64(m.GitCache.WithLabelValues("hit")), 1},
		{"git cache misses", testutil.ToFloat64(m.GitCache.WithLabelValues("miss")), 1},
		{"stage series (fetch, render, deploy)", float64(testutil.CollectAndCount(m.StageDuration)), 3},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func cmpIgnoreTimes() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		s := p.String()
		return s == "DurationMs" || s == "StagesMs"
	}, cmp.Ignore())
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	repo.Commit(t, "docs", map[string]string{"README.md": "no manifests"})
	p := New(Options{Git: newCache(t)})
	stop := errors.New("cancelled by the user")
	stopped, cancel := context.WithCancelCause(t.Context())
	cancel(stop)
	tests := []struct {
		name   string
		ctx    context.Context
		ref    string
		code   proto.Code
		cause  error
		stages []proto.Stage
	}{
		{"unknown commit", t.Context(), "deadbeef", proto.CodeCommitNotFound, nil, []proto.Stage{proto.StageFetching}},
		{"no manifests", t.Context(), "main", proto.CodeManifestsNotFound, nil, []proto.Stage{proto.StageFetching, proto.StageCheckedOut}},
		{"stopped before the first stage", stopped, "main", "", stop, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			job := proto.Job{JobID: proto.NewJobID(), UserID: "u1", ChatID: "c1", RepoURL: repo.URL(), CommitHash: tt.ref}
			_, err := p.Run(tt.ctx, job, rec.report)
			var pe *proto.Error
			switch {
			case tt.cause != nil && !errors.Is(err, tt.cause):
				t.Errorf("err = %v, want the context's cause", err)
			case tt.code != "" && (!errors.As(err, &pe) || pe.Code != tt.code):
				t.Errorf("err = %v, want code %s", err, tt.code)
			}
			if diff := cmp.Diff(tt.stages, rec.stages()); diff != "" {
				t.Errorf("stages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunDeploysWithDeployer(t *testing.T) {
	t.Parallel()
	kube := kubetest.Start(t)
	dep, err := deployer.New(kube.Admin, deployer.Options{HealthTimeout: 30 * time.Second, PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	repo.Commit(t, "config", map[string]string{"deploy/cm.yaml": strings.ReplaceAll(configMap, "%s", "app")})
	p := New(Options{Git: newCache(t), Deployer: dep})
	job := proto.Job{JobID: proto.NewJobID(), UserID: "u1", ChatID: "deploy1", RepoURL: repo.URL(), CommitHash: "main"}

	for _, want := range []string{proto.ActionCreated, proto.ActionUnchanged} {
		rec := &recorder{}
		res, err := p.Run(t.Context(), job, rec.report)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(res.Objects, func(o proto.ObjectResult) bool { return o.Kind == "ConfigMap" })
		if i < 0 || res.Objects[i].Action != want || res.Objects[i].Name != "app" {
			t.Errorf("objects = %+v, want ConfigMap app %s", res.Objects, want)
		}
		applying := rec.find(proto.StageApplying)
		if applying.Object == nil {
			t.Errorf("no applying event with an object; stages %v", rec.stages())
		}
		if _, ok := res.StagesMs[StageDeploy]; !ok {
			t.Errorf("stagesMs = %v, no deploy stage", res.StagesMs)
		}
	}
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	var got []string
	f := throttle(time.Hour, func(s string) { got = append(got, s) })
	for _, s := range []string{"Counting objects: 1", "Counting objects: 2", "Receiving objects: 3"} {
		f(s)
	}
	if diff := cmp.Diff([]string{"Counting objects: 1"}, got); diff != "" {
		t.Errorf("passed (-want +got):\n%s", diff)
	}
	got = nil
	f = throttle(time.Nanosecond, func(s string) { got = append(got, s) })
	f("a")
	<-time.After(time.Millisecond)
	f("b")
	if len(got) != 2 {
		t.Errorf("passed %q after the interval, want both", got)
	}
}

func TestMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"password dropped", displayURL("https://bob:s3cret@git.example.com/a.git"), "https://bob@git.example.com/a.git"},
		{"plain URL kept", displayURL("https://git.example.com/a.git"), "https://git.example.com/a.git"},
		{"plain files", renderedMessage(&render.Output{Dir: "deploy", Files: 2, Objects: make([]render.Object, 3)}),
			"rendered 3 objects from 2 files in deploy/"},
		{"repository root", renderedMessage(&render.Output{Dir: ".", Files: 1, Objects: make([]render.Object, 1)}),
			"rendered 1 object from 1 file in the repository root"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}
