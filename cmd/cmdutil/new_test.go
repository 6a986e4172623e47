package cmdutil

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
)

// The Factory built on the process's environment keeps PLANA_TOKEN for
// itself: the process's environment no longer holds it, so no child sees
// it, whether plana starts it or a library does (the AWS SDK's
// credential_process inherits the process's environment as it is).
func TestFactoryTakesPlanaTokenOutOfTheProcessEnvironment(t *testing.T) {
	tok := client.FormatKey("live", "MGMT0000", strings.Repeat("m", 32))
	t.Setenv("PLANA_TOKEN", tok)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	ios, _, _, _ := iostreams.Test()
	f := New(FactoryOptions{IOStreams: ios, Version: "test",
		Secrets: func() (secret.Store, error) { return secret.NewMemory(), nil }})
	if _, ok := os.LookupEnv("PLANA_TOKEN"); ok {
		t.Fatal("PLANA_TOKEN is still in the process's environment")
	}
	out, err := exec.Command("sh", "-c", `printf %s "${PLANA_TOKEN-unset}"`).Output()
	if err != nil || string(out) != "unset" {
		t.Fatalf("a child process sees PLANA_TOKEN: %q %v", out, err)
	}
	got, err := f.Token()
	if err != nil || got.Source != TokenFromEnv || got.Value() != tok {
		t.Fatalf("the Factory lost the token: source %v, %v", got.Source, err)
	}
	if f.Getenv("PLANA_TOKEN") != tok {
		t.Fatal("the Factory's Getenv lost the token")
	}
}
