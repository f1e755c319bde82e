// Package auth authenticates WebSocket clients with JSON Web Tokens: HS256 with a shared secret, or
// RS256 / EdDSA with a public key. The token's sub claim is the user ID.
package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/golang-jwt/jwt/v5"
)

// Identity is an authenticated client.
type Identity struct {
	UserID  string
	Expires time.Time // zero when AUTH_MODE=none
}

// Verifier checks tokens. A nil *Verifier is AUTH_MODE=none: every client is trusted and the user ID
// comes from each message.
type Verifier struct {
	key     any
	parser  *jwt.Parser
	leeway  time.Duration
	methods []string
}

// Options configure a Verifier.
type Options struct {
	Secret        []byte // HS256
	PublicKeyFile string // RS256 (RSA key) or EdDSA (Ed25519 key), PEM
	Issuer        string
	Audience      string
}

// ErrNoToken is returned when a request carries no token.
var ErrNoToken = errors.New("no token: send Authorization: Bearer <jwt> or ?access_token=<jwt>")

// New returns a Verifier for the given key material.
func New(o Options) (*Verifier, error) {
	v := &Verifier{leeway: 30 * time.Second}
	switch {
	case len(o.Secret) > 0:
		if len(o.Secret) < 32 {
			return nil, errors.New("jwt secret: must be at least 32 bytes")
		}
		v.key, v.methods = o.Secret, []string{"HS256"}
	case o.PublicKeyFile != "":
		key, methods, err := loadPublicKey(o.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		v.key, v.methods = key, methods
	default:
		return nil, errors.New("jwt: no secret or public key configured")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(v.methods), jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.leeway)}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

func loadPublicKey(path string) (crypto.PublicKey, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("jwt public key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, nil, fmt.Errorf("jwt public key %s: no PEM block", path)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("jwt public key %s: %w", path, err)
	}
	switch key.(type) {
	case *rsa.PublicKey:
		return key, []string{"RS256"}, nil
	case ed25519.PublicKey:
		return key, []string{"EdDSA"}, nil
	}
	return nil, nil, fmt.Errorf("jwt public key %s: %T is not an RSA or Ed25519 key", path, key)
}

// Authenticate verifies the request's token.
func (v *Verifier) Authenticate(r *http.Request) (Identity, error) {
	if v == nil {
		return Identity{}, nil
	}
	raw := tokenOf(r)
	if raw == "" {
		return Identity{}, ErrNoToken
	}
	return v.Verify(raw)
}

// Verify checks one token string.
func (v *Verifier) Verify(raw string) (Identity, error) {
	var claims jwt.RegisteredClaims
	if _, err := v.parser.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return v.key, nil }); err != nil {
		return Identity{}, fmt.Errorf("invalid token: %w", err)
	}
	if !proto.ValidID(claims.Subject) {
		return Identity{}, errors.New("invalid token: sub must be a user ID of 1 to 64 characters of A-Z a-z 0-9 _ -")
	}
	return Identity{UserID: claims.Subject, Expires: claims.ExpiresAt.Time.Add(v.leeway)}, nil
}

func tokenOf(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	return r.URL.Query().Get("access_token")
}
