package awstest

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// allowedTokenParams are the only query parameters EKS's authenticator accepts in a token's URL.
var allowedTokenParams = []string{
	"action", "version", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires",
	"x-amz-security-token", "x-amz-signature", "x-amz-signedheaders",
}

// Authenticate does with an EKS bearer token what EKS's authenticator (aws-iam-authenticator)
// does: it checks the token's form, requires the URL inside to be a GetCallerIdentity call on this
// server with the x-k8s-aws-id header signed, sends it with "x-k8s-aws-id: cluster", and returns
// the ARN STS answers with. A token made for another cluster fails STS's signature check.
func (s *Server) Authenticate(ctx context.Context, token, cluster string) (string, error) {
	u, err := tokenURL(token, s.URL)
	if err != nil {
		return "", fmt.Errorf("authenticate: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("authenticate: %w", err)
	}
	req.Header.Set("x-k8s-aws-id", cluster)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("authenticate: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("authenticate: read STS answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e stsErrorResponse
		_ = xml.Unmarshal(body, &e)
		return "", fmt.Errorf("authenticate: STS answered %s: %s: %s", resp.Status, e.Error.Code, e.Error.Message)
	}
	var out getCallerIdentityResponse
	if err := xml.Unmarshal(body, &out); err != nil {
		return "", fmt.Errorf("authenticate: decode STS answer: %w", err)
	}
	return out.Result.Arn, nil
}

// tokenURL decodes token and checks the URL inside as the authenticator does.
func tokenURL(token, stsURL string) (*url.URL, error) {
	enc, ok := strings.CutPrefix(token, "k8s-aws-v1.")
	if !ok {
		return nil, errors.New("token does not start with k8s-aws-v1.")
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("token is not base64url without padding: %w", err)
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		return nil, fmt.Errorf("token holds no URL: %w", err)
	}
	want, err := url.Parse(stsURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != want.Scheme || u.Host != want.Host || u.Path != "/" {
		return nil, fmt.Errorf("token URL %s://%s%s is not this STS endpoint", u.Scheme, u.Host, u.Path)
	}
	q := u.Query()
	for k := range q {
		if !slices.Contains(allowedTokenParams, strings.ToLower(k)) {
			return nil, fmt.Errorf("token URL has unexpected parameter %s", k)
		}
	}
	if q.Get("Action") != "GetCallerIdentity" || q.Get("Version") != "2011-06-15" {
		return nil, fmt.Errorf("token URL is not GetCallerIdentity 2011-06-15: %s", u.RawQuery)
	}
	if !slices.Contains(strings.Split(q.Get("X-Amz-SignedHeaders"), ";"), "x-k8s-aws-id") {
		return nil, errors.New("token URL does not sign x-k8s-aws-id")
	}
	return u, nil
}
