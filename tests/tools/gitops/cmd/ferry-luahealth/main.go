// Command ferry-luahealth runs an Argo CD resource health script (Lua) against
// one Kubernetes object, in the interpreter Argo CD embeds (gopher-lua), set
// up the way Argo CD sets it up, and prints the health it returns as JSON:
//
//	ferry-luahealth -script integrations/argocd/health.lua -object obj.json
//	{"status":"Healthy","message":"..."}
//
// As in Argo CD:
//   - the global `obj` holds the object: JSON objects become tables keyed by
//     name, arrays become tables indexed from 1, numbers, booleans and strings
//     become Lua values of the same kind, and null becomes nil;
//   - the script's return value must be a table; its `status` and `message`
//     fields (strings) are the result;
//   - by default only the libraries Argo CD opens for a health check configured
//     in argocd-cm are there: package, base, table and an os that has only time
//     and date (no string, no math). -open-libs gives every standard library,
//     as Argo CD does for its built-in scripts and for an override that sets
//     resource.customizations.useOpenLibs.<group_Kind>: "true";
//   - the script gets one second to run (-timeout).
//
// Argo CD turns an unknown status into "Unknown"; this checker fails instead,
// so that a test notices. It exits 1 on a Lua error, a return value that is not
// a table, or a status other than Healthy, Progressing, Degraded, Suspended,
// Missing or Unknown; 2 on a usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

var validStatuses = map[string]bool{
	"Healthy":     true,
	"Progressing": true,
	"Degraded":    true,
	"Suspended":   true,
	"Missing":     true,
	"Unknown":     true,
}

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	log := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "ferry-luahealth: "+format+"\n", args...)
	}
	fs := flag.NewFlagSet("ferry-luahealth", flag.ContinueOnError)
	script := fs.String("script", "", "path of the Lua health script (required)")
	object := fs.String("object", "-", "path of the Kubernetes object, JSON or YAML; - reads standard input")
	openLibs := fs.Bool("open-libs", false, "open every standard Lua library (Argo CD's useOpenLibs and built-in scripts)")
	timeout := fs.Duration("timeout", time.Second, "time the script may run (Argo CD gives it 1s)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: ferry-luahealth -script health.lua [-object obj.json|-] [-open-libs] [-timeout 1s]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if *script == "" || fs.NArg() != 0 {
		fs.Usage()
		os.Exit(2)
	}

	source, err := os.ReadFile(*script)
	if err != nil {
		log("%v", err)
		os.Exit(2)
	}
	obj, err := readObject(*object)
	if err != nil {
		log("%v", err)
		os.Exit(2)
	}

	result, err := run(string(source), *script, obj, *openLibs, *timeout)
	if err != nil {
		log("%s: %v", *script, err)
		os.Exit(1)
	}
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
	if !validStatuses[result.Status] {
		log("%s: invalid health status %q (Argo CD would report Unknown: \"Lua returned an invalid health status\")", *script, result.Status)
		os.Exit(1)
	}
}

// readObject reads one Kubernetes object (a JSON or YAML mapping).
func readObject(path string) (map[string]any, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	// YAML is turned into JSON first; JSON goes through unchanged.
	data, err = yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%s: not a Kubernetes object (want a JSON or YAML mapping)", path)
	}
	return obj, nil
}

// run executes the script with `obj` set and returns the table it returned.
func run(source, name string, obj map[string]any, openLibs bool, timeout time.Duration) (*health, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer L.Close()
	if err := openArgoLibs(L); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, obj))

	fn, err := L.Load(strings.NewReader(source), name)
	if err != nil {
		return nil, err
	}
	L.Push(fn)
	if err := L.PCall(0, lua.MultRet, nil); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("did not finish within %s: %v", timeout, err)
		}
		return nil, err
	}

	ret := L.Get(-1)
	table, ok := ret.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	status, err := stringField(table, "status")
	if err != nil {
		return nil, err
	}
	message, err := stringField(table, "message")
	if err != nil {
		return nil, err
	}
	return &health{Status: status, Message: message}, nil
}

// openArgoLibs opens what Argo CD opens on top of the state's own libraries:
// package, base, table, and an os library reduced to time and date (also what
// require("os") gives). On a state made with every library open, os is left
// whole, as it is in Argo CD.
func openArgoLibs(L *lua.LState) error {
	full := L.GetGlobal(lua.OsLibName) != lua.LNil
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, lua.OpenOs},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return fmt.Errorf("opening the %q library: %v", lib.name, err)
		}
	}
	if full {
		return nil
	}
	whole, ok := L.GetGlobal(lua.OsLibName).(*lua.LTable)
	if !ok {
		return errors.New("opening the os library: no os table")
	}
	safe := L.NewTable()
	for _, name := range []string{"time", "date"} {
		safe.RawSetString(name, whole.RawGetString(name))
	}
	L.SetGlobal(lua.OsLibName, safe)
	if loaded, ok := L.GetField(L.Get(lua.RegistryIndex), "_LOADED").(*lua.LTable); ok {
		loaded.RawSetString(lua.OsLibName, safe)
	}
	return nil
}

// stringField reads a string field of the returned table; a missing one is "".
func stringField(t *lua.LTable, key string) (string, error) {
	switch v := t.RawGetString(key).(type) {
	case *lua.LNilType:
		return "", nil
	case lua.LString:
		return string(v), nil
	default:
		return "", fmt.Errorf("the returned table's %s is a %s, not a string", key, v.Type())
	}
}

// toLua converts a value decoded from JSON into a Lua value.
func toLua(L *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(L, item))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for key, item := range v {
			t.RawSetString(key, toLua(L, item))
		}
		return t
	default:
		return lua.LNil
	}
}
