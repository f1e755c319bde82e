// Package metrics holds the gateway's Prometheus metrics, registered into the registry passed in.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gateway's instruments.
type Metrics struct {
	Connections     prometheus.Gauge
	Messages        *prometheus.CounterVec // direction (in|out), type
	JobsSubmitted   *prometheus.CounterVec // result (accepted|duplicate|rejected|failed)
	RelayLag        prometheus.Histogram
	SlowDisconnects prometheus.Counter
	Closes          *prometheus.CounterVec // code
}

// New creates the metrics and registers them in reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "brain_gateway_connections",
			Help: "Open WebSocket connections."}),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brain_gateway_messages_total",
			Help: "WebSocket messages by direction (in, out) and type."}, []string{"direction", "type"}),
		JobsSubmitted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brain_gateway_jobs_submitted_total",
			Help: "Deploy requests by result: accepted, duplicate, rejected (invalid, forbidden, rate limited), failed (NATS)."},
			[]string{"result"}),
		RelayLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "brain_gateway_relay_lag_seconds",
			Help:    "Time from an event's creation by a worker or gateway to its hand-off to a client socket.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
		SlowDisconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "brain_gateway_slow_client_disconnects_total",
			Help: "Sockets closed with 4008 because the client did not read fast enough."}),
		Closes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brain_gateway_closes_total",
			Help: "Sockets closed by the gateway, by close code."}, []string{"code"}),
	}
	reg.MustRegister(m.Connections, m.Messages, m.JobsSubmitted, m.RelayLag, m.SlowDisconnects, m.Closes)
	return m
}
