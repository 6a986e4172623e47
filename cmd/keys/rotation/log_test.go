package rotation_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/ref"
	"github.com/plana-cli/plana/rotate/rotlog"
)

// logWorld is a machine whose rotation log holds three keyed entries about
// the seeded key, and a server whose keys record that key's successor.
func logWorld(t *testing.T) (e *cmdtest.Env, l rotlog.Log, successor client.APIKey) {
	t.Helper()
	e = cmdtest.New(t)
	old, created := e.SeedSuccessor()
	dir, err := e.Factory.StateDir()
	if err != nil {
		t.Fatal(err)
	}
	l = rotate.OpenLog(dir, e.Store, nil)
	for i, ev := range []string{rotlog.EventCreated, rotlog.EventDeployed, rotlog.EventVerified} {
		if _, err := l.Append(rotlog.Entry{Time: e.Emu.Now().Add(time.Duration(i) * time.Minute), Event: ev, Old: ref.Of(*old),
			Reason: "scheduled", Actor: ref.Actor{Email: "ana@example.com", Local: "ana@box"}}); err != nil {
			t.Fatal(err)
		}
	}
	return e, l, created.APIKey
}

// A log whose last entry was cut, its head rewritten to match, is
// reported, and keys log exits 1 so that a cron check notices; the
// server's history is still shown.
func TestKeysLogReportsACutLogAndExits1(t *testing.T) {
	t.Parallel()
	e, l, successor := logWorld(t)
	data, err := os.ReadFile(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
	kept := strings.Join(lines[:2], "")
	var last rotlog.Entry
	json.Unmarshal([]byte(lines[1]), &last)
	os.WriteFile(l.Path, []byte(kept), 0o600)
	os.WriteFile(l.HeadPath(), []byte(`{"entries":2,"hash":"`+last.Hash+`"}`+"\n"), 0o600)

	if code := run(e, "keys", "log", "-o", "csv"); code != cmdutil.ExitFailure {
		t.Errorf("exit %d, want 1:\n%s", code, e.ErrOut)
	}
	if !strings.Contains(e.ErrOut.String(), "rotation log "+l.Path) || !strings.Contains(e.ErrOut.String(), "not keyed") {
		t.Errorf("stderr does not report the cut:\n%s", e.ErrOut)
	}
	if !strings.Contains(e.Out.String(), ",created,") || !strings.Contains(e.Out.String(), successor.Prefix) || strings.Contains(e.Out.String(), ",local") {
		t.Errorf("want the server's history alone:\n%s", e.Out)
	}
}

// Without a keyring for the log's key (no session bus: cron, ssh), keys log
// still shows the local lines, marked unverified, and the server's history,
// says plainly what it could not verify, and exits 0.
func TestKeysLogWithoutKeyringShowsWhatItCannotVerify(t *testing.T) {
	if _, err := os.Stat(filepath.Join("/run/user", strconv.Itoa(os.Getuid()), "bus")); err == nil {
		t.Skip("this user has a session bus at /run/user/UID/bus, which plana finds without the environment")
	}
	e, _, successor := logWorld(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	e.Factory.Secrets = func() (secret.Store, error) { return secret.NewKeyring(0), nil }
	e.Setenv("PLANA_TOKEN", e.Seed.AdminToken) // as cron has it

	if code := run(e, "keys", "log", "-o", "json"); code != cmdutil.ExitOK {
		t.Fatalf("exit %d, want 0:\n%s", code, e.ErrOut)
	}
	var rows []rotlog.HistoryRow
	if err := json.Unmarshal(e.Out.Bytes(), &rows); err != nil {
		t.Fatalf("%v\n%s", err, e.Out)
	}
	local, server := 0, 0
	for _, r := range rows {
		switch {
		case r.Source == rotlog.SourceServer && r.New != nil && r.New.Prefix == successor.Prefix && !r.Unverified:
			server++
		case r.Source != rotlog.SourceServer && r.Unverified:
			local++
		default:
			t.Errorf("row %+v", r)
		}
	}
	if local != 3 || server != 1 {
		t.Errorf("want 3 local lines marked unverified and the server's row, got %d and %d:\n%s", local, server, e.Out)
	}
	for _, want := range []string{"3 of the 3 lines of this machine's rotation log could not be verified here", "no D-Bus session bus"} {
		if !strings.Contains(e.ErrOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, e.ErrOut)
		}
	}
	if code := run(e, "keys", "log", "--source", "local"); code != cmdutil.ExitOK || !strings.Contains(e.Out.String(), "local (unverified)") {
		t.Errorf("the table: exit %d\n%s\n%s", code, e.Out, e.ErrOut)
	}
}
