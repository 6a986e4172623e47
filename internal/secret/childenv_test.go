package secret

import (
	"slices"
	"testing"
)

func TestChildEnvLeavesOutTheManagementKey(t *testing.T) {
	t.Setenv("PLANA_TOKEN", "pa_test_not-a-real-key")
	t.Setenv("PLANA_TOKEN_HINT", "kept")
	env := ChildEnv()
	if slices.Contains(env, "PLANA_TOKEN=pa_test_not-a-real-key") {
		t.Error("a child would see the management key")
	}
	if !slices.Contains(env, "PLANA_TOKEN_HINT=kept") {
		t.Error("a variable merely starting like it was dropped")
	}
}
