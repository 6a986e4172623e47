package secret

import (
	"os"
	"strings"
)

// ChildEnv is this process's environment minus the management key, for the
// commands plana runs (deploy targets, notify hooks): they have no business
// with it.
func ChildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PLANA_TOKEN=") {
			env = append(env, kv)
		}
	}
	return env
}
