package eksauth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"

	"github.com/backendim/brain/worker/internal/eksauth"
	"github.com/backendim/brain/worker/internal/eksauth/awstest"
)

const region = "eu-west-1"

var (
	worker = awstest.Identity{
		AccessKeyID: "AKIAWORKEREXAMPLE", SecretAccessKey: "worker/secret/key/EXAMPLE",
		ARN: "arn:aws:iam::123456789012:user/brain-worker",
	}
	irsa = awstest.Identity{
		AccessKeyID: "ASIAIRSAEXAMPLE", SecretAccessKey: "irsa+secret/EXAMPLE", SessionToken: "FwoGZXIvYXdzEXAMPLE//token+=",
		ARN: "arn:aws:sts::123456789012:assumed-role/brain-worker/botocore-session-1",
	}
)

// decodeToken returns the presigned URL inside an EKS token.
func decodeToken(t *testing.T, token string) *url.URL {
	t.Helper()
	enc, ok := strings.CutPrefix(token, eksauth.TokenPrefix)
	if !ok {
		t.Fatalf("token %q does not start with %q", token, eksauth.TokenPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		t.Fatalf("token is not base64url without padding: %v", err)
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		t.Fatalf("token holds no URL: %v", err)
	}
	return u
}

func TestTokenIsSignedCallerIdentityURLForTheCluster(t *testing.T) {
	t.Parallel()
	for _, id := range []awstest.Identity{worker, irsa} {
		t.Run(id.AccessKeyID, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			srv := awstest.NewServer(t, region)
			srv.AddIdentity(id)
			ts := eksauth.NewTokenSource(eksauth.Options{ClusterName: "prod-eu", AWSConfig: srv.Config(id)})
			token, err := ts.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			u := decodeToken(t, token)
			if got, want := u.Scheme+"://"+u.Host+u.Path, srv.URL+"/"; got != want {
				t.Errorf("token URL is %s, want the STS endpoint %s", got, want)
			}
			q := u.Query()
			signedAt, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
			if err != nil {
				t.Fatalf("X-Amz-Date: %v", err)
			}
			want := map[string]string{
				"Action":               "GetCallerIdentity",
				"Version":              "2011-06-15",
				"X-Amz-Algorithm":      "AWS4-HMAC-SHA256",
				"X-Amz-Credential":     id.AccessKeyID + "/" + signedAt.Format("20060102") + "/" + region + "/sts/aws4_request",
				"X-Amz-Expires":        "60",
				"X-Amz-SignedHeaders":  "host;x-k8s-aws-id",
				"X-Amz-Security-Token": id.SessionToken,
			}
			got := map[string]string{}
			for k := range want {
				got[k] = q.Get(k)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("token URL query (-want +got):\n%s", diff)
			}

			// Recompute the signature over the request EKS would send to STS.
			req, err := http.NewRequest(http.MethodGet, u.String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(eksauth.ClusterIDHeader, "prod-eu")
			scope, err := awstest.VerifySigV4(req, nil, time.Now(), func(key string) (string, bool) {
				return id.SecretAccessKey, key == id.AccessKeyID
			})
			if err != nil {
				t.Fatalf("token URL signature: %v", err)
			}
			if diff := cmp.Diff([]string{"host", "x-k8s-aws-id"}, scope.SignedHeaders); diff != "" {
				t.Errorf("signed headers (-want +got):\n%s", diff)
			}

			// As EKS's authenticator: send it to STS with the cluster header.
			arn, err := srv.Authenticate(ctx, token, "prod-eu")
			if err != nil {
				t.Fatal(err)
			}
			if arn != id.ARN {
				t.Errorf("STS says the token is %s, want %s", arn, id.ARN)
			}
			_, err = srv.Authenticate(ctx, token, "prod-us")
			if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
				t.Errorf("token for prod-eu presented to cluster prod-us: err = %v, want SignatureDoesNotMatch", err)
			}
		})
	}
}

func TestTokenUsesRegionalSTSEndpoint(t *testing.T) {
	t.Parallel()
	for _, region := range []string{"eu-west-1", "us-east-1", "ap-southeast-2"} {
		t.Run(region, func(t *testing.T) {
			t.Parallel()
			cfg := aws.Config{
				Region: "us-west-2", // Options.Region wins
				Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s"}, nil
				}),
			}
			ts := eksauth.NewTokenSource(eksauth.Options{ClusterName: "c", Region: region, AWSConfig: cfg})
			token, err := ts.Token(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			u := decodeToken(t, token)
			if got, want := u.Scheme+"://"+u.Host, "https://sts."+region+".amazonaws.com"; got != want {
				t.Errorf("token URL host is %s, want %s", got, want)
			}
			if cred := u.Query().Get("X-Amz-Credential"); !strings.HasSuffix(cred, "/"+region+"/sts/aws4_request") {
				t.Errorf("X-Amz-Credential %s is not scoped to %s/sts", cred, region)
			}
		})
	}
}

// clock is a fake time source safe for concurrent use.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time { return time.Unix(0, c.now.Load()).UTC() }

func (c *clock) Set(start time.Time, d time.Duration) { c.now.Store(start.Add(d).UnixNano()) }

// countPresigns returns SDK API options that count the operations the SDK runs.
func countPresigns(n *atomic.Int64) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countPresigns",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				n.Add(1)
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}

func TestTokenIsCachedUntilCloseToExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		refreshBefore time.Duration
		credsExpireIn time.Duration // 0: long-term credentials
		wantRefreshAt time.Duration // after the first token
	}{
		{name: "default refresh a minute before 14 minutes", wantRefreshAt: 13 * time.Minute},
		{name: "refresh five minutes before", refreshBefore: 5 * time.Minute, wantRefreshAt: 9 * time.Minute},
		{name: "credentials expire first", credsExpireIn: 6 * time.Minute, wantRefreshAt: 5 * time.Minute},
		{name: "credentials about to expire", credsExpireIn: 30 * time.Second, wantRefreshAt: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			start := clk.Now()
			var presigns atomic.Int64
			cfg := aws.Config{
				Region: region,
				Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					c := aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "t"}
					if tt.credsExpireIn > 0 {
						c.CanExpire, c.Expires = true, start.Add(tt.credsExpireIn)
					}
					return c, nil
				}),
				APIOptions: []func(*middleware.Stack) error{countPresigns(&presigns)},
			}
			ts := eksauth.NewTokenSource(eksauth.Options{ClusterName: "c", AWSConfig: cfg, Now: clk.Now, RefreshBefore: tt.refreshBefore})

			first := concurrentTokens(t, ts, 50)
			if n := presigns.Load(); n != 1 {
				t.Fatalf("50 concurrent callers made %d presigned requests, want 1", n)
			}
			clk.Set(start, tt.wantRefreshAt-time.Second)
			if tok := mustToken(t, ts); tok != first {
				t.Errorf("token changed %s after it was made, before its refresh time", tt.wantRefreshAt-time.Second)
			}
			if n := presigns.Load(); n != 1 {
				t.Errorf("%d presigned requests before the refresh time, want 1", n)
			}
			clk.Set(start, tt.wantRefreshAt)
			second := mustToken(t, ts)
			if n := presigns.Load(); n != 2 {
				t.Errorf("%d presigned requests at the refresh time, want 2", n)
			}
			if second == first {
				t.Error("the token was not renewed at its refresh time")
			}
			if got, want := decodeToken(t, second).Query().Get("X-Amz-Date"), clk.Now().Format("20060102T150405Z"); got != want {
				t.Errorf("new token signed at %s, want %s (the Options.Now clock)", got, want)
			}
		})
	}
}

func concurrentTokens(t *testing.T, ts *eksauth.TokenSource, n int) string {
	t.Helper()
	tokens := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { tokens[i], errs[i] = ts.Token(t.Context()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, tok := range tokens {
		if tok != tokens[0] {
			t.Fatalf("caller %d got a different token", i)
		}
	}
	return tokens[0]
}

func mustToken(t *testing.T, ts *eksauth.TokenSource) string {
	t.Helper()
	tok, err := ts.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no EC2 IMDS role found")
	})
	static := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s"}, nil
	})
	tests := []struct {
		name string
		opts eksauth.Options
		want string
	}{
		{"no credentials provider", eksauth.Options{ClusterName: "c", AWSConfig: aws.Config{Region: region}}, "EKS token for cluster c: no AWS credentials provider"},
		{"credentials fail", eksauth.Options{ClusterName: "c", AWSConfig: aws.Config{Region: region, Credentials: failing}}, "EKS token for cluster c: retrieve AWS credentials: no EC2 IMDS role found"},
		{"no region", eksauth.Options{ClusterName: "c", AWSConfig: aws.Config{Credentials: static}}, "EKS token for cluster c: no AWS region: set AWS_REGION"},
		{"no cluster", eksauth.Options{AWSConfig: aws.Config{Region: region, Credentials: static}}, "EKS token for cluster : no cluster name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := eksauth.NewTokenSource(tt.opts).Token(t.Context())
			if err == nil || err.Error() != tt.want {
				t.Errorf("Token() error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTokenWaiterGivesUpWithItsContext(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	slow := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		close(entered)
		select {
		case <-release:
		case <-ctx.Done():
			return aws.Credentials{}, ctx.Err()
		}
		return aws.Credentials{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s"}, nil
	})
	ts := eksauth.NewTokenSource(eksauth.Options{ClusterName: "c", AWSConfig: aws.Config{Region: region, Credentials: slow}})
	done := make(chan error, 1)
	go func() {
		_, err := ts.Token(t.Context())
		done <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := ts.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("waiter with a cancelled context: err = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("the refreshing caller: %v", err)
	}
}
