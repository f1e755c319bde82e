package proto

import (
	"encoding/json"
	"fmt"
	"time"
)

// Job is what a gateway publishes on JobSubject and a worker consumes.
type Job struct {
	JobID       string    `json:"jobId"`
	UserID      string    `json:"userId"`
	ChatID      string    `json:"chatId"`
	RepoURL     string    `json:"repoURL"`
	CommitHash  string    `json:"commitHash"`
	Path        string    `json:"path,omitempty"`
	DryRun      bool      `json:"dryRun,omitempty"`
	RequestID   string    `json:"requestId,omitempty"`
	SubmittedAt time.Time `json:"submittedAt"`
}

// NewJob turns a validated deploy request into a job.
func NewJob(jobID string, r Request, now time.Time) Job {
	return Job{JobID: jobID, UserID: r.UserID, ChatID: r.ChatID, RepoURL: r.RepoURL,
		CommitHash: r.CommitHash, Path: CleanPath(r.Path), DryRun: r.DryRun, RequestID: r.RequestID,
		SubmittedAt: now.UTC()}
}

// DecodeJob parses and checks a job message.
func DecodeJob(data []byte) (Job, error) {
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return Job{}, fmt.Errorf("decode job: %w", err)
	}
	r := Request{Type: TypeDeploy, UserID: j.UserID, ChatID: j.ChatID, RepoURL: j.RepoURL,
		CommitHash: j.CommitHash, Path: j.Path, RequestID: j.RequestID}
	if e := r.Validate(); e != nil {
		return Job{}, fmt.Errorf("decode job: %w", e)
	}
	if !ValidID(j.UserID) {
		return Job{}, fmt.Errorf("decode job: bad userId %q", j.UserID)
	}
	if !ValidJobID(j.JobID) {
		return Job{}, fmt.Errorf("decode job: bad jobId %q", j.JobID)
	}
	return j, nil
}

// Namespace is the job's Kubernetes namespace.
func (j Job) Namespace() string { return Namespace(j.ChatID, j.UserID) }

// JobState is the state of a job in JobsBucket.
type JobState string

const (
	StateQueued    JobState = "queued"
	StateRunning   JobState = "running"
	StateSucceeded JobState = "succeeded"
	StateFailed    JobState = "failed"
	StateCancelled JobState = "cancelled"
)

// Final reports whether a job in state s has ended.
func (s JobState) Final() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// JobStatus is a job's record in JobsBucket, keyed by job ID. Gateways create it, workers update it
// with compare-and-set, and "status" requests return it.
type JobStatus struct {
	Job
	State           JobState  `json:"state"`
	Published       bool      `json:"published"`
	CancelRequested bool      `json:"cancelRequested,omitempty"`
	FirstSeq        uint64    `json:"firstSeq,omitempty"`
	Attempt         int       `json:"attempt,omitempty"`
	Worker          string    `json:"worker,omitempty"`
	Commit          string    `json:"commit,omitempty"`
	Code            Code      `json:"code,omitempty"`
	Message         string    `json:"message,omitempty"`
	StartedAt       time.Time `json:"startedAt,omitzero"`
	FinishedAt      time.Time `json:"finishedAt,omitzero"`
}

// DecodeJobStatus parses a JobsBucket value.
func DecodeJobStatus(data []byte) (JobStatus, error) {
	var s JobStatus
	if err := json.Unmarshal(data, &s); err != nil {
		return JobStatus{}, fmt.Errorf("decode job status: %w", err)
	}
	return s, nil
}
