package layout

import "github.com/backendim/brain/proto/envflag"

// Flags registers the layout's settings on s, with the defaults of Defaults. The consumer and lock
// settings (ACK_WAIT, MAX_DELIVER, LOCK_TTL) are the workers' only; gateways keep the defaults.
func Flags(s *envflag.Set, c *Config, worker bool) {
	d := Defaults()
	*c = d
	s.Int(&c.Replicas, "NATS_REPLICAS", d.Replicas, "replicas of Brain's streams and buckets (3 on a NATS cluster)")
	s.Duration(&c.EventsMaxAge, "EVENTS_MAX_AGE", d.EventsMaxAge, "how long job events stay replayable")
	s.Int64(&c.EventsMaxPerChat, "EVENTS_MAX_PER_CHAT", d.EventsMaxPerChat, "events kept per chat")
	s.Duration(&c.JobsHistoryTTL, "JOBS_HISTORY_TTL", d.JobsHistoryTTL, "how long job status records are kept")
	s.Duration(&c.DedupWindow, "DEDUP_WINDOW", d.DedupWindow, "JetStream duplicate window for publishes")
	s.Int(&c.MaxFollowers, "EVENTS_MAX_FOLLOWERS", d.MaxFollowers, "chats followed at once over all sockets of all gateways (BRAIN_EVENTS consumers; NATS's default is 1,000)")
	if !worker {
		return
	}
	s.Duration(&c.LockTTL, "LOCK_TTL", d.LockTTL, "a namespace lock its holder stops refreshing expires after this")
	s.Duration(&c.AckWait, "ACK_WAIT", d.AckWait, "a job whose worker stops sending heartbeats is redelivered after this")
	s.Int(&c.MaxDeliver, "MAX_DELIVER", d.MaxDeliver, "deliveries of one job before a retryable failure is final")
}
