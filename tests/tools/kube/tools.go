//go:build tools

// Package tools records the main packages this module builds, so that
// `go mod tidy` keeps everything they need in go.mod and go.sum.
//
// etcd (go.etcd.io/etcd/server/v3 is its main package) is built from this
// module too, at the version Kubernetes' own module graph selects (the one its
// etcd client is released with): one go build then compiles the packages etcd
// and kube-apiserver share (grpc, protobuf, the etcd client) once.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
