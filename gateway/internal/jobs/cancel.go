package jobs

import (
	"context"

	"github.com/backendim/brain/proto"
)

// Cancel stops userID's job jobID: a queued job ends at once (this gateway publishes its final
// error); a running one is marked and its worker ends it at the next safe point.
func (s *Service) Cancel(ctx context.Context, userID, jobID string) (proto.JobStatus, error) {
	var endedHere bool
	st, err := s.modify(ctx, jobID, func(st *proto.JobStatus) (bool, error) {
		switch {
		case st.UserID != userID:
			return false, proto.Errorf(proto.CodeForbidden, "job %s belongs to another user", jobID)
		case st.State.Final():
			return false, proto.Errorf(proto.CodeJobFinished, "job %s already ended (%s)", jobID, st.State)
		case st.State == proto.StateQueued:
			st.State, st.Code, st.FinishedAt = proto.StateCancelled, proto.CodeCancelled, s.now().UTC()
			st.Message, endedHere = "cancelled before a worker started it", true
		default:
			if st.CancelRequested {
				return false, nil
			}
			st.CancelRequested = true
		}
		return true, nil
	})
	if err != nil {
		return proto.JobStatus{}, unavailable("cancel job", err)
	}
	if endedHere {
		no := false
		final := proto.Message{Type: proto.TypeError, JobID: jobID, ChatID: st.ChatID, Code: proto.CodeCancelled,
			Message: st.Message, Retryable: &no, Time: s.now().UTC(), RequestID: st.RequestID}
		if _, err := s.publishEvent(ctx, userID, final, jobID+".cancelled"); err != nil {
			return proto.JobStatus{}, unavailable("publish cancelled event", err)
		}
	}
	return st, nil
}
