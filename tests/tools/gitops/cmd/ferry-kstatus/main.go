// Command ferry-kstatus computes the kstatus of one Kubernetes object, the
// status Flux (kustomize-controller, helm-controller) and `kubectl wait`-style
// tools derive from a resource, with sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute,
// and prints it as JSON:
//
//	ferry-kstatus -object obj.json
//	{"status":"Current","message":"Resource is Ready"}
//
// The object is JSON or YAML, from a file or standard input (-object -, the
// default). Status is one of InProgress, Failed, Current, Terminating,
// NotFound, Unknown. Exit 0 when a status was computed, 1 when Compute fails,
// 2 on a usage error.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	log := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "ferry-kstatus: "+format+"\n", args...)
	}
	fs := flag.NewFlagSet("ferry-kstatus", flag.ContinueOnError)
	object := fs.String("object", "-", "path of the Kubernetes object, JSON or YAML; - reads standard input")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: ferry-kstatus [-object obj.json|-]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() != 0 {
		fs.Usage()
		os.Exit(2)
	}

	var data []byte
	var err error
	if *object == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(*object)
	}
	if err != nil {
		log("%v", err)
		os.Exit(2)
	}
	if data, err = yaml.YAMLToJSON(data); err != nil {
		log("%s: %v", *object, err)
		os.Exit(2)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		log("%s: not a Kubernetes object: %v", *object, err)
		os.Exit(2)
	}

	res, err := status.Compute(u)
	if err != nil {
		log("%s: %v", *object, err)
		os.Exit(1)
	}
	out, _ := json.Marshal(result{Status: res.Status.String(), Message: res.Message})
	fmt.Println(string(out))
}
