package natsauth

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrNoAuth is returned (wrapped) by Connect for a server that admits clients without
// credentials: anyone who reaches it could publish jobs and forge events.
var ErrNoAuth = errors.New("the NATS server admits clients without credentials")

// Connect connects to url as role r with its credentials — an nkey seed file (NATS_NKEY_FILE) or
// a credentials file (NATS_CREDS_FILE), not both — and its inbox prefix, plus opts. It refuses a
// server that does not require authentication.
func Connect(r Role, url, nkeyFile, credsFile string, opts ...nats.Option) (*nats.Conn, error) {
	auth, err := clientOptions(r, nkeyFile, credsFile)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(auth, opts...)...)
	if errors.Is(err, nats.ErrAuthorization) && nkeyFile == "" && credsFile == "" {
		err = fmt.Errorf("%w (no NATS_NKEY_FILE or NATS_CREDS_FILE is set)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s as %s: %w", url, r, err)
	}
	if !nc.AuthRequired() {
		nc.Close()
		return nil, fmt.Errorf("refusing NATS at %s: %w; configure its users (docs/operations.md, \"NATS identities\")", url, ErrNoAuth)
	}
	if err := probeReplies(nc, r); err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect to NATS at %s as %s: %w", url, r, err)
	}
	return nc, nil
}

// probeReplies checks that the server lets r receive its replies. With another role's seed (the
// gateway's given to a worker) it does not, and every request would wait for its timeout instead.
func probeReplies(nc *nats.Conn, r Role) error {
	sub, err := nc.SubscribeSync(InboxPrefix(r) + ".probe")
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	// The server answers the subscription before the flush's PONG.
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		return err
	}
	if _, err := sub.NextMsg(time.Millisecond); errors.Is(err, nats.ErrPermissionViolation) {
		return fmt.Errorf("the server refuses this identity the %s's replies (%w): is the seed or creds file the %s's?", r, err, r)
	}
	return nil
}

func clientOptions(r Role, nkeyFile, credsFile string) ([]nats.Option, error) {
	opts := []nats.Option{nats.CustomInboxPrefix(InboxPrefix(r)), nats.PermissionErrOnSubscribe(true)}
	switch {
	case nkeyFile != "" && credsFile != "":
		return nil, errors.New("set NATS_NKEY_FILE or NATS_CREDS_FILE, not both")
	case nkeyFile != "":
		if _, err := PublicKey(nkeyFile); err != nil {
			return nil, fmt.Errorf("NATS_NKEY_FILE: %w", err)
		}
		o, err := nats.NkeyOptionFromSeed(nkeyFile)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_FILE %s: %w", nkeyFile, err)
		}
		opts = append(opts, o)
	case credsFile != "":
		if err := checkPrivate("NATS_CREDS_FILE", credsFile); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(credsFile))
	}
	return opts, nil
}
