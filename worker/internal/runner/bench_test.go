package runner_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/worker/internal/runner"
)

// BenchmarkJobsNoop measures jobs per second through JetStream and one runner (render only,
// KUBE_AUTH=none) for a tiny repository already in the git cache: the worker's share of a job,
// from the job's publish to its final event.
//
//	go test -run '^$' -bench JobsNoop -benchtime 200x ./internal/runner/
func BenchmarkJobsNoop(b *testing.B) {
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			e := newEnv(b, layout.Defaults())
			repoURL, sha := e.repo(b, "app")
			e.startWorker(b, runner.Options{Concurrency: conc})
			finals := e.finals(b)
			e.submit(b, "u1", "warm", repoURL, sha) // fills the cache
			<-finals

			b.ResetTimer()
			start := time.Now()
			for i := range b.N { // the runner starts on them while the rest are published
				e.submit(b, "u1", fmt.Sprintf("c%d", i), repoURL, sha) // one namespace each
			}
			for i := range b.N {
				select {
				case m := <-finals:
					if m.Type != proto.TypeSuccess {
						b.Fatalf("job %d: %+v", i, m)
					}
				case <-time.After(time.Minute):
					b.Fatalf("only %d of %d jobs finished", i, b.N)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}

// finals delivers every final event published from now on.
func (e *env) finals(b *testing.B) <-chan proto.Message {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	cons, err := e.js.OrderedConsumer(ctx, proto.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{proto.EventsSubjects}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		b.Fatal(err)
	}
	ch := make(chan proto.Message, 10000)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if msg, err := proto.DecodeMessage(m.Data()); err == nil && msg.Final() {
			ch <- msg
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cc.Stop)
	return ch
}
