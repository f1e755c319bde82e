package command

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/backendim/brain/brainctl/internal/token"
)

func mintToken(_ context.Context, e *env, args []string) error {
	var secret, secretFile, user, issuer, audience string
	var ttl time.Duration
	fs := newFlagSet("token", "--secret S | --secret-file F --user U [flags]",
		"Prints an HS256 JSON Web Token with sub=U and an expiry, signed with the secret a gateway running\n"+
			"with AUTH_MODE=jwt and AUTH_JWT_SECRET (or AUTH_JWT_SECRET_FILE) checks. For development and tests:\n"+
			"in production tokens come from your identity provider.")
	fs.StringVar(&secret, "secret", "", "the gateway's HS256 secret (at least 32 bytes)")
	fs.StringVar(&secretFile, "secret-file", "", "file holding the secret; surrounding white space is ignored, as the gateway does")
	fs.StringVar(&user, "user", e.getenv("BRAIN_USER"), "user ID, the token's sub (env BRAIN_USER)")
	fs.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	fs.StringVar(&issuer, "issuer", "", "iss claim, when the gateway checks one")
	fs.StringVar(&audience, "audience", "", "aud claim, when the gateway checks one")
	if err := parse(fs, "token", args, e.stdout); err != nil {
		return err
	}
	if (secret == "") == (secretFile == "") {
		return usageError("token", "give exactly one of --secret and --secret-file")
	}
	if err := required("token", [2]string{"user", user}); err != nil {
		return err
	}
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return usageError("token", "read --secret-file: %v", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	raw, err := token.Mint([]byte(secret), token.Claims{User: user, TTL: ttl, Issuer: issuer, Audience: audience}, time.Now())
	if err != nil {
		return usageError("token", "%v", err)
	}
	fmt.Fprintln(e.stdout, raw)
	return nil
}
