package proto

// JetStream names. Operators inspect them with the nats CLI, so they are part of the contract.
const (
	// JobsStream holds submitted jobs with work-queue retention: a job leaves it once a worker acks it.
	JobsStream = "BRAIN_JOBS"
	// JobsSubjects is the subject filter of JobsStream.
	JobsSubjects = "brain.jobs.>"
	// WorkersConsumer is the durable pull consumer that every worker replica shares.
	WorkersConsumer = "workers"

	// EventsStream holds every progress, success and error event, one subject per chat, with limits
	// retention; an event's stream sequence is its "seq".
	EventsStream = "BRAIN_EVENTS"
	// EventsSubjects is the subject filter of EventsStream.
	EventsSubjects = "brain.events.>"

	// JobsBucket is the key-value bucket of job status records, keyed by job ID, plus one
	// ChatKey per chat naming the chat's latest job.
	JobsBucket = "brain_jobs"
	// LocksBucket holds one key per Kubernetes namespace while a job deploys into it.
	LocksBucket = "brain_locks"

	// MaxDeliveriesAdvisory is where the server announces a job of WorkersConsumer that ran out of
	// deliveries (its worker died on the last one).
	MaxDeliveriesAdvisory = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + JobsStream + "." + WorkersConsumer
)

// JobSubject is the subject a chat's jobs are published on.
func JobSubject(userID, chatID string) string { return "brain.jobs." + userID + "." + chatID }

// EventSubject is the subject a chat's events are published on. userID and chatID must be valid IDs
// (see ValidID), which makes them safe subject tokens.
func EventSubject(userID, chatID string) string { return "brain.events." + userID + "." + chatID }

// ChatKey is the JobsBucket key that names a chat's latest job.
func ChatKey(userID, chatID string) string { return "chat." + userID + "." + chatID }

// LockKey is the LocksBucket key of a namespace.
func LockKey(namespace string) string { return "ns." + namespace }
