//go:build !linux

package kubetest

import "syscall"

// sysProcAttr puts a component in a process group of its own.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
