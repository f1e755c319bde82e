package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
)

// BenchmarkRelayLatency1000 measures how long an event takes from its publish to BRAIN_EVENTS (as a
// worker does) to its receipt by a client, with 1,000 clients connected, each following its own
// chat. Each iteration publishes one event to every chat; p50 and p99 are over all receipts.
func BenchmarkRelayLatency1000(b *testing.B) {
	const clients = 1000
	g := startGateway(b, nil, nil)
	w := newNATSWorker(b, g)
	conns := make([]*client, clients)
	for i := range conns {
		conns[i] = dial(b, g, token(b, fmt.Sprintf("u%d", i), time.Hour))
		conns[i].send(map[string]any{"type": "subscribe", "chatId": "bench"})
		if m := conns[i].read(); m.Type != proto.TypeSubscribed {
			b.Fatalf("got %+v", m)
		}
	}
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := c.read()
				d := time.Since(m.Time)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}()
			w.publishAsync(fmt.Sprintf("u%d", i), proto.Message{Type: proto.TypeProgress, ChatID: "bench", Message: "tick"})
		}
		wg.Wait()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSubmit measures deploy requests accepted per second by one gateway (validation, KV
// record, queued event, job publish, chat index) from 50 concurrent sockets, each deploying to its
// own chat as a chat's client does.
func BenchmarkSubmit(b *testing.B) {
	g := startGateway(b, nil, map[string]string{"RATE_JOBS_PER_MINUTE": "100000000", "RATE_JOBS_BURST": "100000000"})
	const sockets = 50
	conns := make([]*client, sockets)
	for i := range conns {
		conns[i] = dial(b, g, token(b, "u1", time.Hour))
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + sockets - 1) / sockets
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				c.send(deployMsg("u1", fmt.Sprintf("c%d", i)))
				if m := c.read(); m.Stage != proto.StageQueued || m.JobID == "" {
					panic(fmt.Sprintf("job %d: got %+v", j, m))
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(per*sockets)/b.Elapsed().Seconds(), "jobs/s")
}

func (w *natsWorker) publishAsync(user string, m proto.Message) {
	m.Time = time.Now()
	b, _ := json.Marshal(m)
	if _, err := w.js.PublishAsync(proto.EventSubject(user, m.ChatID), b); err != nil {
		w.t.Fatal(err)
	}
}
