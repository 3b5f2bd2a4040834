//go:build tools

// Package tools records the main package this module builds (etcd 3.6), so
// that `go mod tidy` keeps everything it needs in go.mod and go.sum.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
