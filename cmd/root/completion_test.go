package root_test

import (
	"strings"
	"testing"

	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
)

func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	// A line each script must carry to hook into its shell.
	for shell, marker := range map[string]string{
		"bash":       "complete -o default -F __start_plana plana",
		"zsh":        "#compdef plana",
		"fish":       "complete -c plana",
		"powershell": "Register-ArgumentCompleter -CommandName 'plana'",
	} {
		t.Run(shell, func(t *testing.T) {
			if code := run(e, "completion", shell); code != 0 {
				t.Fatalf("exit %d: %s", code, e.ErrOut)
			}
			if !strings.Contains(e.Out.String(), marker) {
				t.Errorf("plana completion %s (%d bytes) lacks %q", shell, e.Out.Len(), marker)
			}
		})
	}
	if code := run(e, "completion", "tcsh"); code != 2 {
		t.Errorf("completion tcsh: exit %d, want 2 (usage)", code)
	}
}
