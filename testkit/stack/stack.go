// Package stack runs Brain the way operators do, for end-to-end tests: real gateway and worker
// binaries, built from this workspace, as separate processes talking to one NATS JetStream server
// on 127.0.0.1, each with its own NATS identity (the gateway's or the worker's nkey seed).
// Processes can be stopped (SIGTERM) or killed (SIGKILL) mid-job.
package stack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backendim/brain/proto/natsauth"
	"github.com/backendim/brain/testkit/natstest"
	"github.com/golang-jwt/jwt/v5"
)

// Secret is the HS256 secret the stack's gateways verify tokens with (tests only).
const Secret = "brain-test-secret-0123456789abcdef0123456789"

// Build compiles bin/gateway, bin/worker and bin/brainctl of the workspace into dir, with the race
// detector when race is true.
func Build(dir string, race bool) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	for _, b := range []string{"gateway", "worker", "brainctl"} {
		args := []string{"build", "-o", filepath.Join(dir, b)}
		if race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./"+b)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", b, err, out)
		}
	}
	return nil
}

// RepoRoot finds the workspace root (the directory holding go.work) above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above the working directory")
		}
		dir = parent
	}
}

// Options shape a stack.
type Options struct {
	BinDir     string            // from Build
	Gateways   int               // default 1
	Workers    int               // default 1
	GatewayEnv map[string]string // on top of the stack's defaults
	WorkerEnv  map[string]string
}

// Stack is a running Brain.
type Stack struct {
	t        testing.TB
	opts     Options
	NATS     *natstest.Server
	Gateways []*Proc
	Workers  []*Proc
}

// Start runs NATS, the gateways and the workers, and waits until every one is ready.
func Start(t testing.TB, o Options) *Stack {
	t.Helper()
	if o.Gateways == 0 {
		o.Gateways = 1
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	s := &Stack{t: t, opts: o, NATS: natstest.Start(t)}
	for range o.Gateways {
		s.AddGateway(t, nil)
	}
	for range o.Workers {
		s.AddWorker(t, nil)
	}
	return s
}

// AddGateway starts one more gateway.
func (s *Stack) AddGateway(t testing.TB, env map[string]string) *Proc {
	t.Helper()
	vars := map[string]string{"AUTH_MODE": "jwt", "AUTH_JWT_SECRET": Secret,
		"LOG_FORMAT": "text", "LOG_LEVEL": "info", "SHUTDOWN_TIMEOUT": "5s"}
	p := s.start(t, "gateway", fmt.Sprintf("gateway-%d", len(s.Gateways)+1),
		merge(s.NATS.Env(natsauth.Gateway), vars, s.opts.GatewayEnv, env))
	s.Gateways = append(s.Gateways, p)
	return p
}

// AddWorker starts one more worker. Workers render only (KUBE_AUTH=none) unless env says otherwise,
// and may fetch from 127.0.0.1 over http.
func (s *Stack) AddWorker(t testing.TB, env map[string]string) *Proc {
	t.Helper()
	name := fmt.Sprintf("worker-%d", len(s.Workers)+1)
	vars := map[string]string{"KUBE_AUTH": "none", "WORKER_ID": name,
		"CACHE_DIR": t.TempDir(), "GIT_ALLOW_HTTP": "true", "GIT_ALLOW_PRIVATE_NETWORKS": "true",
		"LOG_FORMAT": "text", "LOG_LEVEL": "info", "SHUTDOWN_TIMEOUT": "5s"}
	p := s.start(t, "worker", name, merge(s.NATS.Env(natsauth.Worker), vars, s.opts.WorkerEnv, env))
	s.Workers = append(s.Workers, p)
	return p
}

// Token returns a valid token for user.
func (s *Stack) Token(user string) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: user,
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString([]byte(Secret))
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Proc is one gateway or worker process.
type Proc struct {
	Name string
	Addr string // 127.0.0.1:port of LISTEN_ADDR
	cmd  *exec.Cmd
	logs *Buffer
	done chan struct{}
	err  error
}

// WSURL is the gateway's WebSocket URL.
func (p *Proc) WSURL() string { return "ws://" + p.Addr + "/ws" }

// HTTPURL is the base URL of the process's health and metrics server.
func (p *Proc) HTTPURL() string { return "http://" + p.Addr }

// Logs returns what the process has logged so far.
func (p *Proc) Logs() string { return p.logs.String() }

func (s *Stack) start(t testing.TB, bin, name string, env map[string]string) *Proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := s.launch(t, bin, name, env)
		err := p.waitReady(30 * time.Second)
		if err == nil {
			return p
		}
		// Another process may take the port between FreeAddr and the bind: try another one.
		if attempt < 3 && strings.Contains(p.Logs(), "address already in use") {
			continue
		}
		t.Fatalf("%s: %v\n%s", name, err, p.Logs())
	}
}

func (s *Stack) launch(t testing.TB, bin, name string, env map[string]string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Addr: FreeAddr(t), logs: &Buffer{}, done: make(chan struct{})}
	env["LISTEN_ADDR"] = p.Addr
	p.cmd = exec.Command(filepath.Join(s.opts.BinDir, bin))
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- %s log:\n%s", name, p.Logs())
		}
	})
	return p
}

// waitReady waits until the process answers /ready itself: a 200 from another process that took
// the port first (seen with parallel tests on a busy machine) does not count.
func (p *Proc) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.HTTPURL() + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && listens(p.cmd.Process.Pid, p.Addr) {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited: %v", p.err)
		case <-time.After(25 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %s", d)
}

// listens reports whether process pid holds the socket listening on addr (127.0.0.1:port), from
// /proc: its file descriptors against /proc/net/tcp. Without /proc it trusts the answer.
func listens(pid int, addr string) bool {
	_, port, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(port)
	if err != nil {
		return false
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return true
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		if link, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	table, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return true
	}
	want := fmt.Sprintf("0100007F:%04X", n) // 127.0.0.1:port, as the kernel writes it
	for _, line := range strings.Split(string(table), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == want && f[3] == "0A" && inodes[f[9]] { // 0A: LISTEN
			return true
		}
	}
	return false
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to d for a clean exit; it returns the exit error.
func (p *Proc) Stop(d time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.Kill()
		return fmt.Errorf("%s did not stop within %s", p.Name, d)
	}
}

// WaitLog waits until the process logs a line containing substr.
func (p *Proc) WaitLog(ctx context.Context, substr string) error {
	for {
		if strings.Contains(p.Logs(), substr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never logged %q", p.Name, substr)
		case <-p.logs.changed():
		}
	}
}

// Metric returns the value of the first sample of name (with its labels, e.g.
// `brain_worker_jobs_total{result="succeeded"}`) on the process's /metrics, or 0.
func (p *Proc) Metric(t testing.TB, name string) float64 {
	t.Helper()
	resp, err := http.Get(p.HTTPURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var v float64
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Buffer collects a process's output, safe for concurrent use, and signals each write.
type Buffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{}
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	if b == nil {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *Buffer) changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wake == nil {
		b.wake = make(chan struct{})
	}
	return b.wake
}

var _ io.Writer = (*Buffer)(nil)
