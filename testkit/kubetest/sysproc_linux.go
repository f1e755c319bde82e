package kubetest

import "syscall"

// SysProcAttr is how kubetest starts its processes, for programs that start more of their own
// (devstack): in a process group of their own, so that a terminal's Ctrl-C reaches only the
// program, which stops them in order, and killed by the kernel when that program dies.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
