package k8s

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Ref{
		"prod/stock-sync":                          {Namespace: "prod", Name: "stock-sync"},
		"eu-1@prod/stock-sync":                     {Context: "eu-1", Namespace: "prod", Name: "stock-sync"},
		"arn:aws:eks:eu-west-1:1:cluster/x@prod/s": {Context: "arn:aws:eks:eu-west-1:1:cluster/x", Namespace: "prod", Name: "s"},
		"kubernetes-admin@kubernetes@prod/s":       {Context: "kubernetes-admin@kubernetes", Namespace: "prod", Name: "s"},
		"prod/s?rollout=deployment/sync":           {Namespace: "prod", Name: "s", Rollout: &Workload{"deployment", "sync"}},
		"prod/s?rollout=sts/db":                    {Namespace: "prod", Name: "s", Rollout: &Workload{"statefulset", "db"}},
		"prod/s?rollout=DaemonSets/agent":          {Namespace: "prod", Name: "s", Rollout: &Workload{"daemonset", "agent"}},
	} {
		got, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if got.Context != want.Context || got.Namespace != want.Namespace || got.Name != want.Name ||
			(got.Rollout == nil) != (want.Rollout == nil) || got.Rollout != nil && *got.Rollout != *want.Rollout {
			t.Errorf("Parse(%q) = %+v, want %+v", in, got, want)
		}
	}
	for in, why := range map[string]string{
		"stock-sync":                      "namespace is missing",
		"@prod/s":                         "context before @ is empty",
		"Prod/s":                          "namespace",
		"prod/S_x":                        "Secret name",
		"prod/s?rollout=pod/x":            "rollout takes",
		"prod/s?rollout=deployment/x&x=1": "unknown option",
		"prod/s?rollout=deployment/a&rollout=deployment/b": "one rollout",
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "the form is") {
			t.Errorf("Parse(%q) = %v, want an error about %q with the form", in, err, why)
		}
	}
	r, _ := Parse("eu-1@prod/s?rollout=sts/db")
	if r.String() != "k8s:eu-1@prod/s?rollout=statefulset/db" {
		t.Errorf("String() = %q", r.String())
	}
}
