package metrics_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/backendim/brain/worker/internal/metrics"
)

func TestNames(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.StageDuration.WithLabelValues("fetch").Observe(1)
	m.JobDuration.Observe(1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	slices.Sort(names)
	want := []string{"brain_worker_git_cache_total", "brain_worker_job_duration_seconds", "brain_worker_jobs_in_flight",
		"brain_worker_jobs_total", "brain_worker_redeliveries_total", "brain_worker_stage_duration_seconds"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	metrics.New(nil) // unregistered: must not panic or collide
}
