// Package natsauth is the one home of Brain's NATS identities: the roles that connect (the gateway,
// the worker, and an operator's admin), exactly which subjects each may publish and subscribe to,
// their nkey seed files, and the NATS configuration rendered from them. The embedded server, the
// tests' server and every shipped NATS configuration take their permissions from here (a deploycheck
// test compares them), so what a role may do is changed in one place: the grants of that role.
package natsauth

import (
	"slices"

	"github.com/backendim/brain/proto"
)

// Role is a kind of NATS client of Brain. Each has its own nkey users.
type Role string

const (
	// Gateway submits jobs, records them, publishes its own events and relays events to sockets.
	Gateway Role = "gateway"
	// Worker takes jobs from the workers consumer and publishes their events, records and locks.
	Worker Role = "worker"
	// Admin is an operator (the nats CLI, tests): every subject, including deleting streams.
	Admin Role = "admin"
)

// Roles returns every role, in a fixed order.
func Roles() []Role { return []Role{Gateway, Worker, Admin} }

// Permissions are the subjects a role may publish to and subscribe to; nothing else is allowed.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// For returns role's permissions, and false for Admin, which is not restricted.
func For(r Role) (Permissions, bool) {
	gs := r.grants()
	if gs == nil {
		return Permissions{}, false
	}
	var p Permissions
	for _, g := range gs {
		p.Publish = append(p.Publish, g.pub...)
		p.Subscribe = append(p.Subscribe, g.sub...)
	}
	slices.Sort(p.Publish)
	slices.Sort(p.Subscribe)
	return Permissions{Publish: slices.Compact(p.Publish), Subscribe: slices.Compact(p.Subscribe)}, true
}

// InboxPrefix is the prefix of role's reply subjects. Each role has its own, so that one role
// cannot subscribe to the replies another receives (its KV reads, its pulled jobs).
func InboxPrefix(r Role) string { return "_INBOX." + string(r) }

// grants is what each role does, as the subjects NATS sees. A change in what a component does (the
// relay reading events another way, the orphan sweeper consuming a stream of advisories) is an
// edit of its role's list here; docs/design.md ("NATS identities") explains every line.
func (r Role) grants() []grant {
	switch r {
	case Gateway:
		return []grant{
			replies(Gateway),
			ensureStream(proto.JobsStream), ensureStream(proto.EventsStream), ensureBucket(proto.JobsBucket),
			publish(proto.JobSubject("*", "*")),   // submit a job
			publish(proto.EventSubject("*", "*")), // its queued event, and the cancelled of a queued job
			readBucket(proto.JobsBucket), writeBucket(proto.JobsBucket),
			directGet(proto.EventsStream),                    // status: a job's last events
			follow(proto.EventsStream, proto.EventsSubjects), // relay: an ordered consumer per followed chat
			subscribe(proto.EventsSubjects),                  // relay: one subscription to every event per gateway
		}
	case Worker:
		return []grant{
			replies(Worker),
			ensureStream(proto.JobsStream), ensureStream(proto.EventsStream),
			ensureBucket(proto.JobsBucket), ensureBucket(proto.LocksBucket),
			consume(proto.JobsStream, proto.WorkersConsumer, proto.JobsSubjects),
			publish(proto.EventSubject("*", "*")), // every event of the jobs it runs
			readBucket(proto.JobsBucket), writeBucket(proto.JobsBucket), watchBucket(proto.JobsBucket),
			readBucket(proto.LocksBucket), writeBucket(proto.LocksBucket), watchBucket(proto.LocksBucket),
			// orphans: the max-deliveries advisory, then the job's message is read and removed
			subscribe(proto.MaxDeliveriesAdvisory), getMessage(proto.JobsStream), deleteMessage(proto.JobsStream),
		}
	}
	return nil
}

// grant is one thing a role does, spelled as the subjects it publishes and subscribes to.
type grant struct{ pub, sub []string }

func publish(subject string) grant   { return grant{pub: []string{subject}} }
func subscribe(subject string) grant { return grant{sub: []string{subject}} }

// replies lets role receive the answers to its requests: JetStream API replies, acks of its
// publishes, the messages it pulls from consumers and its key watchers' deliveries.
func replies(r Role) grant { return subscribe(InboxPrefix(r) + ".>") }

// ensureStream looks a stream up and creates it when it is missing (proto/layout). Updating,
// purging and deleting streams stay the admin's.
func ensureStream(stream string) grant {
	return grant{pub: []string{api("STREAM.INFO", stream), api("STREAM.CREATE", stream)}}
}

// ensureBucket is ensureStream of the bucket's stream; creating a bucket first reads the account's
// JetStream information (its limits and API level).
func ensureBucket(bucket string) grant {
	g := ensureStream(kvStream(bucket))
	g.pub = append(g.pub, api("INFO"))
	return g
}

// readBucket reads keys of a bucket (direct get of a key's last value).
func readBucket(bucket string) grant {
	return grant{pub: []string{api("DIRECT.GET", kvStream(bucket), kvSubjects(bucket))}}
}

// writeBucket creates, updates (compare-and-set) and deletes keys: each is a publish to the key.
func writeBucket(bucket string) grant { return publish(kvSubjects(bucket)) }

// watchBucket follows keys of a bucket: an ordered push consumer delivering to the role's inbox,
// with flow control, deleted when the watch stops.
func watchBucket(bucket string) grant {
	s := kvStream(bucket)
	return grant{pub: append(flowControl(s), api("CONSUMER.CREATE", s, "*", kvSubjects(bucket)), api("CONSUMER.DELETE", s, "*"))}
}

// directGet reads messages of a stream that allows direct get (AllowDirect) by sequence, or the
// next one on a subject.
func directGet(stream string) grant { return publish(api("DIRECT.GET", stream)) }

// getMessage reads a message of a stream without direct get, by sequence.
func getMessage(stream string) grant { return publish(api("STREAM.MSG.GET", stream)) }

func deleteMessage(stream string) grant { return publish(api("STREAM.MSG.DELETE", stream)) }

// follow creates short-lived consumers of stream filtered to subjects in filter, pulls from them,
// and deletes one it replaces: the relay's ordered consumers (the server removes them when idle).
// A consumer with a single filter subject is created on an API subject that names the filter,
// which the server checks against the consumer's configuration; one with several filters is
// created on $JS.API.CONSUMER.CREATE.<stream>.<name> and would need that subject granted.
func follow(stream, filter string) grant {
	return grant{pub: []string{api("CONSUMER.CREATE", stream, "*", filter), api("CONSUMER.MSG.NEXT", stream, "*"),
		api("CONSUMER.DELETE", stream, "*")}}
}

// consume creates (or finds) the durable pull consumer of stream with filter, pulls from it and
// acknowledges what it pulled (ack, nak, in progress, term).
func consume(stream, consumer, filter string) grant {
	return grant{pub: []string{api("CONSUMER.INFO", stream, consumer), api("CONSUMER.CREATE", stream, consumer, filter),
		api("CONSUMER.MSG.NEXT", stream, consumer),
		// acks in the server's v1 format ($JS.ACK.<stream>.<consumer>.…) and its v2 format
		// ($JS.ACK.<domain>.<account hash>.<stream>.<consumer>.…)
		"$JS.ACK." + stream + "." + consumer + ".>", "$JS.ACK.*.*." + stream + "." + consumer + ".>"}}
}

// flowControl answers a push consumer's flow control messages, in both reply formats.
func flowControl(stream string) []string {
	return []string{"$JS.FC." + stream + ".>", "$JS.FC.*.*." + stream + ".>"}
}

// api is a JetStream API subject: $JS.API.<op>.<tokens…>.
func api(op string, tokens ...string) string {
	s := "$JS.API." + op
	for _, t := range tokens {
		s += "." + t
	}
	return s
}

func kvStream(bucket string) string   { return "KV_" + bucket }
func kvSubjects(bucket string) string { return "$KV." + bucket + ".>" }
