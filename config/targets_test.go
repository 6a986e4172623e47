package config

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

const fleetFile = `profiles:
  default:
    rotation:
      quiet_period: 24h
      cadence_overrides:
        - pattern: "Nightly*"
          cadence: 30d
      targets:
        - match: "Nightly stock sync*"
          to: ["env-file:/srv/eu.env", "env-file:/srv/us.env"]
          quiet_period: 48h
          cadence: 90d
        - match: "CI *"
          to: exec:/usr/local/bin/to-vault
    notify: ["exec:/usr/local/bin/plana-slack", "exec:logger -t plana"]
`

func TestTargetsAndNotifyFromTheFile(t *testing.T) {
	setenv(t, nil)
	c, err := Load(Options{Path: writeFile(t, fleetFile)})
	if err != nil {
		t.Fatal(err)
	}
	rules := c.Targets()
	if len(rules) != 2 {
		t.Fatalf("rules %+v, want both, in the file's order", rules)
	}
	if r := rules[0]; r.Match != "Nightly stock sync*" || strings.Join(r.To, " ") != "env-file:/srv/eu.env env-file:/srv/us.env" ||
		r.QuietPeriod != 48*time.Hour || r.Cadence != 90*24*time.Hour {
		t.Errorf("a rule with every field: %+v", r)
	}
	if r := rules[1]; r.Match != "CI *" || len(r.To) != 1 || r.To[0] != "exec:/usr/local/bin/to-vault" || r.QuietPeriod != 0 || r.Cadence != 0 {
		t.Errorf("one target as a string, nothing else: %+v", r)
	}
	if n := c.Notify(); len(n) != 2 || n[1] != "exec:logger -t plana" {
		t.Errorf("notify %v", n)
	}
	got, _ := c.Get(KeyTargets)
	if !strings.Contains(got, "match: Nightly stock sync*") || !strings.Contains(got, "quiet_period: 2d") {
		t.Errorf("config get rotation.targets = %s", got)
	}
}

func TestTargetsFromTheEnvironmentAndSet(t *testing.T) {
	setenv(t, map[string]string{
		"PLANA_ROTATION_TARGETS": `[{match: "*", to: ["exec:./deploy"]}]`,
		"PLANA_NOTIFY":           "exec:cat >> /tmp/events",
	})
	c, err := Load(Options{Path: writeFile(t, "")})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Targets(); len(r) != 1 || r[0].Match != "*" || r[0].To[0] != "exec:./deploy" || c.Source(KeyTargets).Kind != SourceEnv {
		t.Errorf("from PLANA_ROTATION_TARGETS: %+v", r)
	}
	if n := c.Notify(); len(n) != 1 || n[0] != "exec:cat >> /tmp/events" {
		t.Errorf("one hook from PLANA_NOTIFY: %v", n)
	}
	stores := []string{"k8s:stock/stock-sync-key?rollout=deployment/stock-sync", "aws-sm:prod/stock-sync", "aws-ssm:/prod/stock-sync",
		"sops:/srv/secrets/stock.env", "pass:ci/stock-sync", "exec-ab:sh /srv/plana-gh-secret-ab.sh STOCK_SYNC_KEY"}
	setenv(t, map[string]string{"PLANA_ROTATION_TARGETS": `[{match: "*", to: ["` + strings.Join(stores, `", "`) + `"]}]`})
	if c, err = Load(Options{Path: writeFile(t, "")}); err != nil {
		t.Fatalf("the secret stores as targets: %v", err)
	}
	if r := c.Targets(); len(r) != 1 || !slices.Equal(r[0].To, stores) {
		t.Errorf("the secret stores as targets: %+v", r)
	}

	setenv(t, nil)
	path := writeFile(t, "")
	c, err = Load(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(KeyTargets, `[{match: "CI *", to: [stdout], cadence: 90d}]`); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	c, err = Load(Options{Path: path})
	if err != nil {
		t.Fatalf("reading back what config set wrote: %v\n%s", err, data)
	}
	if r := c.Targets(); len(r) != 1 || r[0].Match != "CI *" || r[0].Cadence != 90*24*time.Hour || r[0].To[0] != "stdout" {
		t.Errorf("after config set: %+v\n%s", r, data)
	}
}

func TestBadTargetsSayWhatToWrite(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`[{match: "*", to: ["env-file:app.env"]}]`, "must be absolute"},
		{`[{match: "*", to: ["ftp://x"]}]`, `unknown target "ftp://x"`},
		{`[{match: "*", to: ["sops:secrets/stock.env"]}]`, "must be absolute"},
		{`[{match: "*", to: ["k8s:"]}]`, `target "k8s:" names nothing after "k8s:"`},
		{`[{to: [stdout]}]`, "no match"},
		{`[{match: "[", to: [stdout]}]`, "bad glob"},
		{`[{match: "*", to: [stdout], when: daily}]`, `unknown field "when"`},
		{`{match: "*"}`, "want a list"},
	} {
		setenv(t, map[string]string{"PLANA_ROTATION_TARGETS": tc.body})
		_, err := Load(Options{Path: writeFile(t, "")})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), KeyTargets) {
			t.Errorf("%s: want %q naming %s, got %v", tc.body, tc.want, KeyTargets, err)
		}
	}
	setenv(t, map[string]string{"PLANA_NOTIFY": "[slack]"})
	if _, err := Load(Options{Path: writeFile(t, "")}); err == nil || !strings.Contains(err.Error(), "exec:CMD") {
		t.Errorf("a notify hook that is not exec: %v", err)
	}
}

func TestAuditAllow(t *testing.T) {
	setenv(t, nil)
	c, err := Load(Options{Path: writeFile(t, `profiles:
  default:
    audit:
      allow:
        - match: "Nightly stock sync*"
          source_ip: 198.51.100.0/24
        - match: "*"
          user_agent: "stock-sync/*"
          source_ip: 2001:db8::7
`)})
	if err != nil {
		t.Fatal(err)
	}
	got := c.AuditAllow()
	if len(got) != 2 || got[0] != (AllowRule{Match: "Nightly stock sync*", SourceIP: "198.51.100.0/24"}) ||
		got[1] != (AllowRule{Match: "*", SourceIP: "2001:db8::7", UserAgent: "stock-sync/*"}) {
		t.Fatalf("audit.allow %+v", got)
	}
	if s, _ := c.Get(KeyAuditAllow); !strings.Contains(s, "source_ip: 198.51.100.0/24") || c.Source(KeyAuditAllow).Kind != SourceFile {
		t.Errorf("config get audit.allow = %s (%s)", s, c.Source(KeyAuditAllow))
	}

	setenv(t, map[string]string{"PLANA_AUDIT_ALLOW": `[{match: "CI *", user_agent: "curl/*"}]`})
	path := writeFile(t, "")
	if c, err = Load(Options{Path: path}); err != nil {
		t.Fatal(err)
	}
	if got := c.AuditAllow(); len(got) != 1 || got[0].UserAgent != "curl/*" || c.Source(KeyAuditAllow).Kind != SourceEnv {
		t.Errorf("from PLANA_AUDIT_ALLOW: %+v", got)
	}
	setenv(t, nil)
	if c, err = Load(Options{Path: path}); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(KeyAuditAllow, `[{match: "Webhook*", source_ip: 192.0.2.0/24}]`); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if c, err = Load(Options{Path: path}); err != nil {
		t.Fatalf("reading back what config set wrote: %v\n%s", err, data)
	}
	if got := c.AuditAllow(); len(got) != 1 || got[0].SourceIP != "192.0.2.0/24" {
		t.Errorf("after config set: %+v\n%s", got, data)
	}

	for _, tc := range []struct{ body, want string }{
		{`[{source_ip: 192.0.2.0/24}]`, "no match"},
		{`[{match: "*"}]`, "allows every call"},
		{`[{match: "*", source_ip: 192.0.2.0/33}]`, "not an address or a CIDR"},
		{`[{match: "*", source_ip: somewhere}]`, "not an address or a CIDR"},
		{`[{match: "[", user_agent: x}]`, "bad glob"},
		{`[{match: "*", user_agent: x, region: eu}]`, `unknown field "region"`},
		{`{match: "*"}`, "want a list"},
	} {
		setenv(t, map[string]string{"PLANA_AUDIT_ALLOW": tc.body})
		_, err := Load(Options{Path: writeFile(t, "")})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), KeyAuditAllow) {
			t.Errorf("%s: want %q naming %s, got %v", tc.body, tc.want, KeyAuditAllow, err)
		}
	}
}
