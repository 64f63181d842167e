package kho_test

import "syscall"

const (
	errENOENT = syscall.ENOENT
	errEINVAL = syscall.EINVAL
)
