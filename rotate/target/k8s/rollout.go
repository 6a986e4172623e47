package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// restartedAt is the pod template annotation `kubectl rollout restart`
// sets: a changed template is what makes the controller replace the pods.
const restartedAt = "kubectl.kubernetes.io/restartedAt"

// pollInterval is how often a rollout's progress is read.
const pollInterval = time.Second

// Restart restarts the workload named in the target's rollout option, as
// `kubectl rollout restart` does, and waits until its rollout is complete,
// as `kubectl rollout status` judges it, or the rollout timeout passes.
// Without a rollout option it does nothing.
func (s *Secret) Restart(ctx context.Context) error {
	w := s.ref.Rollout
	if w == nil {
		return nil
	}
	obj, resource := workloadObject(w.Kind)
	req := func(r *rest.Request) *rest.Request {
		return r.Namespace(s.ref.Namespace).Resource(resource).Name(w.Name)
	}
	if err := req(s.apps.Get()).Do(ctx).Into(obj); err != nil {
		return s.rolloutError(w, "reading", err)
	}
	if err := restartable(obj); err != nil {
		return fmt.Errorf("%s: %s %w", s, w, err)
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{restartedAt: time.Now().Format(time.RFC3339)}},
	}}})
	if err != nil {
		return err
	}
	if err := req(s.apps.Patch(types.StrategicMergePatchType)).Body(patch).Do(ctx).Into(obj); err != nil {
		return s.rolloutError(w, "restarting", err)
	}

	deadline := time.NewTimer(s.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		done, progress, err := rolloutStatus(obj)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", s, w, err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for the rollout of %s: %w", s, w, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%s: the rollout of %s did not complete within %s (%s): see `kubectl rollout status %s -n %s`; the Secret itself is written", s, w, s.timeout, progress, w, s.ref.Namespace)
		case <-tick.C:
		}
		if err := req(s.apps.Get()).Do(ctx).Into(obj); err != nil {
			return s.rolloutError(w, "reading", err)
		}
	}
}

func (s *Secret) rolloutError(w *Workload, doing string, err error) error {
	return fmt.Errorf("%s: %s %s in namespace %s (context %s): %w: the credentials need get and patch on it (`kubectl auth can-i patch %s -n %s`)",
		s, doing, w, s.ref.Namespace, s.context, err, w, s.ref.Namespace)
}

func workloadObject(kind string) (runtime.Object, string) {
	switch kind {
	case "statefulset":
		return &appsv1.StatefulSet{}, "statefulsets"
	case "daemonset":
		return &appsv1.DaemonSet{}, "daemonsets"
	}
	return &appsv1.Deployment{}, "deployments"
}

// restartable refuses what `kubectl rollout restart` or `rollout status`
// refuse: a paused Deployment would not roll out, and a workload updated
// OnDelete replaces no pod until someone deletes them.
func restartable(obj runtime.Object) error {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		if o.Spec.Paused {
			return fmt.Errorf("is paused: resume it (`kubectl rollout resume`) and run again")
		}
	case *appsv1.StatefulSet:
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
			return fmt.Errorf("is updated OnDelete: its pods restart only when deleted; use RollingUpdate, or drop the rollout option and restart it yourself")
		}
	case *appsv1.DaemonSet:
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
			return fmt.Errorf("is updated OnDelete: its pods restart only when deleted; use RollingUpdate, or drop the rollout option and restart it yourself")
		}
	}
	return nil
}

// rolloutStatus judges a rollout as `kubectl rollout status` does
// (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go), which is not
// worth linking that package for: done, or how far it is.
func rolloutStatus(obj runtime.Object) (done bool, progress string, err error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		st := o.Status
		if o.Generation > st.ObservedGeneration {
			return false, "waiting for the controller to see the restart", nil
		}
		for _, c := range st.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
				return false, "", fmt.Errorf("the rollout exceeded its progress deadline: see `kubectl describe deployment %s`", o.Name)
			}
		}
		want := int32(1)
		if o.Spec.Replicas != nil {
			want = *o.Spec.Replicas
		}
		progress = fmt.Sprintf("%d of %d pods updated, %d available, %d in all", st.UpdatedReplicas, want, st.AvailableReplicas, st.Replicas)
		return st.UpdatedReplicas >= want && st.Replicas <= st.UpdatedReplicas && st.AvailableReplicas >= st.UpdatedReplicas, progress, nil
	case *appsv1.StatefulSet:
		st := o.Status
		if st.ObservedGeneration == 0 || o.Generation > st.ObservedGeneration {
			return false, "waiting for the controller to see the restart", nil
		}
		want := int32(1)
		if o.Spec.Replicas != nil {
			want = *o.Spec.Replicas
		}
		progress = fmt.Sprintf("%d of %d pods ready, %d updated", st.ReadyReplicas, want, st.UpdatedReplicas)
		if st.ReadyReplicas < want {
			return false, progress, nil
		}
		if ru := o.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
			return st.UpdatedReplicas >= want-*ru.Partition, progress, nil
		}
		return st.UpdateRevision == st.CurrentRevision, progress, nil
	case *appsv1.DaemonSet:
		st := o.Status
		if o.Generation > st.ObservedGeneration {
			return false, "waiting for the controller to see the restart", nil
		}
		progress = fmt.Sprintf("%d of %d pods updated, %d available", st.UpdatedNumberScheduled, st.DesiredNumberScheduled, st.NumberAvailable)
		return st.UpdatedNumberScheduled >= st.DesiredNumberScheduled && st.NumberAvailable >= st.DesiredNumberScheduled, progress, nil
	}
	return false, "", fmt.Errorf("cannot follow the rollout of a %T", obj)
}
