// ferry-pause is the sandbox ("pause") process of the test node's pods: it holds the pod's
// namespaces and does nothing else until it is asked to stop. It replaces
// registry.k8s.io/pause, which cannot be pulled here; hack/image.sh puts it, static, into a
// FROM scratch image (ferry.test/pause) that containerd's CRI uses as sandbox_image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	// As registry.k8s.io/pause does: reap the zombies of the pod's PID namespace when it is shared.
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			os.Exit(0)
		case <-children:
			for {
				var status syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
