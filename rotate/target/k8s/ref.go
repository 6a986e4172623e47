package k8s

import (
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Ref is a target as written after "k8s:":
// [CONTEXT@]NAMESPACE/NAME[?rollout=KIND/NAME].
type Ref struct {
	Context   string // a kubeconfig context; empty: the current one
	Namespace string
	Name      string
	Rollout   *Workload // restarted after each write when set
}

// Workload is the workload a rollout restarts.
type Workload struct {
	Kind string // deployment, statefulset or daemonset
	Name string
}

func (w Workload) String() string { return w.Kind + "/" + w.Name }

func (r Ref) String() string {
	s := "k8s:"
	if r.Context != "" {
		s += r.Context + "@"
	}
	s += r.Namespace + "/" + r.Name
	if r.Rollout != nil {
		s += "?rollout=" + r.Rollout.String()
	}
	return s
}

// kinds maps what kubectl accepts for a workload kind to its name here.
var kinds = map[string]string{
	"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
	"statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
	"daemonset": "daemonset", "daemonsets": "daemonset", "ds": "daemonset",
}

// Parse reads a target written after "k8s:".
func Parse(s string) (Ref, error) {
	const form = "k8s:[CONTEXT@]NAMESPACE/NAME[?rollout=deployment/NAME]"
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("k8s:%s: %s; the form is %s", s, why, form)
	}
	var r Ref
	rest, query, hasQuery := strings.Cut(s, "?")
	// Context names may hold @ themselves (kubeadm's "kubernetes-admin@kubernetes");
	// namespaces and names never do.
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if at == 0 {
			return bad("the context before @ is empty")
		}
		r.Context, rest = rest[:at], rest[at+1:]
	}
	ns, name, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("the namespace is missing")
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return bad(fmt.Sprintf("namespace %q: %s", ns, errs[0]))
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return bad(fmt.Sprintf("Secret name %q: %s", name, errs[0]))
	}
	r.Namespace, r.Name = ns, name
	if !hasQuery {
		return r, nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return bad("the part after ? is not KEY=VALUE")
	}
	for k, v := range q {
		if k != "rollout" {
			return bad(fmt.Sprintf("unknown option %q (there is only rollout)", k))
		}
		if len(v) != 1 {
			return bad("one rollout per target: give several targets for several workloads")
		}
	}
	kind, wname, ok := strings.Cut(q.Get("rollout"), "/")
	if !ok || kinds[strings.ToLower(kind)] == "" {
		return bad("rollout takes deployment/NAME, statefulset/NAME or daemonset/NAME")
	}
	if errs := validation.IsDNS1123Subdomain(wname); len(errs) > 0 {
		return bad(fmt.Sprintf("workload name %q: %s", wname, errs[0]))
	}
	r.Rollout = &Workload{Kind: kinds[strings.ToLower(kind)], Name: wname}
	return r, nil
}
