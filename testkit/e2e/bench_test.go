package e2e

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/gitserver"
	"github.com/backendim/brain/testkit/stack"
)

// BenchmarkJobsNoop measures jobs per second through gateway → JetStream → worker → relay with a
// tiny repository already in the workers' caches and KUBE_AUTH=none: the cost of Brain itself.
// One gateway, two workers (WORKER_CONCURRENCY=4 each), 16 clients each deploying to its own chat,
// one job after another (jobs of one chat never overlap: they share a namespace lock).
func BenchmarkJobsNoop(b *testing.B) {
	git := gitserver.New(b)
	repo := git.Repo(b, "app")
	sha := repo.Commit(b, "one configmap", map[string]string{"deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"})
	s := stack.Start(b, stack.Options{BinDir: binDir, Workers: 2, GatewayEnv: map[string]string{
		"RATE_JOBS_PER_MINUTE": "1000000", "RATE_JOBS_BURST": "1000000", "WS_MAX_MESSAGES_PER_SECOND": "100000", "LOG_LEVEL": "warn"},
		WorkerEnv: map[string]string{"LOG_LEVEL": "warn"}})
	const clients = 16
	conns := make([]*stack.Client, clients)
	for i := range conns {
		conns[i] = stack.Dial(b, s.Gateways[0], s.Token("bench"))
		// Warm both workers' caches with this commit.
		conns[i].Send(deploy("bench", fmt.Sprintf("warm%d", i), repo.URL(), sha))
		q := conns[i].Read(30 * time.Second)
		conns[i].UntilFinal(q.JobID, 60*time.Second)
	}
	b.ResetTimer()
	per := (b.N + clients - 1) / clients
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				c.Send(deploy("bench", fmt.Sprintf("c%d", i), repo.URL(), sha))
				q := c.Read(30 * time.Second)
				if q.Stage != proto.StageQueued {
					panic(fmt.Sprintf("job %d refused: %+v", j, q))
				}
				if m := c.UntilFinal(q.JobID, 60*time.Second); m[len(m)-1].Type != proto.TypeSuccess {
					panic(fmt.Sprintf("job failed: %+v", m[len(m)-1]))
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(per*clients)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkWarmJob measures one job's wall time, submit to success, for an unchanged repository
// whose commit is already in the cache (a redeploy): one client, one chat, jobs one after another.
func BenchmarkWarmJob(b *testing.B) {
	git := gitserver.New(b)
	repo := git.Repo(b, "app")
	sha := repo.Commit(b, "Add web", map[string]string{"deploy/app.yaml": manifests})
	s := stack.Start(b, stack.Options{BinDir: binDir, GatewayEnv: map[string]string{
		"RATE_JOBS_PER_MINUTE": "1000000", "RATE_JOBS_BURST": "1000000", "WS_MAX_MESSAGES_PER_SECOND": "100000", "LOG_LEVEL": "warn"},
		WorkerEnv: map[string]string{"LOG_LEVEL": "warn"}})
	c := stack.Dial(b, s.Gateways[0], s.Token("bench"))
	c.Send(deploy("bench", "warm", repo.URL(), sha))
	c.UntilFinal(c.Read(30*time.Second).JobID, 60*time.Second)
	var times []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		c.Send(deploy("bench", "warm", repo.URL(), sha))
		m := c.UntilFinal(c.Read(30*time.Second).JobID, 60*time.Second)
		if final := m[len(m)-1]; final.Type != proto.TypeSuccess || !final.Payload.CacheHit {
			b.Fatalf("final = %+v", final)
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
}
