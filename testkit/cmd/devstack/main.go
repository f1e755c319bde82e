// Command devstack is `make run`: a complete local Brain on 127.0.0.1 — the gateway with its
// embedded NATS JetStream server, a worker, the example repository served over HTTP — followed by a
// real deploy of the example with brainctl. It stays up until Ctrl-C and prints how to send more.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/backendim/brain/proto/natsauth"
	"github.com/backendim/brain/proto/natsserver"
	"github.com/backendim/brain/testkit/kubetest"
)

func main() {
	// SIGPIPE too: `make run | tee log` and Ctrl-C ends tee first, and the stack must still stop
	// its processes and clean up, not die on its next write.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

// settings of the local stack; each can be changed with an environment variable.
type settings struct {
	bin, data, example      string
	gatewayAddr, workerAddr string
	gitAddr                 string
}

func load(getenv func(string) string) settings {
	get := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	return settings{bin: get("BRAIN_BIN", "bin"), data: get("BRAIN_DATA", "data/dev"),
		example: get("BRAIN_EXAMPLE", "examples/hello"), gatewayAddr: get("BRAIN_GATEWAY_ADDR", "127.0.0.1:8080"),
		workerAddr: get("BRAIN_WORKER_ADDR", "127.0.0.1:8081"), gitAddr: get("BRAIN_GIT_ADDR", "127.0.0.1:8090")}
}

func run(ctx context.Context, _ []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s := load(getenv)
	if err := os.MkdirAll(s.data, 0o700); err != nil {
		return err
	}
	if err := ensureSecret(filepath.Join(s.data, "jwt-secret")); err != nil {
		return err
	}
	say := func(format string, args ...any) { fmt.Fprintf(stdout, "==> "+format+"\n", args...) }
	logs, err := openLogs(filepath.Join(s.data, "logs"))
	if err != nil {
		return err
	}
	defer logs.close()
	defer say("stopped; the state in %s is kept for the next make run", s.data)
	say("logs of every service: %s/ (gateway.log, worker.log, kube-apiserver.log, kwok.log, …)", logs.dir)

	repoURL, sha, err := serveExample(ctx, s, say)
	if err != nil {
		return err
	}
	cluster, stopCluster, err := clusterEnv(ctx, s, logs, getenv, say)
	if err != nil {
		return err
	}
	defer stopCluster()
	procs := &processes{logs: logs}
	defer procs.stop(say)
	say("starting the gateway on %s (embedded NATS JetStream on 127.0.0.1:4222, store %s, nkey seeds in %s)",
		s.gatewayAddr, filepath.Join(s.data, "nats"), natsserver.SeedDir(filepath.Join(s.data, "nats")))
	if err := procs.start(ctx, "gateway", filepath.Join(s.bin, "gateway"), s.gatewayAddr, map[string]string{
		"LISTEN_ADDR": s.gatewayAddr, "NATS_EMBEDDED": "true", "NATS_STORE_DIR": filepath.Join(s.data, "nats"),
		"AUTH_MODE": "jwt", "AUTH_JWT_SECRET_FILE": filepath.Join(s.data, "jwt-secret"), "LOG_FORMAT": "text"}); err != nil {
		return err
	}
	say("starting a worker (git cache %s; http and 127.0.0.1 repositories allowed for the local example)", filepath.Join(s.data, "cache"))
	seeds := natsserver.SeedDir(filepath.Join(s.data, "nats")) // made by the gateway's embedded server
	workerEnv := map[string]string{"LISTEN_ADDR": s.workerAddr, "NATS_URL": "nats://127.0.0.1:4222",
		"NATS_NKEY_FILE": natsauth.SeedFile(seeds, natsauth.Worker), "CACHE_DIR": filepath.Join(s.data, "cache"),
		"GIT_ALLOW_HTTP": "true", "GIT_ALLOW_PRIVATE_NETWORKS": "true", "LOG_FORMAT": "text", "HEALTH_TIMEOUT": "2m"}
	for k, v := range cluster {
		workerEnv[k] = v
	}
	if err := procs.start(ctx, "worker", filepath.Join(s.bin, "worker"), s.workerAddr, workerEnv); err != nil {
		return err
	}
	token, err := mintToken(ctx, s, "dev")
	if err != nil {
		return err
	}
	url := "ws://" + s.gatewayAddr + "/ws"
	for _, dry := range []bool{true, false} {
		what := "deploy"
		if dry {
			what = "dry run"
		}
		say("%s of %s at %s with brainctl", what, repoURL, sha[:12])
		args := []string{"deploy", "--url", url, "--token", token, "--user", "dev", "--chat", "demo",
			"--repo", repoURL, "--commit", "main", "--dry-run=" + fmt.Sprint(dry)}
		deploy := exec.CommandContext(ctx, filepath.Join(s.bin, "brainctl"), args...)
		deploy.Stdout, deploy.Stderr = stdout, stderr
		if err := deploy.Run(); err != nil {
			if ctx.Err() != nil {
				break
			}
			say("the example %s did not succeed (%v); the stack stays up so you can look", what, err)
		}
	}
	fmt.Fprintf(stdout, `
Brain is running. In another terminal:

  export BRAIN_URL=%s
  export BRAIN_TOKEN=$(%s token --secret-file %s --user dev)
  %s deploy --user dev --chat demo --repo %s --commit main
  %s watch --chat demo
  %s status --chat demo

Health and metrics: http://%s/metrics (gateway), http://%s/metrics (worker).
NATS on nats://127.0.0.1:4222 admits only Brain's nkey users; the nats CLI connects as the admin:

  nats --server nats://127.0.0.1:4222 --nkey %s stream ls

Logs: %s/. Ctrl-C stops everything.
`, url, filepath.Join(s.bin, "brainctl"), filepath.Join(s.data, "jwt-secret"), filepath.Join(s.bin, "brainctl"),
		repoURL, filepath.Join(s.bin, "brainctl"), filepath.Join(s.bin, "brainctl"), s.gatewayAddr, s.workerAddr,
		natsauth.SeedFile(seeds, natsauth.Admin), logs.dir)
	select {
	case <-ctx.Done():
		say("stopping")
		return nil
	case err := <-procs.exited:
		return fmt.Errorf("%w (see %s)", err, logs.dir)
	}
}

// ensureSecret creates the stack's HS256 secret file (0600) on first use.
func ensureSecret(path string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	buf := make([]byte, 32)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails
	return os.WriteFile(path, []byte(hex.EncodeToString(buf)), 0o600)
}

// mintToken asks brainctl for a token of the stack's secret, as a user would.
func mintToken(ctx context.Context, s settings, user string) (string, error) {
	out, err := exec.CommandContext(ctx, filepath.Join(s.bin, "brainctl"), "token", "--secret-file",
		filepath.Join(s.data, "jwt-secret"), "--user", user, "--ttl", "24h").Output()
	if err != nil {
		return "", fmt.Errorf("brainctl token: %w", err)
	}
	return string(trimNL(out)), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// processes are the stack's children; the first to exit ends the stack.
type processes struct {
	logs   *logFiles
	cmds   []*exec.Cmd
	names  []string
	done   []chan struct{} // closed when the process has exited
	exited chan error
}

// start runs bin with env added to this process's environment, its output in its log file, and
// waits until it answers on addr's /ready.
func (p *processes) start(ctx context.Context, name, bin, addr string, env map[string]string) error {
	if p.exited == nil {
		p.exited = make(chan error, 4)
	}
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = p.logs.writer(name), p.logs.writer(name)
	// Its own process group: Ctrl-C reaches devstack only, which stops the worker before the
	// gateway (and its NATS server), so nothing complains about a connection going away.
	cmd.SysProcAttr = kubetest.SysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s (run make build first): %w", bin, err)
	}
	done := make(chan struct{})
	p.cmds, p.names, p.done = append(p.cmds, cmd), append(p.names, name), append(p.done, done)
	go func() {
		err := cmd.Wait()
		close(done)
		p.exited <- fmt.Errorf("%s exited: %v", name, err)
	}()
	return waitReady(ctx, "http://"+addr+"/ready", done)
}

// stopTimeout is how long a process gets to drain after SIGTERM: more than its SHUTDOWN_TIMEOUT.
const stopTimeout = 45 * time.Second

// stop ends the processes, the last started first, each with SIGTERM and time to drain.
func (p *processes) stop(say func(string, ...any)) {
	for i := len(p.cmds) - 1; i >= 0; i-- {
		say("stopping the %s", p.names[i])
		_ = p.cmds[i].Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done[i]:
		case <-time.After(stopTimeout):
			_ = p.cmds[i].Process.Kill()
			<-p.done[i]
		}
	}
}

func waitReady(ctx context.Context, url string, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready: %w", url, ctx.Err())
		case <-done:
			return fmt.Errorf("%s: the process exited before it was ready", url)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
