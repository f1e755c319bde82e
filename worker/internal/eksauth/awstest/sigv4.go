package awstest

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDate      = "20060102T150405Z"
	maxSkew      = 5 * time.Minute
	// maxPresignedAge is how long EKS's authenticator accepts a token after its X-Amz-Date,
	// whatever its X-Amz-Expires says.
	maxPresignedAge = 15 * time.Minute
)

// Scope is what a SigV4 signature was made for.
type Scope struct {
	AccessKeyID string
	Date        string // yyyymmdd
	Region      string
	Service     string
	// SignedHeaders lists the signed header names, lower-case and sorted as in the signature.
	SignedHeaders []string
	// SignedAt is X-Amz-Date.
	SignedAt time.Time
	// Presigned tells whether the signature was in the query rather than the Authorization header.
	Presigned bool
}

// VerifySigV4 recomputes the AWS Signature Version 4 of r — from its Authorization header, or from
// the query of a presigned URL — with the secret of the access key it names, and returns what
// the signature covers. body is the request body (nil for none). now judges the signing time:
// header signatures within 5 minutes of it, presigned URLs within 15 minutes after signing.
// secret returns the secret access key of an access key ID, false for an unknown one.
func VerifySigV4(r *http.Request, body []byte, now time.Time, secret func(accessKeyID string) (string, bool)) (Scope, error) {
	sig, err := parseSignature(r)
	if err != nil {
		return Scope{}, err
	}
	key, ok := secret(sig.scope.AccessKeyID)
	if !ok {
		return Scope{}, fmt.Errorf("InvalidClientTokenId: unknown access key %s", sig.scope.AccessKeyID)
	}
	if err := checkTime(sig, now); err != nil {
		return Scope{}, err
	}
	canonical := canonicalRequest(r, sig, body)
	stringToSign := strings.Join([]string{sigAlgorithm, sig.amzDate, sig.credentialScope(), hexSHA256([]byte(canonical))}, "\n")
	want := hex.EncodeToString(hmacSHA256(signingKey(key, sig.scope), stringToSign))
	if !hmac.Equal([]byte(want), []byte(sig.signature)) {
		return Scope{}, fmt.Errorf("SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided; canonical request %q", canonical)
	}
	return sig.scope, nil
}

type signature struct {
	scope     Scope
	amzDate   string
	signature string
	expires   time.Duration
	payload   string // X-Amz-Content-Sha256, when sent
}

func (s signature) credentialScope() string {
	return strings.Join([]string{s.scope.Date, s.scope.Region, s.scope.Service, "aws4_request"}, "/")
}

func parseSignature(r *http.Request) (signature, error) {
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != "" {
		return parsePresigned(q)
	}
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, sigAlgorithm+" ")
	if !ok {
		return signature{}, errors.New("MissingAuthenticationToken: no SigV4 Authorization header or presigned query")
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	s := signature{amzDate: r.Header.Get("X-Amz-Date"), signature: fields["Signature"], payload: r.Header.Get("X-Amz-Content-Sha256")}
	return s, s.fill(fields["Credential"], fields["SignedHeaders"])
}

func parsePresigned(q url.Values) (signature, error) {
	if got := q.Get("X-Amz-Algorithm"); got != sigAlgorithm {
		return signature{}, fmt.Errorf("IncompleteSignature: algorithm %q", got)
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || secs <= 0 {
		return signature{}, fmt.Errorf("AuthorizationQueryParametersError: X-Amz-Expires %q", q.Get("X-Amz-Expires"))
	}
	s := signature{amzDate: q.Get("X-Amz-Date"), signature: q.Get("X-Amz-Signature"), expires: time.Duration(secs) * time.Second}
	s.scope.Presigned = true
	return s, s.fill(q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"))
}

func (s *signature) fill(credential, signedHeaders string) error {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return fmt.Errorf("IncompleteSignature: credential %q", credential)
	}
	s.scope.AccessKeyID, s.scope.Date, s.scope.Region, s.scope.Service = parts[0], parts[1], parts[2], parts[3]
	s.scope.SignedHeaders = strings.Split(signedHeaders, ";")
	if !slices.Contains(s.scope.SignedHeaders, "host") {
		return fmt.Errorf("IncompleteSignature: host is not signed (%q)", signedHeaders)
	}
	t, err := time.Parse(amzDate, s.amzDate)
	if err != nil {
		return fmt.Errorf("IncompleteSignature: X-Amz-Date %q", s.amzDate)
	}
	if t.Format("20060102") != s.scope.Date {
		return fmt.Errorf("SignatureDoesNotMatch: credential date %s is not the day of %s", s.scope.Date, s.amzDate)
	}
	if s.signature == "" {
		return errors.New("IncompleteSignature: no signature")
	}
	s.scope.SignedAt = t
	return nil
}

func checkTime(s signature, now time.Time) error {
	at := s.scope.SignedAt
	if at.After(now.Add(maxSkew)) {
		return fmt.Errorf("SignatureDoesNotMatch: signed in the future (%s)", s.amzDate)
	}
	if !s.scope.Presigned && now.Sub(at) > maxSkew {
		return fmt.Errorf("SignatureDoesNotMatch: signature expired (%s)", s.amzDate)
	}
	if s.scope.Presigned && now.Sub(at) > max(s.expires, maxPresignedAge) {
		return fmt.Errorf("ExpiredToken: presigned URL from %s has expired", s.amzDate)
	}
	return nil
}

func canonicalRequest(r *http.Request, s signature, body []byte) string {
	q := r.URL.Query()
	q.Del("X-Amz-Signature")
	payload := s.payload
	if payload == "" {
		payload = hexSHA256(body)
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	var headers strings.Builder
	for _, name := range s.scope.SignedHeaders {
		headers.WriteString(name + ":" + headerValue(r, name) + "\n")
	}
	return strings.Join([]string{
		r.Method, path, canonicalQuery(q), headers.String(), strings.Join(s.scope.SignedHeaders, ";"), payload,
	}, "\n")
}

func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		return strconv.FormatInt(r.ContentLength, 10)
	}
	values := r.Header.Values(name)
	for i, v := range values {
		values[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(values, ",")
}

// canonicalQuery sorts by key, then value, each URI-encoded as SigV4 defines (RFC 3986
// unreserved characters kept, everything else %XX, space as %20).
func canonicalQuery(q url.Values) string {
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, pair{uriEncode(k), uriEncode(v)})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int { return cmp.Or(strings.Compare(a.k, b.k), strings.Compare(a.v, b.v)) })
	var out strings.Builder
	for i, p := range pairs {
		if i > 0 {
			out.WriteByte('&')
		}
		out.WriteString(p.k + "=" + p.v)
	}
	return out.String()
}

func uriEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func signingKey(secret string, s Scope) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), s.Date)
	k = hmacSHA256(k, s.Region)
	k = hmacSHA256(k, s.Service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
