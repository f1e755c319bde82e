package deployer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/backendim/brain/proto"
)

// clusterError turns a failure of a request that concerns no single object into a *proto.Error.
// what names the operation for the message ("read the inventory of im-c1-u1").
func (d *Deployer) clusterError(what string, err error) error {
	var pe *proto.Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, context.Canceled) && !isTimeout(err):
		return fmt.Errorf("%s: %w", what, err)
	case unreachable(err):
		return proto.Errorf(proto.CodeClusterUnreachable,
			"the Kubernetes API at %s did not answer while trying to %s (%s); the job may be retried later",
			d.host, what, shortCause(err))
	case apierrors.IsUnauthorized(err):
		return proto.Errorf(proto.CodeClusterUnreachable,
			"the Kubernetes API at %s refused Brain's credentials while trying to %s; the operator should check the worker's cluster credentials",
			d.host, what)
	case apierrors.IsForbidden(err):
		return proto.Errorf(proto.CodeApplyFailed,
			"the Kubernetes API refused Brain permission to %s: %s; the operator should check the worker's RBAC (docs/kubernetes.md)",
			what, apiMessage(err))
	}
	return proto.Errorf(proto.CodeApplyFailed, "could not %s: %s", what, apiMessage(err))
}

// objectError turns a failure to dry-run, apply or delete it into a *proto.Error that names the
// object and where it came from.
func (d *Deployer) objectError(it *item, verb string, err error) error {
	var pe *proto.Error
	if errors.As(err, &pe) {
		return pe
	}
	subject := it.describe()
	switch {
	case errors.Is(err, context.Canceled) && !isTimeout(err):
		return fmt.Errorf("%s %s: %w", verb, it.key(), err)
	case unreachable(err):
		return d.clusterError(verb+" "+it.key(), err)
	case meta.IsNoMatchError(err):
		return proto.Errorf(proto.CodeInvalidObject,
			"%s: the cluster does not serve kind %s in apiVersion %s; fix apiVersion/kind, or install the CRD that defines it",
			subject, it.obj.GetKind(), it.obj.GetAPIVersion())
	case apierrors.HasStatusCause(err, metav1.CauseTypeFieldManagerConflict):
		return proto.Errorf(proto.CodeApplyConflict,
			"%s: fields are owned by another field manager: %s. Remove those fields from the manifest, or have their owner release them (the operator may set APPLY_FORCE_CONFLICTS=true to take them over)",
			subject, apiMessage(err))
	case isTypeError(err):
		msg := apiMessage(err)
		if _, rest, ok := strings.Cut(msg, "): "); ok {
			msg = rest
		}
		// ".data.x: expected string, got &value.valueUnstructured{Value:true}"
		msg = regexp.MustCompile(`&value\.value\w+\{Value:(.*)\}`).ReplaceAllString(msg, "$1")
		return proto.Errorf(proto.CodeInvalidObject, "%s: a field has the wrong type: %s", subject, msg)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsRequestEntityTooLargeError(err):
		return proto.Errorf(proto.CodeInvalidObject, "%s: the API server refused it: %s", subject, apiMessage(err))
	case quotaPending(err):
		return proto.Errorf(proto.CodeApplyFailed,
			"%s: the cluster has not counted the namespace's ResourceQuota yet (%s); the job will be retried",
			subject, apiMessage(err))
	case apierrors.IsForbidden(err):
		hint := ""
		switch msg := apiMessage(err); {
		case strings.Contains(msg, "attempting to grant RBAC permissions not currently held"):
			hint = " (a Role may only grant what Brain itself holds: narrow its rules, or ask the operator to extend the worker's ClusterRole)"
		case strings.Contains(msg, " cannot "):
			hint = " (Brain's own RBAC does not allow this kind: remove the object, or ask the operator to extend the worker's ClusterRole)"
		}
		return proto.Errorf(proto.CodeInvalidObject, "%s: the API server refused it: %s%s", subject, apiMessage(err), hint)
	}
	return d.clusterError(verb+" "+subject, err)
}

// isTypeError reports whether err is the API server failing to read an applied object against its
// schema (a string where a number belongs, …), which it answers with status 500.
func isTypeError(err error) bool {
	return apierrors.IsInternalError(err) && strings.HasPrefix(apiMessage(err), "failed to create typed ")
}

// quotaPending reports whether err is the API server refusing an object because a ResourceQuota of
// its namespace has no usage yet (the quota controller has not counted it since it was created or
// changed). It passes by itself, usually within a second.
func quotaPending(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(apiMessage(err), "status unknown for quota")
}

// unreachable reports whether err means the API server could not be reached or did not answer in
// time, as opposed to an answer that refuses something.
func unreachable(err error) bool {
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
	)
	switch {
	case errors.As(err, &opErr), errors.As(err, &dnsErr), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), isTimeout(err):
		return true
	case apierrors.IsServiceUnavailable(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsTooManyRequests(err):
		return true
	}
	// Discovery aggregates some errors as text only.
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "i/o timeout") ||
		strings.Contains(msg, "Client.Timeout exceeded") || strings.Contains(msg, "no such host")
}

// isTimeout reports whether err is a request that ran out of time (the per-request timeout), which
// is not the job's own context ending.
func isTimeout(err error) bool {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// apiMessage is the API server's own message for err, without client-side wrapping.
func apiMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if msg := status.Status().Message; msg != "" {
			return msg
		}
	}
	var dry *ssaerrors.DryRunErr
	if errors.As(err, &dry) {
		return dry.Unwrap().Error()
	}
	return err.Error()
}

// shortCause is the innermost useful text of a network error ("connection refused").
func shortCause(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err.Error()
	}
	if isTimeout(err) {
		return "request timed out"
	}
	return err.Error()
}
