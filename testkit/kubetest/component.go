package kubetest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// stopTimeout is how long a component gets to exit after SIGTERM before it is killed.
const stopTimeout = 20 * time.Second

// component is a control-plane process kubetest runs itself: kube-controller-manager,
// kube-scheduler and kwok (envtest runs etcd and kube-apiserver). It runs in a process group of
// its own, so a terminal's Ctrl-C reaches only the program that started it, which stops it in
// order; on Linux it is also killed if that program dies.
type component struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// startComponent starts path with args, writing its output to out.
func startComponent(name, path string, args, env []string, out io.Writer) (*component, error) {
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = SysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (KUBEBUILDER_ASSETS must hold it too, or be unset so that scripts/kube-test-bins.sh builds it): %w", name, err)
	}
	c := &component{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// exited returns an error when the process has already ended, for readiness checks.
func (c *component) exited() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited: %v", c.name, c.err)
	default:
		return nil
	}
}

// stop ends the process: SIGTERM, then SIGKILL after stopTimeout. It may be called more than once.
func (c *component) stop() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", c.name, err)
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = c.cmd.Process.Kill()
	<-c.done
	return fmt.Errorf("stop %s: killed after %s", c.name, stopTimeout)
}
