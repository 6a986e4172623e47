package keys

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-runewidth"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestNewCmdListFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		wantStatus string
		wantOutput string
		wantErr    string
	}{
		{nil, "active", "table", ""},
		{[]string{"--status", "all", "-o", "csv"}, "all", "csv", ""},
		{[]string{"--status", "revoked", "--output", "yaml"}, "revoked", "yaml", ""},
		{[]string{"--status", "gone"}, "", "", "use active, revoked or all"},
		{[]string{"-o", "xml"}, "", "", "use one of table, json, yaml, csv"},
		{[]string{"extra"}, "", "", "takes no arguments"},
	}
	for _, tt := range tests {
		ios, _, _, _ := iostreams.Test()
		f := &cmdutil.Factory{IOStreams: ios}
		var got *ListOptions
		cmd := NewCmdList(f, func(_ context.Context, o *ListOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: err = %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if got.Status != tt.wantStatus || got.Output != tt.wantOutput {
			t.Errorf("%v: status %q output %q", tt.args, got.Status, got.Output)
		}
	}
}

func TestListRunJSONAndCSV(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	if err := e.Run(NewCmdList(e.Factory, nil), "--status", "all", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	if err := json.Unmarshal(e.Out.Bytes(), &recs); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, e.Out)
	}
	byName := map[string]map[string]any{}
	for _, r := range recs {
		byName[r["name"].(string)] = r
	}
	old, ok := byName["Nightly stock sync (2025)"]
	if !ok {
		t.Fatalf("seeded key missing from %d records", len(recs))
	}
	for _, field := range []string{"id", "prefix", "scopes", "status", "created_at", "created_by", "last_used_at", "revoked_at", "rotation_cadence", "rotation_due_at", "rotation_due"} {
		if _, ok := old[field]; !ok {
			t.Errorf("JSON record lacks %q", field)
		}
	}
	if old["rotation_due"] != true {
		t.Errorf("a key over a year old with cadence 365d must be due: %v", old["rotation_due"])
	}
	revoked := 0
	for _, r := range recs {
		if r["status"] == "revoked" {
			revoked++
			if r["rotation_due_at"] != nil {
				t.Error("a revoked key has a rotation due date")
			}
		}
	}
	if revoked == 0 {
		t.Error("--status all lists no revoked key")
	}
	e.AssertNoSecrets()

	// A cadence override changes who is due.
	e2 := cmdtest.New(t)
	e2.Setenv("PLANA_ROTATION_CADENCE_OVERRIDES", "Nightly*=1000d")
	if err := e2.Run(NewCmdList(e2.Factory, nil), "-o", "csv"); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(e2.Out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
		t.Errorf("CSV header %v", rows[0])
	}
	for _, r := range rows[1:] {
		if r[4] != "active" {
			t.Errorf("--status defaults to active, got %v", r)
		}
		if r[1] == "Nightly stock sync (2025)" && (r[9] != "1000d" || r[11] != "false") {
			t.Errorf("override not applied: %v", r)
		}
	}
}

// stubAPI serves fixed keys with a fixed Date, so tables are reproducible.
func stubAPI(t *testing.T, now time.Time, pages [][]client.APIKey, onPage func(i int)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+validStubToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/v1/api-keys" {
			http.NotFound(w, r)
			return
		}
		i := 0
		fmt.Sscanf(r.URL.Query().Get("page_token"), "p%d", &i)
		if onPage != nil {
			onPage(i)
		}
		next := ""
		if i+1 < len(pages) {
			next = fmt.Sprintf("p%d", i+1)
		}
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		_ = json.NewEncoder(w).Encode(client.ListKeysResponse{APIKeys: pages[i], NextPageToken: next})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func stubFactory(t *testing.T, url string) (*cmdutil.Factory, *iostreams.IOStreams, *bytes.Buffer) {
	t.Helper()
	env := map[string]string{
		"XDG_CONFIG_HOME": filepath.Join(t.TempDir(), "config"),
		"PLANA_API_URL":   url,
		"PLANA_TOKEN":     validStubToken,
	}
	ios, _, out, _ := iostreams.Test()
	f := cmdutil.New(cmdutil.FactoryOptions{IOStreams: ios, Version: "test", Getenv: func(k string) string { return env[k] },
		Secrets: func() (secret.Store, error) { return secret.NewMemory(), nil }})
	return f, ios, out
}

var validStubToken = client.FormatKey("live", "STUBSTUB", strings.Repeat("x", client.SecretLen))

func fixtureKeys(now time.Time) []client.APIKey {
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	day := 24 * time.Hour
	ana := client.User{ID: "usr_1", Email: "ana@example.com"}
	ben := client.User{ID: "usr_2", Email: "ben@example.com"}
	return []client.APIKey{
		{ID: "key_01", Name: "Nightly stock sync (2025)", Prefix: "pa_live_AB7K2XYZ", Scopes: []string{"stock:read", "stock:write"},
			Status: "active", CreatedAt: *ago(400 * day), CreatedBy: ana, LastUsedAt: ago(5 * time.Hour)},
		{ID: "key_02", Name: "Webhook relay", Prefix: "pa_live_WH00RLAY", Scopes: []string{"orders:write"},
			Status: "active", CreatedAt: *ago(120 * day), CreatedBy: ben, LastUsedAt: ago(3 * time.Minute)},
		{ID: "key_03", Name: "Reporting export (2026)", Prefix: "pa_live_REP0RT26", Scopes: []string{"reports:read"},
			Status: "active", CreatedAt: *ago(9 * day), CreatedBy: ben},
		{ID: "key_04", Name: "Legacy import (2024)", Prefix: "pa_live_LEGACY24", Scopes: []string{"stock:write"},
			Status: "revoked", CreatedAt: *ago(700 * day), CreatedBy: ana, LastUsedAt: ago(200 * day), RevokedAt: ago(199 * day), RevokedBy: &ana},
	}
}

func TestListTableGolden(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tty := range []bool{true, false} {
		url := stubAPI(t, now, [][]client.APIKey{fixtureKeys(now)}, nil)
		f, ios, out := stubFactory(t, url)
		ios.SetStdoutTTY(tty)
		cmd := NewCmdList(f, nil)
		cmd.SetArgs([]string{"--status", "all"})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		name := "list_tty.golden"
		if !tty {
			name = "list_notty.golden"
		}
		p := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (go test -update creates it)", err)
		}
		if out.String() != string(want) {
			t.Errorf("%s differs (go test -update to accept):\n--- got\n%s--- want\n%s", name, out, want)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestListStreams proves -o json writes each page before fetching the next,
// so memory stays at one page for any number of keys.
func TestListStreams(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const pages, perPage = 10, 1000
	var all [][]client.APIKey
	for p := 0; p < pages; p++ {
		var page []client.APIKey
		for i := 0; i < perPage; i++ {
			page = append(page, client.APIKey{ID: fmt.Sprintf("key_%05d", p*perPage+i), Name: fmt.Sprintf("k%d", p*perPage+i),
				Prefix: "pa_live_AAAAAAAA", Status: "active", CreatedAt: now.Add(-time.Hour)})
		}
		all = append(all, page)
	}
	out := &lockedBuffer{}
	var streamed []bool
	onPage := func(i int) {
		if i > 0 {
			streamed = append(streamed, strings.Contains(out.String(), fmt.Sprintf(`"key_%05d"`, i*perPage-1)))
		}
	}
	url := stubAPI(t, now, all, onPage)
	f, ios, _ := stubFactory(t, url)
	ios.Out = out
	cmd := NewCmdList(f, nil)
	cmd.SetArgs([]string{"-o", "json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for i, ok := range streamed {
		if !ok {
			t.Errorf("page %d was requested before page %d was written", i+1, i)
		}
	}
	var recs []KeyRecord
	if err := json.Unmarshal([]byte(out.String()), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != pages*perPage {
		t.Errorf("%d records, want %d", len(recs), pages*perPage)
	}
}

var ansiRe = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// On a colour terminal: every colour code is closed by exactly one reset
// and no reset stands alone; a 200-character name is cut with "…" so no
// line is wider than the terminal, while a pipe and -o json keep it whole.
func TestListTableOnAColourTerminal(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	long := "Nightly stock sync for the warehouse in " + strings.Repeat("Zürich-Oerlikon ", 10) + "(2025)"
	keys := fixtureKeys(now)
	keys[1].Name = long
	const width = 180

	url := stubAPI(t, now, [][]client.APIKey{keys}, nil)
	f, ios, out := stubFactory(t, url)
	ios.SetStdoutTTY(true)
	ios.SetColorEnabled(true)
	ios.SetTerminalWidth(width)
	cmd := NewCmdList(f, nil)
	cmd.SetArgs([]string{"--status", "all"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	golden(t, "list_tty_color.golden", out.Bytes())
	for i, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		open := false
		for _, code := range ansiRe.FindAllString(line, -1) {
			if (code == "\x1b[0m") != open {
				t.Errorf("line %d: %q where a colour is %s: %q", i, code, map[bool]string{true: "open", false: "not open"}[open], line)
			}
			open = code != "\x1b[0m"
		}
		if open {
			t.Errorf("line %d ends with a colour open: %q", i, line)
		}
		if strings.HasSuffix(ansiRe.ReplaceAllString(line, ""), " ") {
			t.Errorf("line %d ends in spaces: %q", i, line)
		}
		if w := runewidth.StringWidth(ansiRe.ReplaceAllString(line, "")); w > width {
			t.Errorf("line %d is %d cells wide, more than the terminal's %d", i, w, width)
		}
	}
	if !strings.Contains(out.String(), "Nightly stock sync for the warehouse in Zür…") || !strings.Contains(out.String(), "…") || strings.Contains(out.String(), long) {
		t.Errorf("the long name is not cut with …:\n%s", out)
	}

	for _, args := range [][]string{{"--status", "all"}, {"--status", "all", "-o", "json"}} {
		url := stubAPI(t, now, [][]client.APIKey{keys}, nil)
		f, ios, out := stubFactory(t, url)
		ios.SetTerminalWidth(width)
		ios.SetStdoutTTY(len(args) > 2)
		cmd := NewCmdList(f, nil)
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), long) {
			t.Errorf("plana keys list %s cut the name:\n%s", strings.Join(args, " "), out)
		}
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update to accept):\n--- got\n%q\n--- want\n%q", name, got, want)
	}
}
