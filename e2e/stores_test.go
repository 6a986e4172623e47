package e2e

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/plana-cli/plana/internal/storetest"
)

// storeEnv are the variables that point the secret stores' clients at the
// servers TestStores started: scripts, and the processes they start in the
// background (the automation reading a store), get them.
var storeEnv = []string{
	"KUBECONFIG",
	"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED",
	"SOPS_AGE_KEY_FILE", "SOPS_DIR", "GNUPGHOME", "PASSWORD_STORE_DIR",
}

// TestStores runs testdata/stores/KIND.txtar against each kind's real
// server or tool (internal/storetest): a full rotation to the store, with
// the automation reading the key from the store before every call, then
// another machine with no keyring and none of the first one's state
// finishing it by reading the store back. The stores are started by make
// test-stores (PLANA_REQUIRE_STORES=1, as in CI); without it this test
// skips, so go test ./... does not start a Kubernetes control plane.
func TestStores(t *testing.T) {
	if os.Getenv(storetest.RequireEnv) != "1" {
		t.Skipf("the secret stores run under make test-stores (%s=1)", storetest.RequireEnv)
	}
	for _, kind := range []string{"k8s", "aws-sm", "aws-ssm", "sops", "pass"} {
		t.Run(kind, func(t *testing.T) {
			extra := map[string]string{}
			switch kind {
			case "k8s":
				cluster := storetest.Kubernetes(t, true)
				extra["KUBECONFIG"] = cluster.Kubeconfig(t, storetest.ContextAdmin)
			case "aws-sm", "aws-ssm":
				storetest.Kumo(t)
			case "sops":
				extra["SOPS_DIR"] = storetest.SopsAge(t).Dir
			case "pass":
				storetest.PassStore(t)
			}
			testscript.Run(t, testscript.Params{
				Files: []string{"testdata/stores/" + kind + ".txtar"},
				Setup: func(env *testscript.Env) error {
					if err := setup(env); err != nil {
						return err
					}
					for _, name := range storeEnv {
						if v, ok := extra[name]; ok {
							env.Setenv(name, v)
						} else if v, ok := os.LookupEnv(name); ok {
							env.Setenv(name, v)
						}
					}
					return nil
				},
				Cmds:                commands(),
				Condition:           condition,
				RequireExplicitExec: true,
				Deadline:            deadline(t),
			})
		})
	}
}
