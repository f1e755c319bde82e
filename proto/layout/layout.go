// Package layout creates Brain's JetStream streams, the workers' consumer and the key-value buckets
// when they are missing, and checks them when they exist: a stream that exists with another
// configuration is a startup error that names the difference, never a silent change.
package layout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/nats-io/nats.go/jetstream"
)

// Config holds the tunables of the layout. Gateways and workers must be given the same values.
type Config struct {
	Replicas         int           // replicas of every stream and bucket (1, or 3 on a NATS cluster)
	EventsMaxAge     time.Duration // how long events stay replayable
	EventsMaxPerChat int64         // events kept per chat subject
	MaxFollowers     int           // consumers of BRAIN_EVENTS at once: one per socket and followed chat, on all gateways
	DedupWindow      time.Duration // JetStream duplicate window for job publishes
	JobsHistoryTTL   time.Duration // how long job status records stay in JobsBucket
	LockTTL          time.Duration // a namespace lock not refreshed for this long expires
	AckWait          time.Duration // a job not acked or marked in progress for this long is redelivered
	MaxDeliver       int           // deliveries of one job before it fails for good
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{Replicas: 1, EventsMaxAge: 24 * time.Hour, EventsMaxPerChat: 10000, MaxFollowers: 100_000,
		DedupWindow: 10 * time.Minute, JobsHistoryTTL: 7 * 24 * time.Hour, LockTTL: 30 * time.Second,
		AckWait: 30 * time.Second, MaxDeliver: 5}
}

// Validate checks the values.
func (c Config) Validate() error {
	var errs []error
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d: must be 1 to 5", c.Replicas))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{{"events max age", c.EventsMaxAge, time.Minute}, {"dedup window", c.DedupWindow, time.Second},
		{"jobs history TTL", c.JobsHistoryTTL, time.Minute}, {"lock TTL", c.LockTTL, time.Second},
		{"ack wait", c.AckWait, time.Second}} {
		if d.v < d.min {
			errs = append(errs, fmt.Errorf("%s %s: must be at least %s", d.name, d.v, d.min))
		}
	}
	if c.EventsMaxPerChat < 10 {
		errs = append(errs, fmt.Errorf("events per chat %d: must be at least 10", c.EventsMaxPerChat))
	}
	if c.MaxFollowers < 100 {
		errs = append(errs, fmt.Errorf("max followers %d: must be at least 100", c.MaxFollowers))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("max deliver %d: must be at least 1", c.MaxDeliver))
	}
	return errors.Join(errs...)
}

// Shared ensures what both gateways and workers use: both streams and the jobs bucket.
func Shared(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.KeyValue, error) {
	if err := ensureStream(ctx, js, c.jobsStream()); err != nil {
		return nil, err
	}
	if err := ensureStream(ctx, js, c.eventsStream()); err != nil {
		return nil, err
	}
	return ensureBucket(ctx, js, jetstream.KeyValueConfig{Bucket: proto.JobsBucket, History: 1,
		TTL: c.JobsHistoryTTL, Storage: jetstream.FileStorage, Replicas: c.Replicas})
}

// Locks ensures the namespace lock bucket.
func Locks(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.KeyValue, error) {
	return ensureBucket(ctx, js, jetstream.KeyValueConfig{Bucket: proto.LocksBucket, History: 1,
		TTL: c.LockTTL, Storage: jetstream.FileStorage, Replicas: c.Replicas})
}

// Workers ensures the shared durable pull consumer of BRAIN_JOBS.
func Workers(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Consumer, error) {
	want := jetstream.ConsumerConfig{Durable: proto.WorkersConsumer, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: c.AckWait, MaxDeliver: c.MaxDeliver, FilterSubject: proto.JobsSubjects,
		DeliverPolicy: jetstream.DeliverAllPolicy, MaxAckPending: 1000,
		Description: "Brain workers: one shared pull consumer"}
	cons, err := js.Consumer(ctx, proto.JobsStream, proto.WorkersConsumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = js.CreateConsumer(ctx, proto.JobsStream, want)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerExists) {
			return nil, fmt.Errorf("create consumer %s: %w", proto.WorkersConsumer, err)
		}
		if err == nil {
			return cons, nil
		}
		cons, err = js.Consumer(ctx, proto.JobsStream, proto.WorkersConsumer)
	}
	if err != nil {
		return nil, fmt.Errorf("look up consumer %s: %w", proto.WorkersConsumer, err)
	}
	have := cons.CachedInfo().Config
	var diffs []string
	diffs = differ(diffs, "ack_policy", have.AckPolicy.String(), want.AckPolicy.String())
	diffs = differ(diffs, "ack_wait", have.AckWait, want.AckWait)
	diffs = differ(diffs, "max_deliver", limit(have.MaxDeliver), limit(want.MaxDeliver))
	diffs = differ(diffs, "filter_subject", have.FilterSubject, want.FilterSubject)
	if len(diffs) > 0 {
		return nil, conflict("consumer "+proto.JobsStream+" > "+proto.WorkersConsumer, diffs,
			"nats consumer rm "+proto.JobsStream+" "+proto.WorkersConsumer)
	}
	return cons, nil
}

func (c Config) jobsStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: proto.JobsStream, Subjects: []string{proto.JobsSubjects},
		Description: "Brain deploy jobs (work queue)", Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Replicas: c.Replicas, Duplicates: c.DedupWindow,
		Discard: jetstream.DiscardOld}
}

func (c Config) eventsStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: proto.EventsStream, Subjects: []string{proto.EventsSubjects},
		Description: "Brain job events, one subject per chat", Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, Replicas: c.Replicas, MaxAge: c.EventsMaxAge,
		MaxMsgsPerSubject: c.EventsMaxPerChat, Duplicates: c.DedupWindow, Discard: jetstream.DiscardOld,
		AllowDirect: true, MaxConsumers: c.MaxFollowers}
}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, want)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create stream %s: %w", want.Name, err)
		}
		s, err = js.Stream(ctx, want.Name) // created concurrently by another replica
	}
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", want.Name, err)
	}
	if diffs := streamDiffs(s.CachedInfo().Config, want); len(diffs) > 0 {
		return conflict("stream "+want.Name, diffs, "nats stream edit "+want.Name)
	}
	return nil
}

func streamDiffs(have, want jetstream.StreamConfig) []string {
	var diffs []string
	diffs = differ(diffs, "subjects", strings.Join(have.Subjects, ","), strings.Join(want.Subjects, ","))
	diffs = differ(diffs, "retention", have.Retention.String(), want.Retention.String())
	diffs = differ(diffs, "storage", have.Storage.String(), want.Storage.String())
	diffs = differ(diffs, "replicas", have.Replicas, want.Replicas)
	diffs = differ(diffs, "max_age", have.MaxAge, want.MaxAge)
	diffs = differ(diffs, "max_msgs_per_subject", limit(have.MaxMsgsPerSubject), limit(want.MaxMsgsPerSubject))
	diffs = differ(diffs, "duplicate_window", have.Duplicates, want.Duplicates)
	diffs = differ(diffs, "max_consumers", limit(have.MaxConsumers), limit(want.MaxConsumers))
	return diffs
}

func ensureBucket(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, want.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, want)
		if err == nil {
			return kv, nil
		}
		if !errors.Is(err, jetstream.ErrBucketExists) && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("create bucket %s: %w", want.Bucket, err)
		}
		kv, err = js.KeyValue(ctx, want.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("look up bucket %s: %w", want.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("status of bucket %s: %w", want.Bucket, err)
	}
	var diffs []string
	diffs = differ(diffs, "ttl", st.TTL(), want.TTL)
	diffs = differ(diffs, "history", st.History(), int64(want.History))
	if info, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		diffs = differ(diffs, "replicas", info.StreamInfo().Config.Replicas, want.Replicas)
	}
	if len(diffs) > 0 {
		return nil, conflict("key-value bucket "+want.Bucket, diffs, "nats kv rm "+want.Bucket)
	}
	return kv, nil
}

// limit maps the server's "unlimited" (-1) and the client's unset (0) to one value.
func limit[T int | int64](v T) T {
	if v <= 0 {
		return -1
	}
	return v
}

func differ[T comparable](diffs []string, field string, have, want T) []string {
	if have == want {
		return diffs
	}
	return append(diffs, fmt.Sprintf("%s is %v, configured %v", field, have, want))
}

// ErrConflict is returned (wrapped) when an existing stream, consumer or bucket has another
// configuration than this process was given.
var ErrConflict = errors.New("existing configuration differs")

func conflict(what string, diffs []string, fix string) error {
	slices.Sort(diffs)
	return fmt.Errorf("%s: %w: %s; give every gateway and worker the same settings, or change it deliberately (%s)",
		what, ErrConflict, strings.Join(diffs, "; "), fix)
}
