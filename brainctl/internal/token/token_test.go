package token_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/brainctl/internal/token"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func parse(t *testing.T, raw string, key []byte, opts ...jwt.ParserOption) (jwt.RegisteredClaims, error) {
	t.Helper()
	var claims jwt.RegisteredClaims
	opts = append([]jwt.ParserOption{jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()}, opts...)
	_, err := jwt.NewParser(opts...).ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return key, nil })
	return claims, err
}

func TestMintRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		name   string
		claims token.Claims
		opts   []jwt.ParserOption
		want   jwt.RegisteredClaims
	}{
		{
			name:   "subject and expiry",
			claims: token.Claims{User: "dev", TTL: time.Hour},
			want: jwt.RegisteredClaims{Subject: "dev", IssuedAt: jwt.NewNumericDate(now),
				ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))},
		},
		{
			name:   "issuer and audience",
			claims: token.Claims{User: "u_1-A", TTL: 90 * time.Second, Issuer: "brain-dev", Audience: "brain"},
			opts:   []jwt.ParserOption{jwt.WithIssuer("brain-dev"), jwt.WithAudience("brain")},
			want: jwt.RegisteredClaims{Subject: "u_1-A", Issuer: "brain-dev", Audience: jwt.ClaimStrings{"brain"},
				IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(90 * time.Second))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw, err := token.Mint(secret, tt.claims, now)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parse(t, raw, secret, tt.opts...)
			if err != nil {
				t.Fatalf("parse minted token: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMintedTokenFailsVerification(t *testing.T) {
	t.Parallel()
	t.Run("other secret", func(t *testing.T) {
		t.Parallel()
		raw, err := token.Mint(secret, token.Claims{User: "dev", TTL: time.Hour}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parse(t, raw, []byte("another secret of at least 32 bytes!")); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			t.Errorf("parse with another secret: err = %v, want %v", err, jwt.ErrTokenSignatureInvalid)
		}
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		raw, err := token.Mint(secret, token.Claims{User: "dev", TTL: time.Minute}, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parse(t, raw, secret); !errors.Is(err, jwt.ErrTokenExpired) {
			t.Errorf("parse expired token: err = %v, want %v", err, jwt.ErrTokenExpired)
		}
	})
}

func TestMintRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secret  []byte
		claims  token.Claims
		wantErr string
	}{
		{"short secret", []byte("short"), token.Claims{User: "dev", TTL: time.Hour}, "at least 32"},
		{"no user", secret, token.Claims{TTL: time.Hour}, "user \"\""},
		{"user with a dot", secret, token.Claims{User: "a.b", TTL: time.Hour}, "user \"a.b\""},
		{"zero ttl", secret, token.Claims{User: "dev"}, "ttl must be positive"},
		{"negative ttl", secret, token.Claims{User: "dev", TTL: -time.Second}, "ttl must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := token.Mint(tt.secret, tt.claims, time.Now())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Mint: err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
