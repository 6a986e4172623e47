package e2e

import (
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// flakySeeds are the --fault-seed values testdata/flaky runs under: each
// draws a different sequence of faults.
var flakySeeds = []int{1, 2, 3}

// TestFlakyServer runs the scripts of testdata/flaky once per fault seed, in
// parallel, with $FAULT_SEED set.
func TestFlakyServer(t *testing.T) {
	for _, seed := range flakySeeds {
		t.Run("seed"+strconv.Itoa(seed), func(t *testing.T) {
			t.Parallel()
			testscript.Run(t, testscript.Params{
				Dir: "testdata/flaky",
				Setup: func(env *testscript.Env) error {
					if err := setup(env); err != nil {
						return err
					}
					env.Setenv("FAULT_SEED", strconv.Itoa(seed))
					// Each seed keeps its management token apart.
					env.Setenv("PLANA_PROFILE", env.Getenv("PLANA_PROFILE")+"-seed"+strconv.Itoa(seed))
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
