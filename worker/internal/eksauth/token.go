// Package eksauth authenticates to Amazon EKS in-process, the way `aws eks get-token` does but
// without the aws CLI: DescribeCluster gives the API endpoint and CA bundle, and a TokenSource
// turns the worker's AWS credentials (the SDK's default chain: environment, shared files, web
// identity / IRSA, instance role) into the bearer token EKS accepts — "k8s-aws-v1." followed by
// the base64url of a presigned sts:GetCallerIdentity URL whose signature covers the
// x-k8s-aws-id header naming the cluster. EKS's authenticator sends that URL to STS and maps the
// identity STS answers with to a Kubernetes user.
package eksauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Token wire format, as defined by aws-iam-authenticator and accepted by EKS.
const (
	// TokenPrefix starts every EKS bearer token; the rest is the base64url (no padding) of the
	// presigned URL.
	TokenPrefix = "k8s-aws-v1."
	// ClusterIDHeader is the signed header that binds a token to one cluster.
	ClusterIDHeader = "x-k8s-aws-id"
	// presignExpiresSeconds is the X-Amz-Expires of the presigned URL. EKS ignores it and accepts
	// a token for 15 minutes after its X-Amz-Date; the CLI and the authenticator both send 60.
	presignExpiresSeconds = 60
	// tokenLifetime is how long a token is used: EKS accepts it for 15 minutes, a minute is kept
	// for clock skew between the worker and AWS.
	tokenLifetime = 14 * time.Minute
	// DefaultRefreshBefore is Options.RefreshBefore when it is zero.
	DefaultRefreshBefore = time.Minute
	// mintTimeout bounds a refresh: retrieving credentials may call STS, IMDS or an SSO endpoint.
	mintTimeout = 30 * time.Second
)

// Options configure a TokenSource.
type Options struct {
	// ClusterName is the EKS cluster the tokens are for (KUBE_CLUSTER_NAME).
	ClusterName string
	// Region selects the regional STS endpoint that signs and later checks the token; empty means
	// AWSConfig.Region.
	Region string
	// AWSConfig supplies credentials and endpoints: in production from LoadAWSConfig (the SDK's
	// default chain); tests pass static credentials and a BaseEndpoint pointing at httptest.
	AWSConfig aws.Config
	// Now is the clock for signing and expiry; nil means time.Now.
	Now func() time.Time
	// RefreshBefore is how long before a token's end of use a new one is made; zero means
	// DefaultRefreshBefore.
	RefreshBefore time.Duration
}

// TokenSource makes EKS bearer tokens and caches each one until it comes within RefreshBefore of
// its end of use. It is safe for concurrent use; concurrent callers that find no usable token
// share one refresh.
type TokenSource struct {
	opts Options
	// refresh is a one-slot semaphore held by the goroutine making a new token, so that waiters
	// can give up when their context ends.
	refresh chan struct{}

	mu        sync.Mutex // guards the fields below
	token     string
	refreshAt time.Time
}

// NewTokenSource returns a TokenSource for opts. It does no I/O: credentials are first needed by
// Token.
func NewTokenSource(opts Options) *TokenSource {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RefreshBefore <= 0 {
		opts.RefreshBefore = DefaultRefreshBefore
	}
	if opts.Region == "" {
		opts.Region = opts.AWSConfig.Region
	}
	return &TokenSource{opts: opts, refresh: make(chan struct{}, 1)}
}

// Token returns a bearer token for the cluster: a cached one while it is fresh, otherwise a new
// one made from the current AWS credentials.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	if tok, ok := s.cached(); ok {
		return tok, nil
	}
	select {
	case s.refresh <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("EKS token for cluster %s: %w", s.opts.ClusterName, context.Cause(ctx))
	}
	defer func() { <-s.refresh }()
	if tok, ok := s.cached(); ok { // another caller refreshed while this one waited
		return tok, nil
	}
	tok, expires, err := s.mint(ctx)
	if err != nil {
		return "", fmt.Errorf("EKS token for cluster %s: %w", s.opts.ClusterName, err)
	}
	s.store(tok, expires)
	return tok, nil
}

func (s *TokenSource) cached() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == "" || !s.opts.Now().Before(s.refreshAt) {
		return "", false
	}
	return s.token, true
}

// store caches tok until RefreshBefore ahead of expires. A token that is already inside that
// window (its credentials are about to expire) is used until expires itself, so that callers do
// not make a new token for every request while the credential cache still hands out the old
// credentials.
func (s *TokenSource) store(tok string, expires time.Time) {
	refreshAt := expires.Add(-s.opts.RefreshBefore)
	if !refreshAt.After(s.opts.Now()) {
		refreshAt = expires
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.refreshAt = tok, refreshAt
}

// mint presigns a GetCallerIdentity request and returns the token and the end of its use: 14
// minutes after signing, or earlier when the credentials that signed it expire earlier.
func (s *TokenSource) mint(ctx context.Context) (string, time.Time, error) {
	if s.opts.ClusterName == "" {
		return "", time.Time{}, errors.New("no cluster name")
	}
	if s.opts.Region == "" {
		return "", time.Time{}, errors.New("no AWS region: set AWS_REGION")
	}
	if s.opts.AWSConfig.Credentials == nil {
		return "", time.Time{}, errors.New("no AWS credentials provider")
	}
	ctx, cancel := context.WithTimeout(ctx, mintTimeout)
	defer cancel()
	creds, err := s.opts.AWSConfig.Credentials.Retrieve(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("retrieve AWS credentials: %w", err)
	}
	signedAt := s.opts.Now()
	client := sts.NewFromConfig(s.opts.AWSConfig, func(o *sts.Options) {
		o.Region = s.opts.Region
		// Sign with exactly the credentials whose expiry is known here.
		o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
		o.APIOptions = append(slices.Clone(o.APIOptions),
			smithyhttp.SetHeaderValue(ClusterIDHeader, s.opts.ClusterName),
			// An X-Amz-* header is moved into the query when presigning.
			smithyhttp.SetHeaderValue("X-Amz-Expires", strconv.Itoa(presignExpiresSeconds)),
		)
	})
	presigner := sts.NewPresignClient(client, func(o *sts.PresignOptions) {
		o.Presigner = clockPresigner{signer: v4.NewSigner(), at: signedAt}
	})
	req, err := presigner.PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("presign sts:GetCallerIdentity: %w", err)
	}
	expires := signedAt.Add(tokenLifetime)
	if creds.CanExpire && creds.Expires.Before(expires) {
		expires = creds.Expires
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(req.URL)), expires, nil
}

// clockPresigner signs at a given time instead of the SDK's clock, so that a token's X-Amz-Date
// and the TokenSource's idea of its age come from the same clock (Options.Now).
type clockPresigner struct {
	signer *v4.Signer
	at     time.Time
}

func (p clockPresigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request,
	payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions),
) (string, http.Header, error) {
	return p.signer.PresignHTTP(ctx, creds, r, payloadHash, service, region, p.at, optFns...)
}
