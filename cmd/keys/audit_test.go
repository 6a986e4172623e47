package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/subosito/gotenv"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/rotate/audit"
)

func TestNewCmdAuditFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		prompt  bool // stdin and stderr are a terminal
		want    string
		wantErr string
	}{
		{[]string{"--all"}, false, "all since=24h0m0s baseline=720h0m0s", ""},
		{[]string{"Nightly", "pa_live_AB7K2XYZ", "--since", "1h", "--baseline", "7d"}, false, "Nightly,pa_live_AB7K2XYZ since=1h0m0s baseline=168h0m0s", ""},
		{[]string{"--all", "--rotate", "--yes", "--timeout", "10m", "-o", "json"}, false, "all since=24h0m0s baseline=720h0m0s rotate yes timeout=10m0s json", ""},
		{[]string{"--all", "--rotate"}, true, "all since=24h0m0s baseline=720h0m0s rotate", ""},
		{[]string{"--all", "--rotate"}, false, "", "--yes required when not running interactively"},
		{nil, false, "", "KEY required"},
		{[]string{"Nightly", "--all"}, false, "", "not both"},
		{[]string{"--all", "--yes"}, false, "", "--yes and --timeout go with --rotate"},
		{[]string{"--all", "--since", "0s"}, false, "", `invalid --since "0s"`},
		{[]string{"--all", "--baseline", "a month"}, false, "", `invalid --baseline "a month"`},
		{[]string{"--all", "--notify", "slack"}, false, "", "use exec:CMD"},
		{[]string{"--all", "-o", "yaml"}, false, "", "use one of table, json"},
	}
	for _, tt := range tests {
		ios, _, _, _ := iostreams.Test()
		ios.SetStdinTTY(tt.prompt)
		ios.SetStderrTTY(tt.prompt)
		var got *AuditOptions
		cmd := NewCmdAudit(&cmdutil.Factory{IOStreams: ios}, func(_ context.Context, o *AuditOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		if tt.wantErr != "" {
			var fe *cmdutil.FlagError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || (!errors.As(err, &fe) && !strings.Contains(err.Error(), "format")) {
				t.Errorf("%v: err = %v, want a usage error with %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		s := strings.Join(got.Keys, ",")
		if got.All {
			s = "all"
		}
		s += " since=" + got.Since.String() + " baseline=" + got.Baseline.String()
		for _, f := range []struct {
			on   bool
			word string
		}{{got.Rotate, " rotate"}, {got.Yes, " yes"}, {got.Timeout > 0, " timeout=" + got.Timeout.String()}, {got.Output == "json", " json"}} {
			if f.on {
				s += f.word
			}
		}
		if s != tt.want {
			t.Errorf("%v: parsed %q, want %q", tt.args, s, tt.want)
		}
	}
}

// suspicious makes the seeded automation key call from this machine as
// curl: a source and a user agent its month of nightly runs never showed.
func suspicious(t *testing.T, e *cmdtest.Env) {
	t.Helper()
	callAs(t, e, e.Seed.AutomationKey, "curl/8.5.0", "/v1/stock-levels")
}

// runAudit runs keys audit -o json and returns its report and error. The
// emulator answers a call once its log entry is committed, so the calls
// made before are all there to read.
func runAudit(t *testing.T, e *cmdtest.Env, args ...string) (AuditResult, error) {
	t.Helper()
	e.Out.Reset()
	e.ErrOut.Reset()
	err := e.Run(NewCmdAudit(e.Factory, nil), append(args, "-o", "json")...)
	var res AuditResult
	if jerr := json.Unmarshal(e.Out.Bytes(), &res); jerr != nil {
		t.Fatalf("keys audit %v: %v, stdout %q, stderr %q", args, err, e.Out.String(), e.ErrOut.String())
	}
	return res, err
}

func exitCode(err error) int {
	var ee *cmdutil.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return cmdutil.ExitFailure
	}
	return 0
}

func TestAuditRun(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	res, err := runAudit(t, e, "--all")
	if err != nil || res.Flagged != 0 || res.KeysAudited != 5 {
		t.Fatalf("the demo seed as it is: %v, %+v", err, res.Report)
	}

	suspicious(t, e)
	res, err = runAudit(t, e, "Nightly stock sync (2025)")
	if exitCode(err) != cmdutil.ExitSuspicious {
		t.Fatalf("exit %d (%v), want 6", exitCode(err), err)
	}
	if len(res.Keys) != 1 || res.Keys[0].Verdict != audit.Flagged || len(res.Keys[0].Findings) != 2 ||
		res.Keys[0].Findings[0].Kind != audit.NewSource || res.Keys[0].Findings[1].Kind != audit.NewUserAgent {
		t.Fatalf("report %+v", res.Keys)
	}
	f := res.Keys[0].Findings[0]
	if f.Count != 1 || f.Calls[0].SourceIP != "127.0.0.1" || f.Calls[0].UserAgent != "curl/8.5.0" || f.Calls[0].Path != "/v1/stock-levels" ||
		!strings.HasPrefix(f.Why, "127.0.0.1 never seen in 30 days; known: 203.0.113.0/24 (stock-sync)") {
		t.Errorf("finding %+v", f)
	}

	// Piped, the table is one tab-separated row per finding.
	e.Out.Reset()
	err = e.Run(NewCmdAudit(e.Factory, nil), "Nightly stock sync (2025)")
	if exitCode(err) != cmdutil.ExitSuspicious || !strings.Contains(e.Out.String(), "\tnew-source\t1\t") ||
		!strings.Contains(e.Out.String(), "\tcurl/8.5.0\tGET /v1/stock-levels\tcurl/8.5.0 never seen in 30 days") {
		t.Errorf("table: %v\n%s", err, e.Out.String())
	}
	if !strings.Contains(e.ErrOut.String(), "1 flagged (2 findings)") {
		t.Errorf("summary: %s", e.ErrOut.String())
	}

	e.AssertNoSecrets()
}

// A finding is a suspicious event for every hook, with its calls and why,
// and no key material.
func TestAuditNotifies(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	events := filepath.Join(t.TempDir(), "events")
	suspicious(t, e)
	_, err := runAudit(t, e, "--all", "--notify", "exec:cat >> "+events)
	if exitCode(err) != cmdutil.ExitSuspicious {
		t.Fatalf("exit %d (%v)", exitCode(err), err)
	}
	data, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d events, want one per finding:\n%s", len(lines), data)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatal(err)
	}
	src, _ := ev["sources"].([]any)
	if ev["event"] != "suspicious" || ev["step"] != "audit" || ev["finding"] != "new-source" || ev["actor"] != "ana@example.com" ||
		!strings.Contains(ev["reason"].(string), "never seen in 30 days") || len(src) != 1 {
		t.Errorf("event %s", lines[0])
	}
	for _, s := range e.Secrets() {
		if strings.Contains(string(data), s) {
			t.Error("an event holds a plaintext key")
		}
	}
}

// audit.allow declares an expected caller: it is no longer flagged.
func TestAuditAllowed(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	e.Setenv("PLANA_AUDIT_ALLOW", `[{match: "Nightly stock sync*", source_ip: 127.0.0.0/8, user_agent: "curl/*"}]`)
	suspicious(t, e)
	res, err := runAudit(t, e, "Nightly stock sync (2025)")
	if err != nil || res.Flagged != 0 || res.Keys[0].Allowed != 1 {
		t.Fatalf("an allowed caller: %v, %+v", err, res.Keys)
	}
}

// --rotate runs the emergency rotation of each flagged key, to its
// rotation.targets, and leaves the management key plana uses to a person;
// on a terminal it asks first, and "no" rotates nothing.
func TestAuditRotate(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	envFile := e.AutomationEnvFile()
	e.Setenv("PLANA_ROTATION_TARGETS", `[{match: "Nightly stock sync*", to: ["env-file:`+envFile+`"]}]`)
	e.Setenv("PLANA_POLL_INTERVAL", "100ms")
	suspicious(t, e)
	callAs(t, e, e.Seed.AdminToken, "curl/8.5.0", "/v1/api-keys")

	// Asked on a terminal, declined: nothing changes.
	e.IO.SetStdinTTY(true)
	e.IO.SetStderrTTY(true)
	e.In.WriteString("n\n")
	_, err := runAudit(t, e, "--all", "--rotate", "--timeout", "5s")
	if exitCode(err) != cmdutil.ExitSuspicious || !strings.Contains(e.ErrOut.String(), "Rotate Nightly stock sync (2025)") ||
		!strings.Contains(e.ErrOut.String(), "Not rotated") {
		t.Fatalf("declined: exit %d, stderr:\n%s", exitCode(err), e.ErrOut.String())
	}
	if k := keyNamed(t, e, "Nightly stock sync (2025)"); !k.Active() {
		t.Fatal("a declined rotation revoked the key")
	}

	// The automation: once the new key is deployed, it calls with it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			env, _ := gotenv.Read(envFile)
			if k := env["PLANA_KEY_NEW"]; k != "" {
				c, _ := client.New(e.URL, client.WithKeys(k), client.WithUserAgent("stock-sync/1.4"))
				c.Do(ctx, client.Request{Method: http.MethodGet, Path: "/v1/stock-levels"}, nil)
			}
			time.Sleep(50 * time.Millisecond) // an automation's own interval
		}
	}()
	res, err := runAudit(t, e, "--all", "--rotate", "--yes", "--timeout", "1m")
	if exitCode(err) != cmdutil.ExitSuspicious {
		t.Fatalf("exit %d (%v); stderr:\n%s", exitCode(err), err, e.ErrOut.String())
	}
	if res.Rotation == nil || len(res.Rotation.Items) != 1 || res.Rotation.Items[0].State != "done" ||
		res.Rotation.Items[0].Old.Name != "Nightly stock sync (2025)" || !res.Rotation.Items[0].Result.Emergency {
		t.Fatalf("rotation %+v", res.Rotation)
	}
	if k := keyNamed(t, e, "Nightly stock sync (2025)"); k.Active() {
		t.Error("the flagged key is still active")
	}
	if k := keyNamed(t, e, "plana admin (2026)"); !k.Active() || !strings.Contains(e.ErrOut.String(), "it is the management key plana is using") {
		t.Errorf("the management key: active %v; stderr:\n%s", k.Active(), e.ErrOut.String())
	}
	env, _ := gotenv.Read(envFile)
	if env["PLANA_KEY"] == e.Seed.AutomationKey || env["PLANA_KEY_NEW"] != "" {
		t.Error("the env file does not hold only the new key")
	}
	e.AssertNoSecrets(env["PLANA_KEY"])
}

func keyNamed(t *testing.T, e *cmdtest.Env, name string) client.APIKey {
	t.Helper()
	keys, err := e.AdminClient().ListKeys(context.Background(), client.ListKeysOptions{Status: client.StatusAll})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no key named %s", name)
	return client.APIKey{}
}
