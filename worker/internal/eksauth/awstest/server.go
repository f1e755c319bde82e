// Package awstest runs an HTTP server that answers like Amazon EKS (DescribeCluster) and AWS STS
// (GetCallerIdentity, also as the presigned GET URL inside an EKS token), checking every request's
// SigV4 signature, scope and time the way AWS does. Tests point aws-sdk-go-v2 at it with Config,
// so the SDK's own serializers, signers and deserializers run against AWS's wire format.
package awstest

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Identity is an AWS principal the server knows, by its access key.
type Identity struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken, when set, must come with every request (X-Amz-Security-Token).
	SessionToken string
	// ARN is what GetCallerIdentity answers, e.g. arn:aws:sts::123456789012:assumed-role/worker/i-1.
	ARN string
	// DenyDescribeCluster makes eks:DescribeCluster answer AccessDeniedException.
	DenyDescribeCluster bool
}

// Cluster is an EKS cluster the server describes.
type Cluster struct {
	Name     string
	Endpoint string // https URL of the API server
	CAPEM    []byte // sent base64-encoded, as EKS does
	Status   string // ACTIVE when empty
}

// Request records one request the server answered.
type Request struct {
	Operation string // DescribeCluster or GetCallerIdentity
	Scope     Scope  // zero when the signature did not verify
	// Cluster is the cluster named by the request: the path of DescribeCluster, the
	// x-k8s-aws-id header of GetCallerIdentity.
	Cluster string
	// Error is the AWS error code answered, empty on success.
	Error string
}

// Server answers EKS and STS requests for one region.
type Server struct {
	// URL is the server's base URL, for aws.Config.BaseEndpoint.
	URL    string
	Region string
	// Now is the server's clock for judging signing times; time.Now unless a test sets it
	// before the first request.
	Now func() time.Time

	mu         sync.Mutex
	identities map[string]Identity
	clusters   map[string]Cluster
	requests   []Request
}

// NewServer starts a server for region on 127.0.0.1; it is closed when the test ends.
func NewServer(t testing.TB, region string) *Server {
	t.Helper()
	s := &Server{Region: region, Now: time.Now, identities: map[string]Identity{}, clusters: map[string]Cluster{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// AddIdentity makes id's access key valid.
func (s *Server) AddIdentity(id Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identities[id.AccessKeyID] = id
}

// AddCluster makes c known to DescribeCluster.
func (s *Server) AddCluster(c Cluster) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clusters[c.Name] = c
}

// Requests returns the requests answered so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Config returns an SDK configuration that signs as id, in the server's region, and sends every
// service's requests to the server.
func (s *Server) Config(id Identity) aws.Config {
	return aws.Config{
		Region:           s.Region,
		Credentials:      credentials.NewStaticCredentialsProvider(id.AccessKeyID, id.SecretAccessKey, id.SessionToken),
		BaseEndpoint:     aws.String(s.URL),
		HTTPClient:       &http.Client{Timeout: 10 * time.Second},
		RetryMaxAttempts: 1,
	}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/clusters/") && r.Method == http.MethodGet:
		s.describeCluster(w, r, body)
	case r.URL.Path == "/" && r.URL.Query().Get("Action") == "GetCallerIdentity":
		s.getCallerIdentity(w, r, body)
	default:
		http.Error(w, "awstest: no such operation: "+r.Method+" "+r.URL.String(), http.StatusNotFound)
	}
}

// authenticate verifies r's signature for service and returns the caller, or the AWS error
// code and message to answer.
func (s *Server) authenticate(r *http.Request, body []byte, service string) (Identity, Scope, string, string) {
	s.mu.Lock()
	ids := s.identities
	s.mu.Unlock()
	scope, err := VerifySigV4(r, body, s.Now(), func(key string) (string, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		id, ok := ids[key]
		return id.SecretAccessKey, ok
	})
	if err != nil {
		code, msg, _ := strings.Cut(err.Error(), ": ")
		return Identity{}, Scope{}, code, msg
	}
	s.mu.Lock()
	id := s.identities[scope.AccessKeyID]
	s.mu.Unlock()
	switch {
	case scope.Region != s.Region:
		return id, Scope{}, "SignatureDoesNotMatch", fmt.Sprintf("credential should be scoped to a valid region, not %q", scope.Region)
	case scope.Service != service:
		return id, Scope{}, "SignatureDoesNotMatch", fmt.Sprintf("credential should be scoped to correct service: %q", service)
	case securityToken(r, scope) != id.SessionToken:
		return id, Scope{}, "InvalidClientTokenId", "the security token included in the request is invalid"
	}
	return id, scope, "", ""
}

func securityToken(r *http.Request, scope Scope) string {
	if scope.Presigned {
		return r.URL.Query().Get("X-Amz-Security-Token")
	}
	return r.Header.Get("X-Amz-Security-Token")
}

func (s *Server) record(req Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
}

// describeCluster answers eks:DescribeCluster (REST-JSON: GET /clusters/{name}).
func (s *Server) describeCluster(w http.ResponseWriter, r *http.Request, body []byte) {
	name := strings.TrimPrefix(r.URL.Path, "/clusters/")
	id, scope, code, msg := s.authenticate(r, body, "eks")
	rec := Request{Operation: "DescribeCluster", Scope: scope, Cluster: name, Error: code}
	s.mu.Lock()
	c, found := s.clusters[name]
	s.mu.Unlock()
	switch {
	case code != "":
		rec.Error = restJSONCode(code)
		writeJSONError(w, http.StatusForbidden, rec.Error, msg)
	case id.DenyDescribeCluster:
		rec.Error = "AccessDeniedException"
		writeJSONError(w, http.StatusForbidden, rec.Error, fmt.Sprintf(
			"User: %s is not authorized to perform: eks:DescribeCluster on resource: %s", id.ARN, s.clusterARN(name)))
	case !found:
		rec.Error = "ResourceNotFoundException"
		writeJSONError(w, http.StatusNotFound, rec.Error, fmt.Sprintf("No cluster found for name: %s.", name))
	default:
		s.writeCluster(w, c)
	}
	s.record(rec)
}

// restJSONCode turns an authentication error code into the one REST-JSON services such as EKS
// answer with.
func restJSONCode(code string) string {
	switch code {
	case "SignatureDoesNotMatch", "IncompleteSignature":
		return "InvalidSignatureException"
	case "InvalidClientTokenId", "MissingAuthenticationToken":
		return "UnrecognizedClientException"
	}
	return code
}

func (s *Server) clusterARN(name string) string {
	return fmt.Sprintf("arn:aws:eks:%s:123456789012:cluster/%s", s.Region, name)
}

func (s *Server) writeCluster(w http.ResponseWriter, c Cluster) {
	status := c.Status
	if status == "" {
		status = "ACTIVE"
	}
	cluster := map[string]any{
		"name":            c.Name,
		"arn":             s.clusterARN(c.Name),
		"createdAt":       1.7e9,
		"version":         "1.33",
		"status":          status,
		"platformVersion": "eks.5",
		"roleArn":         "arn:aws:iam::123456789012:role/eks-cluster",
	}
	if c.Endpoint != "" {
		cluster["endpoint"] = c.Endpoint
	}
	if c.CAPEM != nil {
		cluster["certificateAuthority"] = map[string]string{"data": base64.StdEncoding.EncodeToString(c.CAPEM)}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-RequestId", requestID)
	_ = json.NewEncoder(w).Encode(map[string]any{"cluster": cluster})
}

// writeJSONError answers a REST-JSON error as EKS does: the type in x-amzn-ErrorType, the message
// in the body.
func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-RequestId", requestID)
	w.Header().Set("x-amzn-ErrorType", code+":http://internal.amazon.com/coral/com.amazonaws.eks/")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// getCallerIdentity answers sts:GetCallerIdentity (AWS query protocol, XML answer).
func (s *Server) getCallerIdentity(w http.ResponseWriter, r *http.Request, body []byte) {
	id, scope, code, msg := s.authenticate(r, body, "sts")
	s.record(Request{Operation: "GetCallerIdentity", Scope: scope, Cluster: r.Header.Get("x-k8s-aws-id"), Error: code})
	w.Header().Set("Content-Type", "text/xml")
	if code != "" {
		w.WriteHeader(http.StatusForbidden)
		_ = xml.NewEncoder(w).Encode(stsErrorResponse{Error: stsError{Type: "Sender", Code: code, Message: msg}, RequestID: requestID})
		return
	}
	account := strings.Split(id.ARN, ":")
	resp := getCallerIdentityResponse{RequestID: requestID}
	resp.Result.Arn, resp.Result.UserID = id.ARN, "AROAEXAMPLE:"+id.AccessKeyID
	if len(account) > 4 {
		resp.Result.Account = account[4]
	}
	_ = xml.NewEncoder(w).Encode(resp)
}

const requestID = "4a3f9c2e-0000-4000-8000-000000000000"

type getCallerIdentityResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type stsErrorResponse struct {
	XMLName   xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Error     stsError `xml:"Error"`
	RequestID string   `xml:"RequestId"`
}

type stsError struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}
