package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func writeKey(t *testing.T, pub crypto.PublicKey) (string, []byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, b
}

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.RegisteredClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaPath, rsaPEM := writeKey(t, &rsaKey.PublicKey)
	edPath, _ := writeKey(t, edPub)
	secret := []byte(strings.Repeat("s", 32))
	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	ok := jwt.RegisteredClaims{Subject: "u1", ExpiresAt: exp, Issuer: "chat", Audience: jwt.ClaimStrings{"brain"}}

	hs, err := New(Options{Secrets: [][]byte{secret}, Issuer: "chat", Audience: "brain"})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := New(Options{PublicKeyFile: rsaPath})
	if err != nil {
		t.Fatal(err)
	}
	ed, err := New(Options{PublicKeyFile: edPath})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		v     *Verifier
		token string
		want  string // "" = accepted
	}{
		{"hs256", hs, sign(t, jwt.SigningMethodHS256, secret, ok), ""},
		{"rs256", rs, sign(t, jwt.SigningMethodRS256, rsaKey, ok), ""},
		{"eddsa", ed, sign(t, jwt.SigningMethodEdDSA, edPriv, ok), ""},
		{"wrong issuer", hs, sign(t, jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "u1", ExpiresAt: exp, Issuer: "x", Audience: jwt.ClaimStrings{"brain"}}), "issuer"},
		{"wrong audience", hs, sign(t, jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "u1", ExpiresAt: exp, Issuer: "chat"}), "aud"},
		{"no exp", rs, sign(t, jwt.SigningMethodRS256, rsaKey, jwt.RegisteredClaims{Subject: "u1"}), "exp"},
		{"not yet valid", rs, sign(t, jwt.SigningMethodRS256, rsaKey, jwt.RegisteredClaims{Subject: "u1", ExpiresAt: exp, NotBefore: jwt.NewNumericDate(time.Now().Add(time.Hour))}), "not valid yet"},
		// The classic confusion attack: HS256 signed with the RSA public key's bytes.
		{"alg confusion", rs, sign(t, jwt.SigningMethodHS256, rsaPEM, ok), "signing method"},
		{"rs token to eddsa", ed, sign(t, jwt.SigningMethodRS256, rsaKey, ok), "signing method"},
		{"bad subject", rs, sign(t, jwt.SigningMethodRS256, rsaKey, jwt.RegisteredClaims{Subject: "a/b", ExpiresAt: exp}), "sub"},
		{"garbage", rs, "not.a.jwt", "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := tt.v.Verify(tt.token)
			if tt.want == "" {
				if err != nil || id.UserID != "u1" || id.Expires.IsZero() {
					t.Fatalf("Verify = %+v, %v; want u1", id, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, tt := range []struct {
		name string
		o    Options
		want string
	}{
		{"short secret", Options{Secrets: [][]byte{[]byte(strings.Repeat("k", 40)), []byte("short")}}, "secret 2: must be at least 32 bytes"},
		{"missing file", Options{PublicKeyFile: "/nonexistent.pem"}, "no such file"},
		{"not pem", Options{PublicKeyFile: notPEM}, "no PEM block"},
		{"nothing", Options{}, "no secret"},
	} {
		if _, err := New(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestKeyRotation: during a rotation the gateway holds the old and the new key, and accepts tokens
// signed with either; a token from a key it does not hold is refused.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	claims := jwt.RegisteredClaims{Subject: "u1", ExpiresAt: exp}
	oldSecret, newSecret, otherSecret := []byte(strings.Repeat("o", 32)), []byte(strings.Repeat("n", 32)), []byte(strings.Repeat("x", 32))
	hs, err := New(Options{Secrets: [][]byte{oldSecret, newSecret}})
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, rsaPEM := writeKey(t, &rsaKey.PublicKey)
	_, edPEM := writeKey(t, edPub)
	bundle := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(bundle, append(rsaPEM, edPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	pk, err := New(Options{PublicKeyFile: bundle})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		v     *Verifier
		token string
		ok    bool
	}{
		{"old secret", hs, sign(t, jwt.SigningMethodHS256, oldSecret, claims), true},
		{"new secret", hs, sign(t, jwt.SigningMethodHS256, newSecret, claims), true},
		{"unknown secret", hs, sign(t, jwt.SigningMethodHS256, otherSecret, claims), false},
		{"rsa in bundle", pk, sign(t, jwt.SigningMethodRS256, rsaKey, claims), true},
		{"ed25519 in bundle", pk, sign(t, jwt.SigningMethodEdDSA, edPriv, claims), true},
		{"rsa not in bundle", pk, sign(t, jwt.SigningMethodRS256, otherRSA, claims), false},
	} {
		if _, err := tt.v.Verify(tt.token); (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
