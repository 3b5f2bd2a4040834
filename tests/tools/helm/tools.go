//go:build tools

// Package tools records the main package this module builds (helm v3), so
// that `go mod tidy` keeps everything it needs in go.mod and go.sum.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
