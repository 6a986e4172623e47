package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/target"
)

func TestStepFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		verb    string
		args    string
		want    any // the verb's Options, without its StepDeps
		wantErr string
	}{
		{name: "rotate all flags", verb: "rotate",
			args: "KEY --to env-file:/x.env --quiet-period 2d --poll-interval 30s --timeout 36h --exec-timeout 5m --yes --dry-run -o json",
			want: RotateOptions{Key: "KEY", Settings: rotate.Settings{Targets: []string{"env-file:/x.env"}, QuietPeriod: 48 * time.Hour, PollInterval: 30 * time.Second, ExecTimeout: 5 * time.Minute},
				Timeout: 36 * time.Hour, Yes: true, DryRun: true, Parallel: 4, Output: "json"}},
		{name: "rotate no-wait", verb: "rotate", args: "KEY --no-wait --yes", want: RotateOptions{Key: "KEY", NoWait: true, Yes: true, Parallel: 4, Output: "table"}},
		{name: "several targets", verb: "rotate", args: "KEY --to env-file:/eu.env --to exec:./vault.sh",
			want: RotateOptions{Key: "KEY", Settings: rotate.Settings{Targets: []string{"env-file:/eu.env", "exec:./vault.sh"}}, Parallel: 4, Output: "table"}},
		{name: "emergency issued-by", verb: "rotate", args: "--issued-by ben@example.com --emergency departed --no-wait",
			want: RotateOptions{IssuedBy: "ben@example.com", Emergency: "departed", NoWait: true, Parallel: 4, Output: "table"}},
		{name: "gated issued-by", verb: "rotate", args: "--issued-by ben@example.com --yes",
			want: RotateOptions{IssuedBy: "ben@example.com", Yes: true, Parallel: 4, Output: "table"}},
		{name: "due", verb: "rotate", args: "--due --parallel 8 --no-wait --notify exec:a --notify exec:b",
			want: RotateOptions{Due: true, Parallel: 8, NoWait: true, Notify: []string{"exec:a", "exec:b"}, Output: "table"}},
		{name: "due with --to", verb: "rotate", args: "--due --to stdout", wantErr: "rotation.targets"},
		{name: "due and KEY", verb: "rotate", args: "KEY --due", wantErr: "one of KEY, --issued-by, --stored-on or --due"},
		{name: "due in an emergency", verb: "rotate", args: "--due --emergency departed", wantErr: "--issued-by EMAIL --emergency"},
		{name: "parallel 0", verb: "rotate", args: "--due --parallel 0", wantErr: "at least 1"},
		{name: "bad notify hook", verb: "rotate", args: "KEY --notify slack:x", wantErr: "use exec:CMD"},
		{name: "issued-by and KEY", verb: "rotate", args: "KEY --issued-by b@x --emergency departed", wantErr: "one of KEY, --issued-by, --stored-on or --due"},
		{name: "stored-on", verb: "rotate", args: "--stored-on Ana-Laptop --emergency lost-device --yes --dry-run",
			want: RotateOptions{StoredOn: "Ana-Laptop", Emergency: "lost-device", Yes: true, DryRun: true, Parallel: 4, Output: "table"}},
		{name: "stored-on and issued-by", verb: "rotate", args: "--stored-on x --issued-by b@x --emergency departed", wantErr: "one of KEY, --issued-by, --stored-on or --due"},
		{name: "stored-on, gated", verb: "rotate", args: "--stored-on x", wantErr: "add --emergency lost-device"},
		{name: "KEY required", verb: "rotate", args: "", wantErr: "KEY required"},
		{name: "bad target", verb: "rotate", args: "KEY --to ftp:x", wantErr: "unknown deploy target"},
		{name: "bad duration", verb: "rotate", args: "KEY --quiet-period soon", wantErr: "invalid duration"},
		{name: "no-wait with timeout", verb: "rotate", args: "KEY --no-wait --timeout 1h", wantErr: "cannot be used together"},
		{name: "rebuild with dry-run", verb: "rotate", args: "KEY --rebuild --dry-run", wantErr: "--rebuild"},
		{name: "bad output", verb: "rotate", args: "KEY -o xml", wantErr: "unsupported output format"},
		{name: "abort", verb: "rotate", args: "KEY --abort --reason wrong --to env-file:/x.env",
			want: RotateOptions{Key: "KEY", Abort: true, Reason: "wrong", Settings: rotate.Settings{Targets: []string{"env-file:/x.env"}}, Parallel: 4, Output: "table"}},
		{name: "abort with dry-run", verb: "rotate", args: "KEY --abort --dry-run", wantErr: "--abort calls a rotation off"},
		{name: "reset settings", verb: "rotate", args: "KEY --reset-settings --to exec:vault --quiet-period 2h",
			want: RotateOptions{Key: "KEY", ResetSettings: true, Settings: rotate.Settings{Targets: []string{"exec:vault"}, QuietPeriod: 2 * time.Hour}, Parallel: 4, Output: "table"}},
		{name: "abort with reset settings", verb: "rotate", args: "KEY --abort --reset-settings", wantErr: "--abort calls a rotation off"},
		{name: "abort in an emergency", verb: "rotate", args: "KEY --abort --emergency compromise", wantErr: "--abort calls a rotation off"},
		{name: "no watch after the revoke", verb: "rotate", args: "KEY --watch-after-revoke 0",
			want: RotateOptions{Key: "KEY", WatchAfterRevoke: new(time.Duration), Parallel: 4, Output: "table"}},
		{name: "negative watch", verb: "rotate", args: "KEY --watch-after-revoke -1s", wantErr: "must not be negative"},
		{name: "create --like", verb: "create", args: "--like pa_live_AB7K2XYZ --print-secret", want: CreateOptions{Like: "pa_live_AB7K2XYZ", PrintSecret: true, Output: "table"}},
		{name: "create needs --like", verb: "create", args: "", wantErr: "--like KEY required"},
		{name: "deploy", verb: "deploy", args: "KEY --to exec:cat --exec-timeout 30s", want: DeployOptions{Key: "KEY", Targets: []string{"exec:cat"}, ExecTimeout: 30 * time.Second, Output: "table"}},
		{name: "deploy several targets", verb: "deploy", args: "KEY --to env-file:/eu.env --to exec:./vault.sh",
			want: DeployOptions{Key: "KEY", Targets: []string{"env-file:/eu.env", "exec:./vault.sh"}, Output: "table"}},
		{name: "deploy bad second target", verb: "deploy", args: "KEY --to env-file:/eu.env --to ftp:x", wantErr: "unknown deploy target"},
		{name: "deploy empty --to", verb: "deploy", args: "KEY --to=", wantErr: "--to needs a value"},
		{name: "rotate empty --to", verb: "rotate", args: "KEY --to env-file:/eu.env --to=", wantErr: "--to needs a value"},
		{name: "deploy finalize", verb: "deploy", args: "KEY --finalize", want: DeployOptions{Key: "KEY", Finalize: true, Output: "table"}},
		{name: "deploy needs --to", verb: "deploy", args: "KEY", wantErr: "--to TARGET required"},
		{name: "verify wait", verb: "verify", args: "KEY --wait --timeout 2d", want: VerifyOptions{Key: "KEY", Wait: true, Timeout: 48 * time.Hour, Output: "table"}},
		{name: "revoke force", verb: "revoke", args: "KEY --force --yes", want: RevokeOptions{Key: "KEY", Force: true, Yes: true, Output: "table"}},
		{name: "revoke needs KEY", verb: "revoke", args: "", wantErr: "KEY"},
	}
	// Each builder hands back the parsed Options without the Factory's parts.
	builders := map[string]func(*cmdutil.Factory, *any) *cobra.Command{
		"rotate": func(f *cmdutil.Factory, got *any) *cobra.Command {
			return NewCmdRotate(f, func(_ context.Context, o *RotateOptions) error { o.StepDeps = StepDeps{}; *got = *o; return nil })
		},
		"create": func(f *cmdutil.Factory, got *any) *cobra.Command {
			return NewCmdCreate(f, func(_ context.Context, o *CreateOptions) error { o.StepDeps = StepDeps{}; *got = *o; return nil })
		},
		"deploy": func(f *cmdutil.Factory, got *any) *cobra.Command {
			return NewCmdDeploy(f, func(_ context.Context, o *DeployOptions) error { o.StepDeps = StepDeps{}; *got = *o; return nil })
		},
		"verify": func(f *cmdutil.Factory, got *any) *cobra.Command {
			return NewCmdVerify(f, func(_ context.Context, o *VerifyOptions) error { o.StepDeps = StepDeps{}; *got = *o; return nil })
		},
		"revoke": func(f *cmdutil.Factory, got *any) *cobra.Command {
			return NewCmdRevoke(f, func(_ context.Context, o *RevokeOptions) error { o.StepDeps = StepDeps{}; *got = *o; return nil })
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios}
			var got any
			cmd := builders[tt.verb](f, &got)
			cmd.SetArgs(strings.Fields(tt.args))
			cmd.SetOut(&strings.Builder{})
			cmd.SetErr(&strings.Builder{})
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error containing %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// The help of rotate lists the procedure as rotate's step table has it, every
// step in order, within the help's width.
func TestRotateHelpListsTheStepTable(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := iostreams.Test()
	long := NewCmdRotate(&cmdutil.Factory{IOStreams: ios}, nil).Long
	steps := rotate.Steps()
	if len(steps) != 5 {
		t.Fatalf("rotate.Steps() has %d steps, want the procedure's 5", len(steps))
	}
	flat := strings.Join(strings.Fields(long), " ")
	at := 0
	for _, s := range steps {
		item := fmt.Sprintf("%d. %s", s.Number, s.Summary)
		i := strings.Index(flat[at:], item)
		if i < 0 {
			t.Fatalf("the help lacks step %q after position %d:\n%s", item, at, long)
		}
		at += i + len(item)
	}
	for _, l := range strings.Split(stepsHelp(), "\n") {
		if n := utf8.RuneCountInString(l); n > helpWidth {
			t.Errorf("help line of %d characters: %q", n, l)
		}
	}
}

func TestRotateCommandAgainstEmulator(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	envFile := e.AutomationEnvFile()

	err := e.Run(NewCmdRotate(e.Factory, nil), "Nightly stock sync (2025)", "--to", "env-file:"+envFile, "--quiet-period", "1h", "--no-wait", "-o", "json")
	var pe *cmdutil.PendingError
	if !errors.As(err, &pe) {
		t.Fatalf("want exit 3 (PendingError), got %v\n%s", err, e.ErrOut)
	}
	var res rotate.Result
	if err := json.Unmarshal(e.Out.Bytes(), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, e.Out)
	}
	if res.New == nil || res.State != rotate.Deployed || res.Gate == nil || res.Gate.NewUsed {
		t.Fatalf("result %+v", res)
	}
	// Durations read as they were given, not as nanoseconds.
	if n := strings.Count(e.Out.String(), `"quiet_period": "1h"`); n != 2 {
		t.Errorf("quiet_period as \"1h\" %d times (result and gate), want 2:\n%s", n, e.Out)
	}
	data, _ := os.ReadFile(envFile)
	if !strings.Contains(string(data), "PLANA_KEY_NEW=") {
		t.Error("env file not deployed")
	}
	e.AssertNoSecrets()

	e.Out.Reset()
	if err := e.Run(NewCmdStatus(e.Factory, nil), "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var st StatusResult
	if err := json.Unmarshal(e.Out.Bytes(), &st); err != nil || len(st.Rotations) != 1 || st.Rotations[0].State != rotate.Deployed || st.Rotations[0].Source != "local" {
		t.Fatalf("status %v %s", err, e.Out)
	}

	// Without a TTY and without --yes, step 4 cannot be confirmed. Make the
	// gate hold first: the automation uses the new key, the server's clock
	// passes the quiet period.
	newPlain, _ := e.Store.Get("key:" + res.New.ID)
	callWith(t, e, newPlain)
	e.Emu.Advance(2 * time.Hour)
	err = e.Run(NewCmdRotate(e.Factory, nil), res.Old.ID)
	var fe *cmdutil.FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--yes required when not running interactively") {
		t.Fatalf("want the --yes usage error, got %v", err)
	}
	if err := e.Run(NewCmdRotate(e.Factory, nil), res.Old.ID, "--yes"); err != nil {
		t.Fatalf("finish: %v\n%s", err, e.ErrOut)
	}
	if !strings.Contains(e.ErrOut.String(), "Rotated Nightly stock sync (2025)") {
		t.Errorf("stderr: %s", e.ErrOut)
	}

	e.Out.Reset()
	if err := e.Run(NewCmdLog(e.Factory, nil), "--key", res.Old.Prefix, "-o", "csv"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.Out.String(), "time,event,") || !strings.Contains(e.Out.String(), ",rotated,") {
		t.Errorf("log csv: %s", e.Out)
	}
	e.AssertNoSecrets(newPlain)
}

// keys deploy --to given several times deploys the new key to each target;
// one that fails leaves the others deployed, the same command run again
// deploys only to what is left, and --finalize without --to finishes every
// target the rotation recorded.
func TestDeployToSeveralTargets(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	dir := t.TempDir()
	eu, us := filepath.Join(dir, "eu.env"), filepath.Join(dir, "us.env")
	for _, p := range []string{eu, us} {
		if err := os.WriteFile(p, []byte("PLANA_KEY="+e.Seed.AutomationKey+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A secrets manager that is sealed while the file sealed exists; it
	// records each run's step, never the key.
	sealed, runs := filepath.Join(dir, "sealed"), filepath.Join(dir, "vault.runs")
	vault := filepath.Join(dir, "vault.sh")
	script := fmt.Sprintf("#!/bin/sh\ncat >/dev/null\necho \"$PLANA_STEP\" >> '%s'\nif [ -e '%s' ]; then echo vault is sealed >&2; exit 3; fi\n", runs, sealed)
	if err := os.WriteFile(vault, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sealed, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := e.Run(NewCmdCreate(e.Factory, nil), "--like", "Nightly stock sync (2025)", "-o", "json"); err != nil {
		t.Fatalf("create: %v\n%s", err, e.ErrOut)
	}
	var created rotate.Result
	if err := json.Unmarshal(e.Out.Bytes(), &created); err != nil || created.New == nil {
		t.Fatalf("create -o json: %v\n%s", err, e.Out)
	}
	newPlain, err := e.Store.Get(secret.KeyName(created.New.ID))
	if err != nil {
		t.Fatal(err)
	}

	args := []string{created.Old.ID, "--to", "env-file:" + eu, "--to", "env-file:" + us, "--to", "exec:sh " + vault, "-o", "json"}
	e.Out.Reset()
	err = e.Run(NewCmdDeploy(e.Factory, nil), args...)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "2 of 3 targets done") || !strings.Contains(e.ErrOut.String(), "| vault is sealed") {
		t.Fatalf("want the exec target's failure and what is left, its stderr on the terminal, got %v\n%s", err, e.ErrOut)
	}
	var res rotate.Result
	if err := json.Unmarshal(e.Out.Bytes(), &res); err != nil {
		t.Fatalf("deploy -o json: %v\n%s", err, e.Out)
	}
	if len(res.Targets) != 3 || !res.Targets[0].Deployed || !res.Targets[1].Deployed || res.Targets[2].Deployed ||
		!strings.Contains(res.Targets[2].Error, "exit status 3") || strings.Contains(res.Targets[2].Error, "vault is sealed") {
		t.Fatalf("each target's state after the failed run: %+v", res.Targets)
	}
	for _, p := range []string{eu, us} {
		data, _ := os.ReadFile(p)
		if v, ok := target.LookupEnv(data, target.NewKeySlot); !ok || v != newPlain {
			t.Errorf("%s: %s is not the new key after the first run", filepath.Base(p), target.NewKeySlot)
		}
	}

	// Unsealed, the same command deploys only to the target left.
	if err := os.Remove(sealed); err != nil {
		t.Fatal(err)
	}
	e.Out.Reset()
	e.ErrOut.Reset()
	if err := e.Run(NewCmdDeploy(e.Factory, nil), args...); err != nil {
		t.Fatalf("second run: %v\n%s", err, e.ErrOut)
	}
	res = rotate.Result{} // a fresh one: Unmarshal would keep the old targets' errors
	if err := json.Unmarshal(e.Out.Bytes(), &res); err != nil {
		t.Fatalf("deploy -o json: %v\n%s", err, e.Out)
	}
	for _, st := range res.Targets {
		if !st.Deployed || st.Error != "" {
			t.Errorf("target %+v after the second run", st)
		}
	}
	if strings.Contains(e.ErrOut.String(), "deployed to env-file") || !strings.Contains(e.ErrOut.String(), "deployed to exec:") {
		t.Errorf("the second run must deploy to the exec target alone:\n%s", e.ErrOut)
	}

	// --finalize without --to: every recorded target keeps only the new key.
	if err := e.Run(NewCmdDeploy(e.Factory, nil), created.Old.ID, "--finalize"); err != nil {
		t.Fatalf("finalize: %v\n%s", err, e.ErrOut)
	}
	for _, p := range []string{eu, us} {
		data, _ := os.ReadFile(p)
		if v, ok := target.LookupEnv(data, target.KeySlot); !ok || v != newPlain {
			t.Errorf("%s: %s is not the new key after --finalize", filepath.Base(p), target.KeySlot)
		}
		if _, ok := target.LookupEnv(data, target.NewKeySlot); ok {
			t.Errorf("%s: --finalize left %s", filepath.Base(p), target.NewKeySlot)
		}
	}
	if data, _ := os.ReadFile(runs); string(data) != "deploy\ndeploy\nfinalize\n" {
		t.Errorf("the exec target ran for %q, want a failed deploy, a deploy, a finalize", data)
	}
	e.AssertNoSecrets(newPlain)
}

func TestDueCommandExitCode(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	ics := filepath.Join(t.TempDir(), "due.ics")
	err := e.Run(NewCmdDue(e.Factory, nil), "--ics", ics, "-o", "json")
	var ee *cmdutil.ExitError
	if !errors.As(err, &ee) || ee.Code != cmdutil.ExitDue {
		t.Fatalf("the demo has a key over a year old: want exit 5, got %v", err)
	}
	if !strings.Contains(e.Out.String(), "Nightly stock sync (2025)") {
		t.Errorf("due: %s", e.Out)
	}
	data, err := os.ReadFile(ics)
	if err != nil || !strings.Contains(string(data), "BEGIN:VEVENT") || !strings.Contains(string(data), "@plana") {
		t.Errorf("ics: %v", err)
	}
}

// callWith makes one automation call with key.
func callWith(t *testing.T, e *cmdtest.Env, key string) {
	t.Helper()
	c, err := e.Factory.ClientFor(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), client.Request{Method: "GET", Path: "/v1/stock-levels"}, nil); err != nil {
		t.Fatal(err)
	}
}

// On a TTY, step 3's waiting screen draws both keys' calls per hour on one
// scale; in a script it does not (and makes no extra calls).
func TestVerifyWaitDrawsTrafficOnATTY(t *testing.T) {
	t.Parallel()
	for _, tty := range []bool{true, false} {
		e := cmdtest.New(t)
		e.IO.SetStderrTTY(tty)
		envFile := e.AutomationEnvFile()
		err := e.Run(NewCmdRotate(e.Factory, nil), "Nightly stock sync (2025)", "--to", "env-file:"+envFile, "--quiet-period", "1h", "--no-wait", "-o", "json")
		var res rotate.Result
		if json.Unmarshal(e.Out.Bytes(), &res); res.New == nil {
			t.Fatalf("rotate: %v", err)
		}
		newPlain, _ := e.Store.Get("key:" + res.New.ID)
		callWith(t, e, newPlain)
		callWith(t, e, newPlain)
		callWith(t, e, e.Seed.AutomationKey)
		e.ErrOut.Reset()
		err = e.Run(NewCmdVerify(e.Factory, nil), res.Old.ID, "--wait", "--quiet-period", "1h", "--poll-interval", "10ms", "--timeout", "300ms")
		var pe *cmdutil.PendingError
		if !errors.As(err, &pe) {
			t.Fatalf("want the gate still shut (the old key was just used), got %v", err)
		}
		out := e.ErrOut.String()
		// The Date header has whole seconds: a call made this second is not
		// one "stamped after the server's present".
		if strings.Contains(out, "after its own clock") {
			t.Errorf("a call just made is reported as stamped in the future:\n%s", out)
		}
		if !tty {
			if strings.Contains(out, "Calls per hour") {
				t.Errorf("a chart without a TTY:\n%s", out)
			}
			continue
		}
		if !strings.Contains(out, "Calls per hour, last 7 h (oldest to now):") {
			t.Fatalf("no chart on a TTY:\n%s", out)
		}
		// One scale for both: the new key's 2 calls (plus plana's own check)
		// reach the top, the old key's latest hour is lower but visible.
		oldLine := regexp.MustCompile(`  old ` + res.Old.Prefix + `  ([▁▂▃▄▅▆▇█]{7})  (\d+)`).FindStringSubmatch(out)
		newLine := regexp.MustCompile(`  new ` + res.New.Prefix + `  ([▁▂▃▄▅▆▇█]{7})  (\d+)`).FindStringSubmatch(out)
		if oldLine == nil || newLine == nil {
			t.Fatalf("chart lines missing:\n%s", out)
		}
		if !strings.HasSuffix(newLine[1], "█") || newLine[2] != "3" {
			t.Errorf("new key line %q: want 3 calls, the busiest hour at the end", newLine[0])
		}
		if strings.HasSuffix(oldLine[1], "▁") {
			t.Errorf("old key line %q: its call this hour is not drawn", oldLine[0])
		}
	}
}

func TestLogSourceFlag(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	err := e.Run(NewCmdLog(e.Factory, nil), "--source", "both")
	var fe *cmdutil.FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "want server, local or all") {
		t.Fatalf("want a usage error, got %v", err)
	}
	// Nothing rotated yet: the server side is empty, and so is the local.
	if err := e.Run(NewCmdLog(e.Factory, nil), "--source", "server", "-o", "csv"); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(e.Out.String()); got != "time,event,old_prefix,old_name,new_prefix,new_name,reason,actor,source" {
		t.Fatalf("log of a workspace where nothing was rotated: %q", got)
	}
}

// A rotation from the command line writes its lineage where every machine
// sees it, and a machine with no journal reads it back in keys log.
func TestRotateWritesLineageThatKeysLogReads(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	envFile := e.AutomationEnvFile()
	err := e.Run(NewCmdRotate(e.Factory, nil), client.PrefixOf(e.Seed.AutomationKey), "--to", "env-file:"+envFile, "--no-wait", "--yes", "--quiet-period", "1h", "-o", "json")
	var pe *cmdutil.PendingError
	if !errors.As(err, &pe) {
		t.Fatalf("want pending, got %v\n%s", err, e.ErrOut)
	}
	var res rotate.Result
	if err := json.Unmarshal(e.Out.Bytes(), &res); err != nil || res.New == nil {
		t.Fatalf("json: %v\n%s", err, e.Out)
	}
	k, err := e.AdminClient().GetKey(context.Background(), res.New.ID)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := lineage.Parse(k.Description)
	if !ok || l.OldPrefix != res.Old.Prefix || l.Reason != rotate.ReasonScheduled {
		t.Fatalf("description %q", k.Description)
	}
	e.Setenv("XDG_STATE_HOME", t.TempDir()) // another machine
	e.Out.Reset()
	if err := e.Run(NewCmdLog(e.Factory, nil), "-o", "csv"); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(",created,%s,%s,%s,%s,scheduled,%s,server", res.Old.Prefix, res.Old.Name, res.New.Prefix, res.New.Name, l.By)
	if !strings.Contains(e.Out.String(), want) {
		t.Fatalf("log on another machine:\n%s\nwant a line with %s", e.Out, want)
	}
}

// Every step verb stops on a configuration it cannot read, with the
// configuration's own error (exit 2), even when the client was built
// before it.
func TestStepsNeverDropAConfigError(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	_, cfgErr := config.Load(config.Options{Path: filepath.Join(t.TempDir(), "none.yaml"),
		Getenv: func(k string) string { return map[string]string{"PLANA_ROTATION_QUIET_PERIOD": "soon"}[k] }})
	if !errors.Is(cfgErr, config.ErrInvalid) {
		t.Fatalf("the test needs a configuration error, got %v", cfgErr)
	}
	d := stepDeps(e.Factory)
	d.Config = func() (*config.Config, error) { return nil, cfgErr }
	_, _, rep, err := d.start(context.Background(), rotate.Options{}, nil)
	rep.stop()
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "rotation.quiet_period") {
		t.Errorf("start went on past a configuration error: %v", err)
	}
}
