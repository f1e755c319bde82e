package proto

import "fmt"

// Code is a machine-readable error code, sent in "error" messages. Clients switch on Code; Message
// is for people. Retryable tells whether sending the same request again later may succeed.
type Code string

// Error codes of messages the gateway refuses before any job exists.
const (
	CodeBadRequest   Code = "bad_request"    // not JSON, not one object, unknown field or type
	CodeInvalidField Code = "invalid_field"  // a field is missing or malformed; the message names it
	CodeUnauthorized Code = "unauthorized"   // no token, or a token that does not verify
	CodeForbidden    Code = "forbidden"      // the message names another user, or another user's job
	CodeRateLimited  Code = "rate_limited"   // too many jobs for this user; wait and retry
	CodeTooManyChats Code = "too_many_chats" // this socket already follows the maximum number of chats
	CodeJobNotFound  Code = "job_not_found"  // no job with that ID (or it has expired)
	CodeJobFinished  Code = "job_finished"   // cancel of a job that has already ended
	CodeUnavailable  Code = "unavailable"    // NATS did not answer; retry
	CodeInternal     Code = "internal"       // a bug or an unexpected failure; retry, then report it
	CodeShuttingDown Code = "shutting_down"  // this replica is stopping; reconnect and retry
)

// Error codes of jobs, sent in the job's final "error" event.
const (
	CodeURLRefused         Code = "url_refused"         // the repo URL breaks the operator's URL policy
	CodeRepoNotFound       Code = "repo_not_found"      // the server says the repository does not exist
	CodeRepoAuthFailed     Code = "repo_auth_failed"    // the server wants credentials the operator has not configured
	CodeRepoUnreachable    Code = "repo_unreachable"    // network failure or server error while fetching
	CodeRepoTooLarge       Code = "repo_too_large"      // the fetch exceeded the operator's size limit
	CodeCommitNotFound     Code = "commit_not_found"    // no branch, tag or commit matches commitHash
	CodeAmbiguousCommit    Code = "ambiguous_commit"    // the abbreviated SHA matches more than one commit
	CodeManifestsNotFound  Code = "manifests_not_found" // no manifest directory, or it holds no objects
	CodeInvalidManifest    Code = "invalid_manifest"    // a file does not parse or an object lacks kind/name; names file and line
	CodeManifestLimit      Code = "manifest_limit"      // too many files, objects or bytes
	CodePolicyRefused      Code = "policy_refused"      // an object is of a refused kind or names another namespace
	CodeInvalidObject      Code = "invalid_object"      // the API server refused an object; names it and the reason
	CodeApplyConflict      Code = "apply_conflict"      // a field is owned by another field manager
	CodeApplyFailed        Code = "apply_failed"        // the API server failed while applying
	CodeClusterUnreachable Code = "cluster_unreachable" // the Kubernetes API did not answer
	CodeHealthFailed       Code = "health_failed"       // an object reached a failed state
	CodeHealthTimeout      Code = "health_timeout"      // objects were still not healthy when the wait ended
	CodeCancelled          Code = "cancelled"           // the user cancelled the job
	CodeTimeout            Code = "timeout"             // the job ran longer than JOB_TIMEOUT
	CodeRetriesExhausted   Code = "retries_exhausted"   // a retryable failure repeated on every delivery
)

// Error codes of jobs whose wait for health found the cause of a failure; none is retryable: the
// commit has to change.
const (
	CodeImagePullFailed  Code = "image_pull_failed"          // a container's image cannot be pulled (ImagePullBackOff, InvalidImageName)
	CodeCrashLoop        Code = "crash_loop"                 // a container keeps exiting (CrashLoopBackOff past the restart limit); quotes its last message
	CodeProgressDeadline Code = "progress_deadline_exceeded" // a Deployment made no progress for its progressDeadlineSeconds; says what blocks it
	CodeJobFailed        Code = "job_failed"                 // a Job failed (backoff limit, deadline); quotes its pod's exit code and last message
)

// Retryable reports whether a later retry of the same request may succeed without changes.
func (c Code) Retryable() bool {
	switch c {
	case CodeRateLimited, CodeUnavailable, CodeInternal, CodeShuttingDown, CodeRepoUnreachable,
		CodeClusterUnreachable, CodeApplyFailed, CodeHealthTimeout, CodeTimeout, CodeRetriesExhausted:
		return true
	}
	return false
}

// Codes lists every code, for documentation and tests.
func Codes() []Code {
	return []Code{
		CodeBadRequest, CodeInvalidField, CodeUnauthorized, CodeForbidden, CodeRateLimited,
		CodeTooManyChats, CodeJobNotFound, CodeJobFinished, CodeUnavailable, CodeInternal,
		CodeShuttingDown, CodeURLRefused, CodeRepoNotFound, CodeRepoAuthFailed, CodeRepoUnreachable,
		CodeRepoTooLarge, CodeCommitNotFound, CodeAmbiguousCommit, CodeManifestsNotFound,
		CodeInvalidManifest, CodeManifestLimit, CodePolicyRefused, CodeInvalidObject,
		CodeApplyConflict, CodeApplyFailed, CodeClusterUnreachable, CodeHealthFailed,
		CodeHealthTimeout, CodeCancelled, CodeTimeout, CodeRetriesExhausted,
		CodeImagePullFailed, CodeCrashLoop, CodeProgressDeadline, CodeJobFailed,
	}
}

// Error is an error a client may see: a Code and a message that tells the user what to do.
type Error struct {
	Code    Code
	Message string
}

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }
