package cluster

import (
	"fmt"
	"net/http"

	"github.com/backendim/brain/worker/internal/eksauth"
)

// bearer is an http.RoundTripper that authenticates each request with an EKS token.
type bearer struct {
	tokens *eksauth.TokenSource
	next   http.RoundTripper
}

// RoundTrip sets "Authorization: Bearer <token>" on a copy of req, unless req already carries an
// Authorization header.
func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") != "" {
		return b.next.RoundTrip(req)
	}
	token, err := b.tokens.Token(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body even on error
		}
		return nil, fmt.Errorf("authenticate to %s: %w", req.URL.Host, err)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+token)
	return b.next.RoundTrip(req)
}

// WrappedRoundTripper lets client-go's debugging and connection helpers see the transport below.
func (b *bearer) WrappedRoundTripper() http.RoundTripper { return b.next }
