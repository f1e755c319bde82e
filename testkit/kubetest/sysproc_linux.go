package kubetest

import "syscall"

// sysProcAttr puts a component in a process group of its own and has the kernel kill it when the
// process that started it dies, so no control plane outlives a crashed test or devstack.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
