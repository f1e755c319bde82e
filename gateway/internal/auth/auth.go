// Package auth authenticates WebSocket clients with JSON Web Tokens: HS256 with a shared secret, or
// RS256 / EdDSA with a public key. The token's sub claim is the user ID.
package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
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
	keys    jwt.VerificationKeySet
	parser  *jwt.Parser
	leeway  time.Duration
	methods []string
}

// Options configure a Verifier. Several secrets or keys may be given at once, so a key can be
// rotated without refusing tokens signed with the old one: a token verified by any of them is
// accepted.
type Options struct {
	Secrets       [][]byte // HS256
	PublicKeyFile string   // PEM with one or more public keys: RSA (RS256) and/or Ed25519 (EdDSA)
	Issuer        string
	Audience      string
}

// ErrNoToken is returned when a request carries no token.
var ErrNoToken = errors.New("no token: send Authorization: Bearer <jwt> or ?access_token=<jwt>")

// New returns a Verifier for the given key material.
func New(o Options) (*Verifier, error) {
	v := &Verifier{leeway: 30 * time.Second}
	switch {
	case len(o.Secrets) > 0:
		for i, secret := range o.Secrets {
			if len(secret) < 32 {
				return nil, fmt.Errorf("jwt secret %d: must be at least 32 bytes", i+1)
			}
			v.keys.Keys = append(v.keys.Keys, secret)
		}
		v.methods = []string{"HS256"}
	case o.PublicKeyFile != "":
		keys, methods, err := loadPublicKeys(o.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		v.keys.Keys, v.methods = keys, methods
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

func loadPublicKeys(path string) ([]jwt.VerificationKey, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("jwt public key: %w", err)
	}
	var keys []jwt.VerificationKey
	methods := map[string]bool{}
	for n := 1; ; n++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("jwt public key %s, block %d: %w", path, n, err)
		}
		switch key.(type) {
		case *rsa.PublicKey:
			methods["RS256"] = true
		case ed25519.PublicKey:
			methods["EdDSA"] = true
		default:
			return nil, nil, fmt.Errorf("jwt public key %s, block %d: %T is not an RSA or Ed25519 key", path, n, key)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("jwt public key %s: no PEM block", path)
	}
	return keys, slices.Sorted(maps.Keys(methods)), nil
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
	if _, err := v.parser.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return v.keys, nil }); err != nil {
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
