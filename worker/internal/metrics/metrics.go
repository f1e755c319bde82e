// Package metrics defines the worker's Prometheus metrics, registered into a registry made by the
// caller (no global registry).
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Job results counted in brain_worker_jobs_total.
const (
	ResultSucceeded  = "succeeded"   // final success
	ResultFailed     = "failed"      // final error, including retries_exhausted and timeout
	ResultCancelled  = "cancelled"   // the user cancelled it
	ResultRetrying   = "retrying"    // a retryable failure; NAKed for another delivery
	ResultDropped    = "dropped"     // delivered after it had already ended; acked without running
	ResultHandedBack = "handed_back" // NAKed at shutdown; another worker runs it
)

// Metrics are the worker's metrics.
type Metrics struct {
	Jobs          *prometheus.CounterVec   // brain_worker_jobs_total{result}
	InFlight      prometheus.Gauge         // brain_worker_jobs_in_flight
	StageDuration *prometheus.HistogramVec // brain_worker_stage_duration_seconds{stage}
	GitCache      *prometheus.CounterVec   // brain_worker_git_cache_total{result="hit|miss"}
	JobDuration   prometheus.Histogram     // brain_worker_job_duration_seconds
	Redeliveries  prometheus.Counter       // brain_worker_redeliveries_total
}

// New makes the metrics and registers them with reg; a nil reg keeps them unregistered.
func New(reg prometheus.Registerer) *Metrics {
	buckets := []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	m := &Metrics{
		Jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brain_worker_jobs_total",
			Help: "Job deliveries handled, by result."}, []string{"result"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "brain_worker_jobs_in_flight",
			Help: "Jobs this worker is running."}),
		StageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "brain_worker_stage_duration_seconds",
			Help: "Duration of job stages (lock, fetch, render, deploy).", Buckets: buckets}, []string{"stage"}),
		GitCache: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brain_worker_git_cache_total",
			Help: "Checkouts served from the git cache (hit) or needing a download (miss)."}, []string{"result"}),
		JobDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "brain_worker_job_duration_seconds",
			Help: "Duration of job attempts, from delivery to the final event or hand-back.", Buckets: buckets}),
		Redeliveries: prometheus.NewCounter(prometheus.CounterOpts{Name: "brain_worker_redeliveries_total",
			Help: "Jobs delivered again after a retry, a hand-back or a worker's death."}),
	}
	for _, r := range []string{ResultSucceeded, ResultFailed, ResultCancelled, ResultRetrying, ResultDropped, ResultHandedBack} {
		m.Jobs.WithLabelValues(r)
	}
	for _, r := range []string{"hit", "miss"} {
		m.GitCache.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.Jobs, m.InFlight, m.StageDuration, m.GitCache, m.JobDuration, m.Redeliveries)
	}
	return m
}
