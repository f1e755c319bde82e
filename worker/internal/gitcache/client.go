package gitcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/worker/internal/urlpolicy"
)

// maxRedirects bounds the redirects one request may follow.
const maxRedirects = 5

// errTooLarge is returned by a response body once a fetch has read more than its byte budget.
var errTooLarge = errors.New("fetch size limit exceeded")

// fetchState is what one fetch's HTTP client observed. go-git does not always keep the errors
// its transport returns wrapped, so the client records the two failures that need a precise code
// here, where they happen.
type fetchState struct {
	limit    int64
	read     atomic.Int64
	tooLarge atomic.Bool

	mu      sync.Mutex
	refused *proto.Error
}

func (s *fetchState) refuse(e *proto.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused == nil {
		s.refused = e
	}
}

func (s *fetchState) refusal() *proto.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// newHTTPClient returns a client for one fetch: its dialer refuses what the policy refuses (after
// DNS, on every connection), every redirect target is checked against the policy again, response
// bodies count against the fetch's byte budget, and no proxy from the environment is used (the
// policy could not judge the real destination through one). close releases its connections.
func newHTTPClient(policy urlpolicy.Policy, state *fetchState, timeout time.Duration) (c *http.Client, close func()) {
	dial := policy.DialContext(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second})
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			var pe *proto.Error
			if errors.As(err, &pe) {
				state.refuse(pe)
			}
			return conn, err
		},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: timeout,
		IdleConnTimeout:       30 * time.Second,
		MaxIdleConnsPerHost:   2,
	}
	c = &http.Client{
		Transport: &countingTransport{base: tr, state: state},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			target := *req.URL
			target.RawQuery, target.ForceQuery = "", false // git's own ?service=, not part of the repository URL
			if _, err := policy.Check(target.String()); err != nil {
				var pe *proto.Error
				if errors.As(err, &pe) {
					pe = proto.Errorf(pe.Code, "the server redirected to a refused URL: %s", pe.Message)
					state.refuse(pe)
					return pe
				}
				return err
			}
			return nil
		},
	}
	return c, tr.CloseIdleConnections
}

// countingTransport wraps response bodies so that they fail once the fetch has read more than
// its limit.
type countingTransport struct {
	base  http.RoundTripper
	state *fetchState
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, state: t.state}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	state *fetchState
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.state.tooLarge.Load() {
		return 0, errTooLarge
	}
	n, err := b.ReadCloser.Read(p)
	if b.state.read.Add(int64(n)) > b.state.limit {
		b.state.tooLarge.Store(true)
		return n, errTooLarge
	}
	return n, err
}
