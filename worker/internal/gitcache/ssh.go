package gitcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/backendim/brain/proto"
)

// SSH settings.
const (
	// sshConnectTimeout bounds the TCP connection and the SSH handshake.
	sshConnectTimeout = 30 * time.Second
	// sshDefaultUser is the user of ssh:// URLs that name none, as git hosts expect.
	sshDefaultUser = "git"
	// maxStderr bounds what is kept of the server's stderr.
	maxStderr = 4 << 10
)

// sshIdentity is the worker's SSH key and the host keys it trusts.
type sshIdentity struct {
	signer     ssh.Signer
	hostKeys   ssh.HostKeyCallback
	algorithms func(hostPort string) []string
}

// loadSSHIdentity reads the private key in keyFile (unencrypted; not readable by others nor
// writable by its group) and the known_hosts file knownHostsFile, which must exist: host keys are
// always verified.
func loadSSHIdentity(keyFile, knownHostsFile string) (*sshIdentity, error) {
	if knownHostsFile == "" {
		return nil, errors.New("load ssh key: a known_hosts file is required with an SSH key (GIT_SSH_KNOWN_HOSTS)")
	}
	info, err := os.Stat(keyFile)
	if err != nil {
		return nil, fmt.Errorf("load ssh key: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o027 != 0 {
		return nil, fmt.Errorf("load ssh key: %s is open to others (mode %04o); run chmod 600 %s", keyFile, perm, keyFile)
	}
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("load ssh key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("load ssh key %s: %w", keyFile, err)
	}
	if _, err := os.Stat(knownHostsFile); err != nil {
		return nil, fmt.Errorf("load ssh known hosts: %w", err)
	}
	db, err := gitssh.NewKnownHostsDb(knownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("load ssh known hosts %s: %w", knownHostsFile, err)
	}
	return &sshIdentity{signer: signer, hostKeys: db.HostKeyCallback(), algorithms: db.HostKeyAlgorithms}, nil
}

// sshTransport opens upload-pack sessions over SSH for one fetch. Its connections go through
// dial (the URL policy's dialer), end at the fetch's deadline or when ctx ends, and count the
// bytes they read against the fetch's budget. No ssh_config, agent or environment proxy is used.
type sshTransport struct {
	ctx   context.Context
	id    *sshIdentity
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	state *fetchState
}

// NewUploadPackSession connects to ep's host and starts git-upload-pack for ep's path.
func (t *sshTransport) NewUploadPackSession(ep *transport.Endpoint, _ transport.AuthMethod) (transport.UploadPackSession, error) {
	port := ep.Port
	if port <= 0 {
		port = 22
	}
	hostPort := net.JoinHostPort(ep.Host, strconv.Itoa(port))
	client, err := t.connect(hostPort, cmpOr(ep.User, sshDefaultUser))
	if err != nil {
		return nil, err
	}
	s := &sshSession{client: client, command: "git-upload-pack " + shellQuote(ep.Path)}
	if err := s.start(); err != nil {
		_ = client.Close()
		return nil, err
	}
	return s, nil
}

// NewReceivePackSession is not supported: the cache only fetches.
func (t *sshTransport) NewReceivePackSession(*transport.Endpoint, transport.AuthMethod) (transport.ReceivePackSession, error) {
	return nil, errors.New("push is not supported")
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// connect dials hostPort through the policy and completes the SSH handshake, verifying the host
// key against the known_hosts file.
func (t *sshTransport) connect(hostPort, user string) (*ssh.Client, error) {
	auth := &gitssh.PublicKeys{User: user, Signer: t.id.signer, HostKeyCallbackHelper: gitssh.HostKeyCallbackHelper{
		HostKeyCallback: t.id.hostKeys, HostKeyAlgorithms: t.id.algorithms(hostPort)}}
	cfg, err := auth.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = sshConnectTimeout
	dctx, cancel := context.WithTimeout(t.ctx, sshConnectTimeout)
	defer cancel()
	conn, err := t.dial(dctx, "tcp", hostPort)
	if err != nil {
		var pe *proto.Error
		if errors.As(err, &pe) {
			t.state.refuse(pe)
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	deadline, _ := t.ctx.Deadline()
	handshakeEnd := time.Now().Add(sshConnectTimeout)
	if deadline.IsZero() || handshakeEnd.Before(deadline) {
		_ = conn.SetDeadline(handshakeEnd)
	} else {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(t.ctx, func() { _ = conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(&countingConn{Conn: conn, state: t.state}, hostPort, cfg)
	if err != nil {
		stop()
		_ = conn.Close()
		return nil, handshakeError(hostPort, err)
	}
	_ = conn.SetDeadline(deadline) // the zero time when ctx has none: the fetch's ctx still ends it
	return ssh.NewClient(cc, chans, reqs), nil
}

// handshakeError names what went wrong in an SSH handshake in terms the operator can act on.
func handshakeError(hostPort string, err error) error {
	var ke *knownhosts.KeyError
	switch {
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return proto.Errorf(proto.CodeURLRefused, "the SSH host key of %s is not in the worker's known_hosts file; ask the operator to add it to GIT_SSH_KNOWN_HOSTS", hostPort)
	case errors.As(err, &ke):
		return proto.Errorf(proto.CodeURLRefused, "the SSH host key of %s does not match the worker's known_hosts file (GIT_SSH_KNOWN_HOSTS); the connection was refused, ask the operator to check the host key", hostPort)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return proto.Errorf(proto.CodeRepoAuthFailed, "%s refused the worker's SSH key; ask the operator to give the key in GIT_SSH_KEY_FILE read access to the repository", hostPort)
	}
	return fmt.Errorf("ssh handshake with %s: %w", hostPort, err)
}

// countingConn counts the bytes read against the fetch's budget and fails once it is exceeded.
type countingConn struct {
	net.Conn
	state *fetchState
}

func (c *countingConn) Read(p []byte) (int, error) {
	if c.state.tooLarge.Load() {
		return 0, errTooLarge
	}
	n, err := c.Conn.Read(p)
	if c.state.read.Add(int64(n)) > c.state.limit {
		c.state.tooLarge.Store(true)
		return n, errTooLarge
	}
	return n, err
}

// shellQuote quotes s for the remote shell as git does: in single quotes, with each ' as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sshSession is an upload-pack session over one SSH connection. git-upload-pack over SSH serves
// one request, so every UploadPack after the first runs a new git-upload-pack on the same
// connection.
type sshSession struct {
	client  *ssh.Client
	command string

	sess    *ssh.Session
	stdin   io.WriteCloser
	stdout  io.Reader
	stderr  *limitedBuffer
	used    bool // sess has served an upload-pack request
	advRefs *packp.AdvRefs
}

// start runs git-upload-pack in a new SSH session.
func (s *sshSession) start() error {
	if s.sess != nil {
		_ = s.sess.Close()
	}
	sess, err := s.client.NewSession()
	if err != nil {
		return fmt.Errorf("open ssh session: %w", err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return err
	}
	s.stderr = &limitedBuffer{max: maxStderr}
	sess.Stderr = s.stderr
	if err := sess.Start(s.command); err != nil {
		return fmt.Errorf("start git-upload-pack: %w", err)
	}
	s.sess, s.stdin, s.stdout, s.used = sess, stdin, stdout, false
	return nil
}

// AdvertisedReferences returns the server's references.
func (s *sshSession) AdvertisedReferences() (*packp.AdvRefs, error) {
	return s.AdvertisedReferencesContext(context.Background())
}

// AdvertisedReferencesContext returns the server's references. The connection's deadline and the
// fetch's context bound the read.
func (s *sshSession) AdvertisedReferencesContext(context.Context) (*packp.AdvRefs, error) {
	if s.advRefs != nil {
		return s.advRefs, nil
	}
	ar, err := s.readAdvRefs()
	if err != nil {
		return nil, err
	}
	s.advRefs = ar
	return ar, nil
}

func (s *sshSession) readAdvRefs() (*packp.AdvRefs, error) {
	ar := packp.NewAdvRefs()
	err := ar.Decode(s.stdout)
	var errLine *pktline.ErrorLine
	switch {
	case errors.As(err, &errLine):
		if repoNotFound(errLine.Text) {
			return nil, transport.ErrRepositoryNotFound
		}
		return nil, errLine
	case errors.Is(err, packp.ErrEmptyInput):
		_ = s.sess.Wait() // the server has exited; its stderr says why
		msg := s.stderr.firstLine()
		if repoNotFound(msg) {
			return nil, transport.ErrRepositoryNotFound
		}
		if msg != "" {
			return nil, fmt.Errorf("server: %s", msg)
		}
		return nil, io.ErrUnexpectedEOF
	case errors.Is(err, packp.ErrEmptyAdvRefs):
		return nil, transport.ErrEmptyRemoteRepository
	case err != nil:
		return nil, err
	case ar.IsEmpty():
		return nil, transport.ErrEmptyRemoteRepository
	}
	transport.FilterUnsupportedCapabilities(ar.Capabilities)
	return ar, nil
}

// repoNotFound reports whether a server's message says the repository does not exist (or is not
// visible to this key, which git hosts word the same way).
func repoNotFound(msg string) bool {
	msg = strings.ToLower(msg)
	for _, s := range []string{"repository not found", "does not appear to be a git repository",
		"does not exist", "no such repository", "could not be found", "access denied"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// UploadPack sends req and returns the server's response, whose pack is read from the connection.
func (s *sshSession) UploadPack(ctx context.Context, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	if req.IsEmpty() {
		return nil, transport.ErrEmptyUploadPackRequest
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if _, err := s.AdvertisedReferencesContext(ctx); err != nil {
		return nil, err
	}
	if s.used {
		if err := s.start(); err != nil {
			return nil, err
		}
		if _, err := s.readAdvRefs(); err != nil {
			return nil, err
		}
	}
	s.used = true
	if err := req.UploadRequest.Encode(s.stdin); err != nil {
		return nil, fmt.Errorf("send wants: %w", err)
	}
	if err := req.UploadHaves.Encode(s.stdin, true); err != nil {
		return nil, fmt.Errorf("send haves: %w", err)
	}
	if err := pktline.NewEncoder(s.stdin).Encodef("done\n"); err != nil {
		return nil, fmt.Errorf("send done: %w", err)
	}
	if err := s.stdin.Close(); err != nil {
		return nil, fmt.Errorf("send done: %w", err)
	}
	resp := packp.NewUploadPackResponse(req)
	if err := resp.Decode(io.NopCloser(s.stdout)); err != nil {
		if msg := s.stderr.firstLine(); msg != "" {
			return nil, fmt.Errorf("read response: %w (server: %s)", err, msg)
		}
		return nil, fmt.Errorf("read response: %w", err)
	}
	return resp, nil
}

// Close ends the session and the connection.
func (s *sshSession) Close() error {
	if s.sess != nil && !s.used {
		_, _ = s.stdin.Write(pktline.FlushPkt) // a clean goodbye before any request
	}
	if s.sess != nil {
		_ = s.sess.Close()
	}
	err := s.client.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// limitedBuffer keeps the first max bytes written to it. It is safe for concurrent use.
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// firstLine returns the first non-empty line written, trimmed.
func (b *limitedBuffer) firstLine() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, line := range strings.Split(b.buf.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}
