//go:build !linux

package kubetest

import "syscall"

// SysProcAttr is how kubetest starts its processes: in a process group of their own.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// diesWithParent returns bin: only Linux can tie a process's life to its parent's.
func diesWithParent(_, bin string) (string, error) { return bin, nil }
