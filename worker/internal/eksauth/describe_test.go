package eksauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backendim/brain/worker/internal/eksauth"
	"github.com/backendim/brain/worker/internal/eksauth/awstest"
)

// testCAPEM is a self-signed certificate in PEM, as EKS returns a cluster's CA.
func testCAPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubernetes"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestDescribeCluster(t *testing.T) {
	t.Parallel()
	ca := testCAPEM(t)
	denied := awstest.Identity{AccessKeyID: "AKIADENIEDEXAMPLE", SecretAccessKey: "d", ARN: "arn:aws:iam::123456789012:user/intern", DenyDescribeCluster: true}
	wrongSecret := worker
	wrongSecret.SecretAccessKey = "not-the-secret"
	tests := []struct {
		name       string
		id         awstest.Identity
		region     string
		cluster    string
		wantErr    string
		wantErrIs  error
		wantRecord string // the error code the server answered
	}{
		{name: "active cluster", id: worker, cluster: "prod-eu"},
		{name: "with session token", id: irsa, cluster: "prod-eu"},
		{name: "unknown cluster", id: worker, cluster: "prod-us", wantErrIs: eksauth.ErrClusterNotFound,
			wantErr: "describe EKS cluster prod-us in eu-west-1: no such EKS cluster (check KUBE_CLUSTER_NAME and AWS_REGION)", wantRecord: "ResourceNotFoundException"},
		{name: "not allowed", id: denied, cluster: "prod-eu",
			wantErr: "the worker's AWS identity needs eks:DescribeCluster on this cluster", wantRecord: "AccessDeniedException"},
		{name: "wrong secret", id: wrongSecret, cluster: "prod-eu", wantErr: "InvalidSignatureException", wantRecord: "InvalidSignatureException"},
		{name: "signed for another region", id: worker, region: "us-west-2", cluster: "prod-eu", wantErr: "InvalidSignatureException", wantRecord: "InvalidSignatureException"},
		{name: "still creating", id: worker, cluster: "new", wantErr: "describe EKS cluster new in eu-west-1: the cluster has no API endpoint yet (status CREATING)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := awstest.NewServer(t, region)
			for _, id := range []awstest.Identity{worker, irsa, denied} {
				srv.AddIdentity(id)
			}
			srv.AddCluster(awstest.Cluster{Name: "prod-eu", Endpoint: "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com", CAPEM: ca})
			srv.AddCluster(awstest.Cluster{Name: "new", Status: "CREATING"})
			cfg := srv.Config(tt.id)
			if tt.region != "" {
				cfg.Region = tt.region
			}

			endpoint, gotCA, err := eksauth.DescribeCluster(t.Context(), cfg, tt.cluster)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs) {
					t.Errorf("err = %v, want errors.Is %v", err, tt.wantErrIs)
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				if endpoint != "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com" {
					t.Errorf("endpoint = %s", endpoint)
				}
				if diff := cmp.Diff(string(ca), string(gotCA)); diff != "" {
					t.Errorf("CA (-want +got):\n%s", diff)
				}
			}

			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Operation != "DescribeCluster" || r.Cluster != tt.cluster || r.Error != tt.wantRecord {
				t.Errorf("server saw %+v, want DescribeCluster of %s answered %q", r, tt.cluster, tt.wantRecord)
			}
			if r.Error == "" || r.Error == "ResourceNotFoundException" || r.Error == "AccessDeniedException" {
				if r.Scope.Service != "eks" || r.Scope.Region != region || r.Scope.AccessKeyID != tt.id.AccessKeyID {
					t.Errorf("signature scope = %+v, want %s/eks signed by %s", r.Scope, region, tt.id.AccessKeyID)
				}
				if !slices.Contains(r.Scope.SignedHeaders, "x-amz-date") {
					t.Errorf("signed headers %v lack x-amz-date", r.Scope.SignedHeaders)
				}
			}
		})
	}
}

func TestDescribeClusterRefusesBadCA(t *testing.T) {
	t.Parallel()
	srv := awstest.NewServer(t, region)
	srv.AddIdentity(worker)
	srv.AddCluster(awstest.Cluster{Name: "c", Endpoint: "https://c.example", CAPEM: []byte("not a certificate")})
	_, _, err := eksauth.DescribeCluster(t.Context(), srv.Config(worker), "c")
	if want := "certificate authority data is not a PEM certificate"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}
