// Package token mints the HS256 JSON Web Tokens a Brain gateway running with AUTH_MODE=jwt and
// AUTH_JWT_SECRET accepts, for development and tests.
package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the shortest HS256 secret a gateway accepts.
const MinSecretLen = 32

// Claims are what a minted token says.
type Claims struct {
	User     string        // sub: the user ID the gateway takes from the token
	TTL      time.Duration // exp = now + TTL
	Issuer   string        // iss, when the gateway checks it
	Audience string        // aud, when the gateway checks it
}

// Mint returns an HS256 token signed with secret, issued at now.
func Mint(secret []byte, c Claims, now time.Time) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("secret is %d bytes: the gateway needs at least %d", len(secret), MinSecretLen)
	}
	if !proto.ValidID(c.User) {
		return "", fmt.Errorf("user %q: must be 1 to %d characters of A-Z a-z 0-9 _ -", c.User, proto.MaxIDLen)
	}
	if c.TTL <= 0 {
		return "", errors.New("ttl must be positive")
	}
	now = now.Truncate(time.Second)
	claims := jwt.RegisteredClaims{
		Subject:   c.User,
		Issuer:    c.Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(c.TTL)),
	}
	if c.Audience != "" {
		claims.Audience = jwt.ClaimStrings{c.Audience}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}
