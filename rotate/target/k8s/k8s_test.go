package k8s_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/plana-cli/plana/internal/storetest"
	"github.com/plana-cli/plana/rotate/target/k8s"
)

// TestKubernetes runs every case against one real control plane: etcd, a
// kube-apiserver, and a kube-controller-manager whose controllers move
// rollouts on (there are no nodes, so pods never run).
func TestKubernetes(t *testing.T) {
	cluster := storetest.Kubernetes(t, true)
	kubeconfig := cluster.Kubeconfig(t, storetest.ContextAdmin)
	admin := adminClient(t, kubeconfig)
	ctx := context.Background()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("slots", func(t *testing.T) { testSlots(t, admin, kubeconfig) })
	t.Run("KUBECONFIG and contexts", func(t *testing.T) { testContexts(t, cluster, admin) })
	t.Run("exec credential plugin", func(t *testing.T) { testExecPlugin(t, cluster, admin) })
	t.Run("refusals", func(t *testing.T) { testRefusals(t, admin, kubeconfig) })
	t.Run("conflict", func(t *testing.T) { testConflict(t, cluster, admin) })
	t.Run("rollout", func(t *testing.T) { testRollout(t, admin, kubeconfig) })
	t.Run("server logs", func(t *testing.T) {
		storetest.AssertNoKeys(t, "the control plane's output", storetest.ServerLogs(t))
	})
}

func adminClient(t *testing.T, kubeconfig string) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func createSecret(t *testing.T, admin *kubernetes.Clientset, name string, data map[string]string) {
	t.Helper()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "prod", Labels: map[string]string{"app": "stock-sync"}}, StringData: data}
	if _, err := admin.CoreV1().Secrets("prod").Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func testSlots(t *testing.T, admin *kubernetes.Clientset, kubeconfig string) {
	ctx := context.Background()
	oldKey, newKey := storetest.NewKey(t), storetest.NewKey(t)
	createSecret(t, admin, "stock-sync", map[string]string{"PLANA_KEY": oldKey, "DB_PASSWORD": "hunter2hunter2"})
	s, err := k8s.New("prod/stock-sync", k8s.Options{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Rotation(t, s, "k8s:prod/stock-sync", oldKey, newKey, nil)
	sec, err := admin.CoreV1().Secrets("prod").Get(ctx, "stock-sync", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["DB_PASSWORD"]) != "hunter2hunter2" || sec.Labels["app"] != "stock-sync" || len(sec.Data) != 2 {
		t.Errorf("the Secret's other keys or labels changed: %d keys, labels %v", len(sec.Data), sec.Labels)
	}
	// Nothing to change: no update, so the resourceVersion stays.
	if err := s.Put(ctx, map[string]string{"PLANA_KEY": newKey}, "PLANA_KEY_NEW"); err != nil {
		t.Fatal(err)
	}
	again, _ := admin.CoreV1().Secrets("prod").Get(ctx, "stock-sync", metav1.GetOptions{})
	if again.ResourceVersion != sec.ResourceVersion {
		t.Error("a write that changed nothing updated the Secret")
	}
}

func testContexts(t *testing.T, cluster *storetest.Cluster, admin *kubernetes.Clientset) {
	ctx := context.Background()
	key := storetest.NewKey(t)
	createSecret(t, admin, "contexts", map[string]string{"PLANA_KEY": key})
	// The current context is the stranger's: the default fails with what
	// to do, CONTEXT@ picks the admin's, and KUBECONFIG is how it is found.
	t.Setenv("KUBECONFIG", cluster.Kubeconfig(t, storetest.ContextStranger))
	stranger, err := k8s.New("prod/contexts", k8s.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stranger.Get(ctx, "PLANA_KEY")
	if err == nil || !strings.Contains(err.Error(), "did not accept the credentials of context "+storetest.ContextStranger) {
		t.Errorf("with a token the cluster does not know: %v", err)
	}
	s, err := k8s.New(storetest.ContextAdmin+"@prod/contexts", k8s.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "PLANA_KEY")
	if err != nil || got["PLANA_KEY"] != key {
		t.Errorf("through CONTEXT@: %d keys, %v", len(got), err)
	}
	if _, err := k8s.New("nowhere@prod/contexts", k8s.Options{}); err == nil || !strings.Contains(err.Error(), "kubectl config get-contexts") {
		t.Errorf("an unknown context: %v", err)
	}
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := k8s.New("prod/contexts", k8s.Options{}); err == nil || !strings.Contains(err.Error(), "kubectl config") {
		t.Errorf("without any kubeconfig: %v", err)
	}
}

// testExecPlugin: credentials from an exec plugin, as EKS, GKE and AKS
// give them, and the plugin never sees the management key.
func testExecPlugin(t *testing.T, cluster *storetest.Cluster, admin *kubernetes.Clientset) {
	ctx := context.Background()
	key := storetest.NewKey(t)
	createSecret(t, admin, "exec", map[string]string{"PLANA_KEY": key})
	dir := t.TempDir()
	seen := filepath.Join(dir, "plugin-env")
	plugin := filepath.Join(dir, "plugin")
	script := "#!/bin/sh\nenv > '" + seen + "'\nprintf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s\"}}' '" + cluster.Token + "'\n"
	if err := os.WriteFile(plugin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	ca, err := os.ReadFile(cluster.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: %s
      interactiveMode: Never
contexts:
- name: via-plugin
  context: {cluster: c, user: u}
current-context: via-plugin
`, cluster.Server, base64.StdEncoding.EncodeToString(ca), plugin)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PLANA_TOKEN", storetest.NewKey(t))
	s, err := k8s.New("prod/exec", k8s.Options{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "PLANA_KEY")
	if err != nil || got["PLANA_KEY"] != key {
		t.Fatalf("through the exec plugin: %d keys, %v", len(got), err)
	}
	env, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal("the plugin never ran")
	}
	storetest.AssertNoKeys(t, "the credential plugin's environment", string(env))
}

func testRefusals(t *testing.T, admin *kubernetes.Clientset, kubeconfig string) {
	ctx := context.Background()
	key := storetest.NewKey(t)
	missing, err := k8s.New("prod/missing", k8s.Options{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Get(ctx, "PLANA_KEY"); err == nil || !strings.Contains(err.Error(), "kubectl create secret generic missing -n prod") {
		t.Errorf("reading a missing Secret: %v", err)
	}
	err = missing.Put(ctx, map[string]string{"PLANA_KEY_NEW": key})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("writing a missing Secret: %v", err)
	}
	if _, err := admin.CoreV1().Secrets("prod").Get(ctx, "missing", metav1.GetOptions{}); err == nil {
		t.Error("a write created the missing Secret")
	}

	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "frozen", Namespace: "prod"}, Immutable: ptrTo(true), StringData: map[string]string{"PLANA_KEY": "old"}}
	if _, err := admin.CoreV1().Secrets("prod").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	frozen, _ := k8s.New("prod/frozen", k8s.Options{Kubeconfig: kubeconfig})
	err = frozen.Put(ctx, map[string]string{"PLANA_KEY_NEW": key})
	if err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("writing an immutable Secret: %v", err)
	}
	storetest.AssertNoKeys(t, "the error", err.Error())
}

// testConflict: a change made by someone else between plana's read and its
// update is not overwritten: the update is refused by the API server and
// made again on the new version.
func testConflict(t *testing.T, cluster *storetest.Cluster, admin *kubernetes.Clientset) {
	ctx := context.Background()
	createSecret(t, admin, "busy", map[string]string{"PLANA_KEY": "old"})
	// A proxy in front of the API server lets someone else write the Secret
	// after plana's first read, as a racing controller would.
	var raced atomic.Bool
	proxy := cluster.Interpose(t, func(r *http.Request) {
		if r.Method == http.MethodPut && raced.CompareAndSwap(false, true) {
			sec, err := admin.CoreV1().Secrets("prod").Get(ctx, "busy", metav1.GetOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			sec.Data["OTHER"] = []byte("written meanwhile")
			if _, err := admin.CoreV1().Secrets("prod").Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
				t.Error(err)
			}
		}
	})
	s, err := k8s.New("prod/busy", k8s.Options{Kubeconfig: proxy})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, map[string]string{"PLANA_KEY_NEW": "new"}); err != nil {
		t.Fatal(err)
	}
	if !raced.Load() {
		t.Fatal("the race never happened")
	}
	sec, _ := admin.CoreV1().Secrets("prod").Get(ctx, "busy", metav1.GetOptions{})
	if string(sec.Data["OTHER"]) != "written meanwhile" || string(sec.Data["PLANA_KEY_NEW"]) != "new" {
		t.Errorf("after the race the Secret holds %d keys: one write was lost", len(sec.Data))
	}
}

func testRollout(t *testing.T, admin *kubernetes.Clientset, kubeconfig string) {
	ctx := context.Background()
	labels := map[string]string{"app": "sync"}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "sync", Image: "example.invalid/sync:1"}}},
	}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	apps := admin.AppsV1()
	mustCreate := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := apps.Deployments("prod").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "idle"},
		Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](0), Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = apps.Deployments("prod").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "stuck"},
		Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](1), Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = apps.Deployments("prod").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "paused"},
		Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](0), Paused: true, Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = apps.StatefulSets("prod").Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptrTo[int32](0), Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = apps.DaemonSets("prod").Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
	mustCreate(err)
	createSecret(t, admin, "rolled", map[string]string{"PLANA_KEY": "old"})

	for _, tc := range []struct{ target, get string }{
		{"prod/rolled?rollout=deployment/idle", "deployment"},
		{"prod/rolled?rollout=sts/db", "statefulset"},
		{"prod/rolled?rollout=daemonset/agent", "daemonset"},
	} {
		s, err := k8s.New(tc.target, k8s.Options{Kubeconfig: kubeconfig, RolloutTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Restart(ctx); err != nil {
			t.Fatalf("%s: %v", tc.target, err)
		}
		// The wait ended through the controller: it saw the new template.
		var gen, observed int64
		var ann map[string]string
		switch tc.get {
		case "deployment":
			d, _ := apps.Deployments("prod").Get(ctx, "idle", metav1.GetOptions{})
			gen, observed, ann = d.Generation, d.Status.ObservedGeneration, d.Spec.Template.Annotations
		case "statefulset":
			d, _ := apps.StatefulSets("prod").Get(ctx, "db", metav1.GetOptions{})
			gen, observed, ann = d.Generation, d.Status.ObservedGeneration, d.Spec.Template.Annotations
			if d.Status.UpdateRevision != d.Status.CurrentRevision {
				t.Errorf("statefulset: the wait ended on revision %s, still updating to %s", d.Status.CurrentRevision, d.Status.UpdateRevision)
			}
		case "daemonset":
			d, _ := apps.DaemonSets("prod").Get(ctx, "agent", metav1.GetOptions{})
			gen, observed, ann = d.Generation, d.Status.ObservedGeneration, d.Spec.Template.Annotations
		}
		if _, ok := ann["kubectl.kubernetes.io/restartedAt"]; !ok || gen < 2 {
			t.Errorf("%s: not restarted (generation %d, annotations %v)", tc.target, gen, ann)
		}
		if observed < gen {
			t.Errorf("%s: the wait ended before the controller saw generation %d (observed %d)", tc.target, gen, observed)
		}
	}
	// A ReplicaSet of the restarted template: the controller rolled it out.
	rs, err := apps.ReplicaSets("prod").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	restarted := 0
	for _, r := range rs.Items {
		owned := len(r.OwnerReferences) == 1 && r.OwnerReferences[0].Name == "idle"
		if owned && r.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] != "" {
			restarted++
		}
	}
	if restarted != 1 {
		t.Errorf("%d ReplicaSets of deployment/idle carry the restart, want 1", restarted)
	}

	// No kubelet: one pod never becomes available, and the wait says so.
	stuck, _ := k8s.New("prod/rolled?rollout=deployment/stuck", k8s.Options{Kubeconfig: kubeconfig, RolloutTimeout: 3 * time.Second})
	err = stuck.Restart(ctx)
	if err == nil || !strings.Contains(err.Error(), "did not complete within 3s") || !strings.Contains(err.Error(), "kubectl rollout status deployment/stuck -n prod") {
		t.Errorf("a rollout that cannot complete: %v", err)
	}
	paused, _ := k8s.New("prod/rolled?rollout=deployment/paused", k8s.Options{Kubeconfig: kubeconfig})
	if err := paused.Restart(ctx); err == nil || !strings.Contains(err.Error(), "kubectl rollout resume") {
		t.Errorf("a paused deployment: %v", err)
	}
	d, _ := apps.Deployments("prod").Get(ctx, "paused", metav1.GetOptions{})
	if d.Generation != 1 {
		t.Error("the paused deployment was patched")
	}
	gone, _ := k8s.New("prod/rolled?rollout=deployment/gone", k8s.Options{Kubeconfig: kubeconfig})
	if err := gone.Restart(ctx); err == nil || !strings.Contains(err.Error(), "deployment/gone") {
		t.Errorf("a missing deployment: %v", err)
	}
	plain, _ := k8s.New("prod/rolled", k8s.Options{Kubeconfig: kubeconfig})
	if err := plain.Restart(ctx); err != nil {
		t.Errorf("without a rollout option, Restart: %v", err)
	}
}

func ptrTo[T any](v T) *T { return &v }
