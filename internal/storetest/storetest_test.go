package storetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionsMatchInstall: storetest looks for each Go-built store where
// scripts/stores/install.sh puts it, under the version it pins.
func TestVersionsMatchInstall(t *testing.T) {
	v, err := Versions()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := moduleRoot()
	script, err := os.ReadFile(filepath.Join(root, "scripts", "stores", "install.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for dir, key := range map[string]string{"kubernetes": "KUBERNETES_VERSION", "kumo": "KUMO_VERSION", "sops": "SOPS_VERSION"} {
		if !strings.HasPrefix(v[key], "v") {
			t.Errorf("scripts/stores/versions: %s is %q, want a version", key, v[key])
		}
		if want := "build " + dir + ` "$` + key + `"`; !strings.Contains(string(script), want) {
			t.Errorf("install.sh does not build %s as storetest looks for it (%s)", dir, want)
		}
	}
}

func TestNewKeyAndAssertNoKeys(t *testing.T) {
	k := NewKey(t)
	if !keyShape.MatchString(k) || len(k) != 54 {
		t.Fatalf("NewKey gave %d characters of the wrong shape", len(k))
	}
	inner := &testing.T{}
	AssertNoKeys(inner, "text", "before "+k+" after")
	if !inner.Failed() {
		t.Error("AssertNoKeys passed text holding a key")
	}
}
