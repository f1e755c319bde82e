package awstest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The "get-vanilla" case of AWS's published SigV4 test suite.
const (
	vectorKey    = "AKIDEXAMPLE"
	vectorSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	vectorAuth   = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, " +
		"SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
)

func TestVerifySigV4AgainstAWSTestSuite(t *testing.T) {
	t.Parallel()
	signedAt := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	secret := func(key string) (string, bool) { return vectorSecret, key == vectorKey }
	tests := []struct {
		name    string
		edit    func(r *http.Request)
		now     time.Time
		wantErr string
	}{
		{name: "vanilla", now: signedAt},
		{name: "other host", edit: func(r *http.Request) { r.Host = "example.amazonaws.net" }, now: signedAt, wantErr: "SignatureDoesNotMatch"},
		{name: "added query", edit: func(r *http.Request) { r.URL.RawQuery = "a=b" }, now: signedAt, wantErr: "SignatureDoesNotMatch"},
		{name: "other secret", edit: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(vectorAuth, "AKIDEXAMPLE", "AKIDOTHER", 1))
		}, now: signedAt, wantErr: "InvalidClientTokenId"},
		{name: "too old", now: signedAt.Add(6 * time.Minute), wantErr: "signature expired"},
		{name: "from the future", now: signedAt.Add(-6 * time.Minute), wantErr: "signed in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := http.NewRequest(http.MethodGet, "https://example.amazonaws.com/", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("X-Amz-Date", "20150830T123600Z")
			r.Header.Set("Authorization", vectorAuth)
			if tt.edit != nil {
				tt.edit(r)
			}
			scope, err := VerifySigV4(r, nil, tt.now, secret)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if scope.Region != "us-east-1" || scope.Service != "service" || !scope.SignedAt.Equal(signedAt) {
				t.Errorf("scope = %+v", scope)
			}
		})
	}
}
