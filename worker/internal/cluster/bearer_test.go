package cluster

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/backendim/brain/worker/internal/eksauth"
)

func TestBearer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Authorization", r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	creds := func(fail bool) aws.CredentialsProviderFunc {
		return func(context.Context) (aws.Credentials, error) {
			if fail {
				return aws.Credentials{}, errors.New("web identity token file is gone")
			}
			return aws.Credentials{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s"}, nil
		}
	}
	tests := []struct {
		name      string
		failCreds bool
		header    string // Authorization already on the request
		wantAuth  string // prefix of what the server sees
		wantErr   string
	}{
		{name: "adds the token", wantAuth: "Bearer " + eksauth.TokenPrefix},
		{name: "keeps an explicit Authorization", header: "Bearer other", wantAuth: "Bearer other"},
		{name: "token fails", failCreds: true, wantErr: "authenticate to " + strings.TrimPrefix(srv.URL, "http://") +
			": EKS token for cluster c: retrieve AWS credentials: web identity token file is gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := eksauth.NewTokenSource(eksauth.Options{ClusterName: "c", AWSConfig: aws.Config{Region: "eu-west-1", Credentials: creds(tt.failCreds)}})
			client := &http.Client{Transport: &bearer{tokens: ts, next: http.DefaultTransport}}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := client.Do(req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Seen-Authorization"); !strings.HasPrefix(got, tt.wantAuth) {
				t.Errorf("server saw Authorization %q, want prefix %q", got, tt.wantAuth)
			}
			if req.Header.Get("Authorization") != tt.header {
				t.Errorf("the caller's request was modified: %q", req.Header.Get("Authorization"))
			}
		})
	}
}
