package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/backendim/brain/proto"
)

// errJobEnded is returned by an update function that finds the job already in a final state.
var errJobEnded = errors.New("job already ended")

// maxCASTries bounds the compare-and-set loop of updateJob; each conflict means someone else
// wrote the entry in between, which happens a few times at most (a gateway's cancel request).
const maxCASTries = 10

// readJob returns the job's record.
func (r *Runner) readJob(ctx context.Context, jobID string) (proto.JobStatus, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	e, err := r.jobs.Get(ctx, jobID)
	if err != nil {
		return proto.JobStatus{}, fmt.Errorf("read job %s: %w", jobID, err)
	}
	return proto.DecodeJobStatus(e.Value())
}

// updateJob applies change to the job's record with compare-and-set on its revision, reading
// it again and reapplying change after a conflicting write. change may refuse by returning an
// error (such as errJobEnded), which updateJob returns with the record as read.
func (r *Runner) updateJob(ctx context.Context, jobID string, change func(*proto.JobStatus) error) (proto.JobStatus, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	for range maxCASTries {
		e, err := r.jobs.Get(ctx, jobID)
		if err != nil {
			return proto.JobStatus{}, fmt.Errorf("read job %s: %w", jobID, err)
		}
		st, err := proto.DecodeJobStatus(e.Value())
		if err != nil {
			return proto.JobStatus{}, err
		}
		if err := change(&st); err != nil {
			return st, err
		}
		data, err := json.Marshal(st)
		if err != nil {
			return st, fmt.Errorf("encode job %s: %w", jobID, err)
		}
		_, err = r.jobs.Update(ctx, jobID, data, e.Revision())
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("update job %s: %w", jobID, err)
		}
		return st, nil
	}
	return proto.JobStatus{}, fmt.Errorf("update job %s: still conflicting after %d tries", jobID, maxCASTries)
}
