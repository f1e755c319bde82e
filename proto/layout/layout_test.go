package layout_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/layout"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestEnsureCreatesThenChecks(t *testing.T) {
	t.Parallel()
	js := jetStream(t)
	ctx := context.Background()
	c := layout.Defaults()
	for range 2 { // the second round finds everything in place
		if _, err := layout.Shared(ctx, js, c); err != nil {
			t.Fatal(err)
		}
		if _, err := layout.Locks(ctx, js, c); err != nil {
			t.Fatal(err)
		}
		if _, err := layout.Workers(ctx, js, c); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		change func(*layout.Config)
		ensure func(context.Context, jetstream.JetStream, layout.Config) error
		want   string
	}{
		{"events max age", func(c *layout.Config) { c.EventsMaxAge = time.Hour }, shared, "max_age"},
		{"followers", func(c *layout.Config) { c.MaxFollowers = 500 }, shared, "max_consumers"},
		{"history ttl", func(c *layout.Config) { c.JobsHistoryTTL = time.Hour }, shared, "ttl"},
		{"ack wait", func(c *layout.Config) { c.AckWait = time.Minute }, workers, "ack_wait"},
		{"lock ttl", func(c *layout.Config) { c.LockTTL = time.Minute }, locks, "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := layout.Defaults()
			tt.change(&changed)
			err := tt.ensure(ctx, js, changed)
			if !errors.Is(err, layout.ErrConflict) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a conflict naming %s", err, tt.want)
			}
		})
	}
}

// TestMoreThanAThousandFollowers: NATS limits a stream to 1,000 consumers unless the stream says
// otherwise; every followed chat of every socket is one consumer of BRAIN_EVENTS.
func TestMoreThanAThousandFollowers(t *testing.T) {
	t.Parallel()
	js := jetStream(t)
	ctx := context.Background()
	if _, err := layout.Shared(ctx, js, layout.Defaults()); err != nil {
		t.Fatal(err)
	}
	for i := range 1100 {
		if _, err := js.OrderedConsumer(ctx, proto.EventsStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{proto.EventSubject("u", "c")}}); err != nil {
			t.Fatalf("follower %d: %v", i+1, err)
		}
	}
}

func shared(ctx context.Context, js jetstream.JetStream, c layout.Config) error {
	_, err := layout.Shared(ctx, js, c)
	return err
}

func locks(ctx context.Context, js jetstream.JetStream, c layout.Config) error {
	_, err := layout.Locks(ctx, js, c)
	return err
}

func workers(ctx context.Context, js jetstream.JetStream, c layout.Config) error {
	_, err := layout.Workers(ctx, js, c)
	return err
}
