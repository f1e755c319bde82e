package kubetest_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backendim/brain/testkit/kubetest"
)

// TestControlPlaneDiesWithItsParent kills (SIGKILL: no cleanup runs) a process that started a
// full cluster, and checks that every control-plane process it started goes too: a crashed test or
// devstack leaves no etcd, kube-apiserver, controller manager, scheduler or kwok behind.
func TestControlPlaneDiesWithItsParent(t *testing.T) {
	if os.Getenv("KUBETEST_ORPHAN_HELPER") == "1" {
		env, err := kubetest.Launch(kubetest.Options{Cluster: true})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready", env.Admin.Host)
		select {} // until killed
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestControlPlaneDiesWithItsParent$")
	cmd.Env = append(os.Environ(), "KUBETEST_ORPHAN_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		_ = cmd.Process.Kill()
		t.Fatalf("helper: %q, %v", line, err)
	}
	children := childrenOf(t, cmd.Process.Pid) // also its TestMain's API server
	names := map[string]bool{}
	for _, name := range children {
		names[name] = true
	}
	for _, want := range []string{"etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "kwok"} {
		if !names[want] {
			t.Errorf("helper runs %v, want a %s among them", children, want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for pid, name := range children {
		for alive(pid, name) {
			if time.Now().After(deadline) {
				t.Fatalf("%s (pid %d) outlived the process that started it", name, pid)
			}
			time.Sleep(50 * time.Millisecond) // the kernel delivers the signal; nothing to wait on
		}
	}
}

// childrenOf maps the PIDs of pid's children to their program names, from /proc.
func childrenOf(t *testing.T, pid int) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, name, ok := stat(child); ok && ppid == pid {
			out[child] = name
		}
	}
	return out
}

// alive reports whether pid still runs name (and is not a zombie).
func alive(pid int, name string) bool {
	_, got, ok := stat(pid)
	if !ok || got != name {
		return false
	}
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// stat reads a process's parent and executable name.
func stat(pid int) (int, string, bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", false
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, "", false
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 2 {
		return 0, "", false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, s[open+1 : end], err == nil
}
