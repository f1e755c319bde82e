package kubetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// SysProcAttr is how kubetest starts its processes, for programs that start more of their own
// (devstack): in a process group of their own, so that a terminal's Ctrl-C reaches only the
// program, which stops them in order, and killed by the kernel when that program dies.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// diesWithParent returns an executable that runs bin so that the kernel kills it when the process
// that started it dies, for the processes envtest starts (etcd, kube-apiserver), which it starts
// without that option: a script in dir that execs bin under util-linux's setpriv --pdeathsig.
// Without setpriv it returns bin, which then outlives a parent killed with SIGKILL.
func diesWithParent(dir, bin string) (string, error) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return bin, nil
	}
	script := filepath.Join(dir, filepath.Base(bin))
	body := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL -- %s \"$@\"\n", shellQuote(setpriv), shellQuote(bin))
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		return "", fmt.Errorf("wrapper of %s: %w", bin, err)
	}
	return script, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
