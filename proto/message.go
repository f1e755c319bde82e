package proto

import (
	"encoding/json"
	"time"
)

// Server message types.
const (
	TypeProgress   = "progress"   // a step of a job (from the chat's event stream)
	TypeSuccess    = "success"    // a job's final event when it succeeded
	TypeError      = "error"      // a job's final event when it failed, or a refused client message
	TypeStatusInfo = "status"     // the answer to a status request
	TypeSubscribed = "subscribed" // the answer to a subscribe request, before the replay
)

// Stage names a step of a job, in the order they happen.
type Stage string

const (
	StageQueued     Stage = "queued"      // the gateway accepted the job; carries jobId and requestId
	StageStarted    Stage = "started"     // a worker took it (attempt, worker)
	StageBlocked    Stage = "blocked"     // another job of the same namespace runs; this one waits for it
	StageFetching   Stage = "fetching"    // fetching the repository (cache hit or miss)
	StageCheckedOut Stage = "checked_out" // commit resolved: full SHA and subject
	StageRendering  Stage = "rendering"   // manifests found (count)
	StageApplying   Stage = "applying"    // one event per object: created, configured, unchanged, pruned
	StageWaiting    Stage = "waiting"     // health: what is still pending and why
	StageRetrying   Stage = "retrying"    // an attempt failed with a retryable error; the job will run again
)

// Object actions reported while applying.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionUnchanged  = "unchanged"
	ActionPruned     = "pruned"
	ActionFound      = "found" // rendered, not applied (no cluster stage ran)
)

// Message is anything a gateway sends to a client. Progress, success and error events of jobs are
// stored in EventsStream as Messages without Seq; the gateway fills in Seq, the stream sequence,
// when it relays them.
type Message struct {
	Type      string    `json:"type"`
	JobID     string    `json:"jobId,omitempty"`
	ChatID    string    `json:"chatId,omitempty"`
	Seq       uint64    `json:"seq,omitempty"`
	Stage     Stage     `json:"stage,omitempty"`
	Message   string    `json:"message,omitempty"`
	Time      time.Time `json:"time,omitzero"`
	RequestID string    `json:"requestId,omitempty"`

	// progress details
	Attempt   int           `json:"attempt,omitempty"`
	Worker    string        `json:"worker,omitempty"`
	Commit    string        `json:"commit,omitempty"`
	Count     int           `json:"count,omitempty"`
	Object    *ObjectResult `json:"object,omitempty"`
	Pending   []string      `json:"pending,omitempty"`
	Duplicate bool          `json:"duplicate,omitempty"`

	// error
	Code      Code  `json:"code,omitempty"`
	Retryable *bool `json:"retryable,omitempty"`

	// success
	Payload *Result `json:"payload,omitempty"`

	// status and subscribed
	After  uint64     `json:"after,omitempty"`
	Job    *JobStatus `json:"job,omitempty"`
	Events []Message  `json:"events,omitempty"`
}

// ObjectResult is one Kubernetes object of a job.
type ObjectResult struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	File      string `json:"file,omitempty"`
	Action    string `json:"action,omitempty"`
	Status    string `json:"status,omitempty"`
	Message   string `json:"message,omitempty"`
	Diff      string `json:"diff,omitempty"`
}

// Result is the payload of a success event.
type Result struct {
	Commit     string           `json:"commit"`
	Subject    string           `json:"subject"`
	Ref        string           `json:"ref"`
	Namespace  string           `json:"namespace"`
	Path       string           `json:"path"`
	DryRun     bool             `json:"dryRun,omitempty"`
	CacheHit   bool             `json:"cacheHit"`
	Objects    []ObjectResult   `json:"objects"`
	DurationMs int64            `json:"durationMs"`
	StagesMs   map[string]int64 `json:"stagesMs"`
}

// ErrorMessage returns the message a client gets for e, outside any job.
func ErrorMessage(e *Error, requestID string) Message {
	retry := e.Code.Retryable()
	return Message{Type: TypeError, Code: e.Code, Message: e.Message, Retryable: &retry, RequestID: requestID}
}

// Final reports whether m ends its job.
func (m Message) Final() bool { return m.JobID != "" && (m.Type == TypeSuccess || m.Type == TypeError) }

// DecodeMessage parses a server message (clients and tests use it).
func DecodeMessage(data []byte) (Message, error) {
	var m Message
	err := json.Unmarshal(data, &m)
	return m, err
}
