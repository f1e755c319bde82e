package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"path"
	"strings"
)

// Client message types.
const (
	TypeDeploy    = "deploy"
	TypeSubscribe = "subscribe"
	TypeStatus    = "status"
	TypeCancel    = "cancel"
)

// Request is any message a client sends. Type defaults to "deploy", so the original four-field
// message {"userId","chatId","repoURL","commitHash"} works unchanged.
type Request struct {
	Type       string `json:"type,omitempty"`
	RequestID  string `json:"requestId,omitempty"`
	UserID     string `json:"userId,omitempty"`
	ChatID     string `json:"chatId,omitempty"`
	RepoURL    string `json:"repoURL,omitempty"`
	CommitHash string `json:"commitHash,omitempty"`
	Path       string `json:"path,omitempty"`
	DryRun     bool   `json:"dryRun,omitempty"`
	After      uint64 `json:"after,omitempty"`
	JobID      string `json:"jobId,omitempty"`
}

// DecodeRequest parses and validates one client frame. Unknown fields are refused so that a typo
// ("commithash") is an error rather than a silently ignored field. The returned *Error is what the
// client should be told.
func DecodeRequest(data []byte) (Request, *Error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Request{}, Errorf(CodeBadRequest, "send exactly one JSON object per frame")
	}
	if r.Type == "" {
		r.Type = TypeDeploy
	}
	return r, r.Validate()
}

func decodeError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return Errorf(CodeInvalidField, "field %q must be a %s", typeErr.Field, typeErr.Type.Kind())
	case errors.As(err, &typeErr):
		return Errorf(CodeBadRequest, "the message must be a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return Errorf(CodeBadRequest, "%s; known fields are type, requestId, userId, chatId, repoURL, commitHash, path, dryRun, after, jobId",
			strings.TrimPrefix(err.Error(), "json: "))
	default:
		return Errorf(CodeBadRequest, "the message is not valid JSON: %v", err)
	}
}

// Validate checks the fields a message of r.Type needs and the form of every field present.
// userId is optional everywhere: an authenticated gateway takes it from the token.
func (r Request) Validate() *Error {
	switch r.Type {
	case TypeDeploy:
		return firstError(r.need("chatId", r.ChatID), r.need("repoURL", r.RepoURL),
			r.need("commitHash", r.CommitHash), r.fields(), forbid("after", r.After != 0), forbid("jobId", r.JobID != ""))
	case TypeSubscribe, TypeStatus:
		return firstError(r.need("chatId", r.ChatID), r.fields(), r.noDeployFields())
	case TypeCancel:
		return firstError(r.need("jobId", r.JobID), r.fields(), r.noDeployFields(), forbid("after", r.After != 0))
	default:
		return Errorf(CodeBadRequest, "unknown type %q: use deploy, subscribe, status or cancel", r.Type)
	}
}

func (r Request) need(field, v string) *Error {
	if v == "" {
		return Errorf(CodeInvalidField, "%s is required for %s", field, r.Type)
	}
	return nil
}

func (r Request) noDeployFields() *Error {
	return firstError(forbid("repoURL", r.RepoURL != ""), forbid("commitHash", r.CommitHash != ""),
		forbid("path", r.Path != ""), forbid("dryRun", r.DryRun), forbid("requestId", r.RequestID != ""))
}

func forbid(field string, present bool) *Error {
	if present {
		return Errorf(CodeInvalidField, "%s is not allowed in this message type", field)
	}
	return nil
}

// fields checks the form of every non-empty field.
func (r Request) fields() *Error {
	if r.UserID != "" && !ValidID(r.UserID) {
		return Errorf(CodeInvalidField, "userId must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	}
	if r.ChatID != "" && !ValidID(r.ChatID) {
		return Errorf(CodeInvalidField, "chatId must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	}
	if r.JobID != "" && !ValidJobID(r.JobID) {
		return Errorf(CodeInvalidField, "jobId must be the 32 hex digits a queued event gave")
	}
	if r.RequestID != "" && !validRequestID(r.RequestID) {
		return Errorf(CodeInvalidField, "requestId must be 1 to %d characters of A-Z a-z 0-9 . _ : -", MaxRequestIDLen)
	}
	return firstError(checkRepoURL(r.RepoURL), checkRef(r.CommitHash), checkPath(r.Path))
}

func validRequestID(s string) bool {
	if len(s) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !idByte(c) && c != '.' && c != ':' {
			return false
		}
	}
	return true
}

// checkRepoURL checks the URL's form only; the worker applies the operator's URL policy.
func checkRepoURL(s string) *Error {
	if s == "" {
		return nil
	}
	if len(s) > MaxRepoURLLen {
		return Errorf(CodeInvalidField, "repoURL is longer than %d characters", MaxRepoURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return Errorf(CodeInvalidField, "repoURL must be an absolute URL such as https://git.example.com/org/app.git")
	}
	switch u.Scheme {
	case "https", "http", "ssh":
	default:
		return Errorf(CodeInvalidField, "repoURL scheme %q is not supported: use https (or ssh, or http where the operator allows it)", u.Scheme)
	}
	if u.Host == "" || u.Opaque != "" {
		return Errorf(CodeInvalidField, "repoURL must name a host, such as https://git.example.com/org/app.git")
	}
	if u.User != nil && u.Scheme != "ssh" {
		return Errorf(CodeInvalidField, "repoURL must not carry credentials; the operator configures them per host")
	}
	if _, hasPass := u.User.Password(); hasPass {
		return Errorf(CodeInvalidField, "repoURL must not carry a password")
	}
	if u.Fragment != "" {
		return Errorf(CodeInvalidField, "repoURL must not have a #fragment")
	}
	return nil
}

// checkRef accepts a full or abbreviated SHA, or a branch or tag name as git allows it.
func checkRef(s string) *Error {
	if s == "" {
		return nil
	}
	bad := len(s) > MaxRefLen || strings.HasPrefix(s, "-") || strings.HasPrefix(s, "/") ||
		strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".") || strings.HasSuffix(s, ".lock") ||
		strings.Contains(s, "..") || strings.Contains(s, "//") || strings.Contains(s, "@{") || s == "@"
	for i := 0; i < len(s) && !bad; i++ {
		c := s[i]
		bad = c <= ' ' || c == 0x7f || strings.IndexByte("~^:?*[\\", c) >= 0
	}
	if bad {
		return Errorf(CodeInvalidField, "commitHash must be a commit SHA (4 to 40 hex digits), a branch or a tag name")
	}
	return nil
}

// checkPath accepts a relative directory inside the repository.
func checkPath(s string) *Error {
	if s == "" {
		return nil
	}
	clean := path.Clean(strings.TrimSuffix(s, "/"))
	if len(s) > MaxPathLen || strings.HasPrefix(s, "/") || clean == ".." || strings.HasPrefix(clean, "../") ||
		strings.ContainsAny(s, "\\\x00") {
		return Errorf(CodeInvalidField, "path must be a directory inside the repository, such as deploy/")
	}
	return nil
}

// CleanPath returns the repository-relative form of a valid path: "" (no path: discover the
// manifest directory) stays "", and the repository root is ".".
func CleanPath(s string) string {
	if s == "" {
		return ""
	}
	return path.Clean(strings.TrimSuffix(s, "/"))
}

func firstError(errs ...*Error) *Error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
