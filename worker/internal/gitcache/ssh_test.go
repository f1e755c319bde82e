package gitcache_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/gitserver"
	"github.com/backendim/brain/worker/internal/gitcache"
	"github.com/backendim/brain/worker/internal/urlpolicy"
)

// sshLoopback is the policy for the test SSH server on 127.0.0.1.
var sshLoopback = urlpolicy.Policy{AllowPrivateNetworks: true, AllowSSH: true}

// sshServer is an SSH server on 127.0.0.1 that accepts one client key and runs the real
// `git upload-pack` for exec requests, serving the repositories it was given by URL path.
type sshServer struct {
	addr    string
	hostKey ssh.Signer
	repos   map[string]string // URL path → bare repository directory
}

func newKey(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

func startSSHServer(t *testing.T, authorized ssh.PublicKey, repos map[string]string) *sshServer {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("the SSH test server runs git upload-pack: %v", err)
	}
	hostKey, _ := newKey(t)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(key.Marshal(), authorized.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("key not authorized")
	}}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sshServer{addr: ln.Addr().String(), hostKey: hostKey, repos: repos}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Go(func() { s.serve(t, conn, cfg) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *sshServer) serve(t *testing.T, conn net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return // a refused key or host key ends here
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(t, ch, chReqs)
	}
}

func (s *sshServer) session(t *testing.T, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(false, nil)
			continue
		}
		var msg struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &msg); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		path, ok := strings.CutPrefix(msg.Command, "git-upload-pack '")
		path, ok2 := strings.CutSuffix(path, "'")
		dir := s.repos[path]
		if !ok || !ok2 || dir == "" {
			dir = filepath.Join(t.TempDir(), "missing") // git says it is not a repository
		}
		cmd := exec.Command("git", "upload-pack", dir)
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		// Stdin through a pipe not waited for, as sshd does: the client may keep its side open.
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return
		}
		go func() { _, _ = io.Copy(stdin, ch); _ = stdin.Close() }()
		status := uint32(0)
		if err := cmd.Run(); err != nil {
			status = 128
		}
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

// knownHosts writes a known_hosts file trusting key for addr.
func knownHosts(t *testing.T, addr string, key ssh.PublicKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeKey(t *testing.T, pemBytes []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pemBytes, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

func TestSSHCheckout(t *testing.T) {
	t.Parallel()
	clientKey, clientPEM := newKey(t)
	repo := gitserver.New(t).Repo(t, "app")
	first := repo.Commit(t, "first", map[string]string{"k8s/app.yaml": "kind: ConfigMap\n"})
	srv := startSSHServer(t, clientKey.PublicKey(), map[string]string{"/org/app.git": repo.Dir()})
	keyFile := writeKey(t, clientPEM, 0o600)
	hosts := knownHosts(t, srv.addr, srv.hostKey.PublicKey())
	c, _ := newCache(t, func(o *gitcache.Options) {
		o.Policy, o.SSHKeyFile, o.SSHKnownHostsFile = sshLoopback, keyFile, hosts
	})
	url := "ssh://" + srv.addr + "/org/app.git"

	got := checkout(t, c, url, "main")
	if diff := cmp.Diff(first, got.Hash); diff != "" {
		t.Errorf("commit (-want +got):\n%s", diff)
	}
	content, err := readFile(got, "k8s/app.yaml")
	if err != nil || content != "kind: ConfigMap\n" {
		t.Errorf("k8s/app.yaml = %q, %v", content, err)
	}

	// A second fetch on the same cache entry announces what it has and gets the new commit.
	second := repo.Commit(t, "second", map[string]string{"k8s/app.yaml": "kind: Secret\n"})
	got = checkout(t, c, "ssh://git@"+srv.addr+"/org/app.git", "main")
	if diff := cmp.Diff(second, got.Hash); diff != "" {
		t.Errorf("commit after push (-want +got):\n%s", diff)
	}
	if got.CacheHit {
		t.Error("the fetch of a new commit reports a cache hit")
	}
	checkoutErr(t, c, "ssh://"+srv.addr+"/org/other.git", "main", proto.CodeRepoNotFound)

	// A commit no branch points at takes a second upload-pack request, on the same connection.
	third := repo.Commit(t, "third", map[string]string{"k8s/app.yaml": "kind: Service\n"})
	unreachable := repo.Commit(t, "fourth", map[string]string{"k8s/app.yaml": "kind: Pod\n"})
	repo.Branch(t, "main", third)
	if out, err := exec.Command("git", "-C", repo.Dir(), "config", "uploadpack.allowAnySHA1InWant", "true").CombinedOutput(); err != nil {
		t.Fatalf("git config: %v: %s", err, out)
	}
	got = checkout(t, c, url, unreachable)
	if diff := cmp.Diff(unreachable, got.Hash); diff != "" {
		t.Errorf("commit by SHA (-want +got):\n%s", diff)
	}
}

func TestSSHFailures(t *testing.T) {
	t.Parallel()
	clientKey, clientPEM := newKey(t)
	_, strangerPEM := newKey(t)
	otherHost, _ := newKey(t)
	repo := gitserver.New(t).Repo(t, "app")
	repo.Commit(t, "first", map[string]string{"a": "b"})
	srv := startSSHServer(t, clientKey.PublicKey(), map[string]string{"/app.git": repo.Dir()})
	url := "ssh://" + srv.addr + "/app.git"
	right := knownHosts(t, srv.addr, srv.hostKey.PublicKey())

	tests := []struct {
		name    string
		key     []byte
		hosts   string
		want    proto.Code
		mention []string
	}{
		{"wrong host key", clientPEM, knownHosts(t, srv.addr, otherHost.PublicKey()), proto.CodeURLRefused,
			[]string{"does not match", "GIT_SSH_KNOWN_HOSTS"}},
		{"unknown host", clientPEM, knownHosts(t, "127.0.0.2:22", srv.hostKey.PublicKey()), proto.CodeURLRefused,
			[]string{"not in the worker's known_hosts", "GIT_SSH_KNOWN_HOSTS"}},
		{"key not accepted", strangerPEM, right, proto.CodeRepoAuthFailed, []string{"refused the worker's SSH key", "GIT_SSH_KEY_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keyFile := writeKey(t, tt.key, 0o600)
			c, _ := newCache(t, func(o *gitcache.Options) {
				o.Policy, o.SSHKeyFile, o.SSHKnownHostsFile = sshLoopback, keyFile, tt.hosts
			})
			pe := checkoutErr(t, c, url, "main", tt.want)
			mustContain(t, "message", pe.Message, tt.mention...)
		})
	}
}

func TestSSHSizeLimit(t *testing.T) {
	t.Parallel()
	clientKey, clientPEM := newKey(t)
	repo := gitserver.New(t).Repo(t, "big")
	noise := make([]byte, 1<<20)
	r := mrand.NewChaCha8([32]byte{2})
	_, _ = r.Read(noise)
	repo.Commit(t, "big file", map[string]string{"blob.bin": string(noise)})
	srv := startSSHServer(t, clientKey.PublicKey(), map[string]string{"/big.git": repo.Dir()})
	keyFile := writeKey(t, clientPEM, 0o600)
	hosts := knownHosts(t, srv.addr, srv.hostKey.PublicKey())
	c, _ := newCache(t, func(o *gitcache.Options) {
		o.Policy, o.SSHKeyFile, o.SSHKnownHostsFile, o.MaxFetchBytes = sshLoopback, keyFile, hosts, 64<<10
	})
	pe := checkoutErr(t, c, "ssh://"+srv.addr+"/big.git", "main", proto.CodeRepoTooLarge)
	mustContain(t, "message", pe.Message, "64 KiB")
}

func TestSSHRefusedWithoutKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy urlpolicy.Policy
	}{
		{"policy without ssh", urlpolicy.Policy{AllowPrivateNetworks: true}},
		{"policy with ssh but no key", sshLoopback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newCache(t, func(o *gitcache.Options) { o.Policy = tt.policy })
			pe := checkoutErr(t, c, "ssh://git@127.0.0.1:1/app.git", "main", proto.CodeURLRefused)
			mustContain(t, "message", pe.Message, "ssh")
		})
	}
}

func TestOpenSSHKeyChecks(t *testing.T) {
	t.Parallel()
	_, clientPEM := newKey(t)
	hostKey, _ := newKey(t)
	hosts := knownHosts(t, "git.example.com:22", hostKey.PublicKey())
	tests := []struct {
		name    string
		mode    os.FileMode
		hosts   string
		mention string
	}{
		{"no known_hosts", 0o600, "", "GIT_SSH_KNOWN_HOSTS"},
		{"missing known_hosts", 0o600, filepath.Join(t.TempDir(), "nope"), "known hosts"},
		{"key readable by others", 0o644, hosts, "chmod 600"},
		{"key writable by group", 0o620, hosts, "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := gitcache.Open(gitcache.Options{Dir: t.TempDir(), SSHKeyFile: writeKey(t, clientPEM, tt.mode), SSHKnownHostsFile: tt.hosts})
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("Open error = %v, want one mentioning %q", err, tt.mention)
			}
		})
	}
	if _, err := gitcache.Open(gitcache.Options{Dir: t.TempDir(), SSHKeyFile: writeKey(t, clientPEM, 0o600), SSHKnownHostsFile: hosts}); err != nil {
		t.Errorf("Open with a good key: %v", err)
	}
}
