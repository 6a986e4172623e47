// Package k8s keeps the keys of a rotation in a Kubernetes Secret: the
// data keys PLANA_KEY and PLANA_KEY_NEW, beside whatever else the Secret
// holds. It finds the cluster and the credentials as kubectl does
// (KUBECONFIG or ~/.kube/config, contexts, exec credential plugins, the
// in-cluster service account in a pod) and can restart a workload after a
// write, as `kubectl rollout restart` does, for pods that read the Secret
// through their environment.
//
// It speaks to the API server through client-go's REST client with a
// scheme of its own holding only core/v1 and apps/v1: client-go's typed
// clients register every API group of Kubernetes when plana starts, which
// would cost every plana command (even `plana version`) about 20 ms and
// the binary 20 MB (docs/benchmarks.md).
package k8s

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
)

// Options are what a caller may set beyond the target itself.
type Options struct {
	// Kubeconfig is a kubeconfig file to use, as kubectl's --kubeconfig;
	// empty: KUBECONFIG, then ~/.kube/config, then the pod's service
	// account when running in a cluster.
	Kubeconfig string
	// RolloutTimeout bounds the wait for a rollout; zero: 5 minutes.
	RolloutTimeout time.Duration
}

// Secret is one Kubernetes Secret, with the workload it restarts.
type Secret struct {
	ref     Ref
	context string // the kubeconfig context in use, for messages
	core    *rest.RESTClient
	apps    *rest.RESTClient
	timeout time.Duration
}

// codecs is built on first use, not at start-up: plana's other commands
// must not pay for it.
var codecs = sync.OnceValue(func() serializer.CodecFactory {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := appsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(s)
})

// New parses spec (the part after "k8s:") and reads the kubeconfig;
// nothing is sent to the cluster yet.
func New(spec string, opts Options) (*Secret, error) {
	ref, err := Parse(spec)
	if err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = opts.Kubeconfig
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: ref.Context})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: finding the cluster: %w: check `kubectl config get-contexts` (KUBECONFIG, the context's name)", ref, err)
	}
	if cfg.ExecProvider != nil {
		// client-go gives a credential plugin this process's whole
		// environment, then the kubeconfig's variables, the last winning:
		// an empty PLANA_TOKEN keeps the management key from it.
		cfg.ExecProvider.Env = append(cfg.ExecProvider.Env, clientcmdapi.ExecEnvVar{Name: "PLANA_TOKEN", Value: ""})
	}
	s := &Secret{ref: ref, context: ref.Context, timeout: opts.RolloutTimeout}
	if s.context == "" {
		if raw, err := loader.RawConfig(); err == nil && raw.CurrentContext != "" {
			s.context = raw.CurrentContext
		} else {
			s.context = "in-cluster"
		}
	}
	if s.timeout == 0 {
		s.timeout = 5 * time.Minute
	}
	if s.core, err = restFor(cfg, corev1.SchemeGroupVersion, "/api"); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if s.apps, err = restFor(cfg, appsv1.SchemeGroupVersion, "/apis"); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return s, nil
}

func restFor(cfg *rest.Config, gv schema.GroupVersion, apiPath string) (*rest.RESTClient, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &gv
	c.APIPath = apiPath
	c.NegotiatedSerializer = codecs().WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	return rest.RESTClientFor(c)
}

func (s *Secret) String() string { return s.ref.String() }

// Rollout is the workload restarted after a write, if any.
func (s *Secret) Rollout() *Workload { return s.ref.Rollout }

func (s *Secret) get(ctx context.Context) (*corev1.Secret, error) {
	var sec corev1.Secret
	err := s.core.Get().Namespace(s.ref.Namespace).Resource("secrets").Name(s.ref.Name).Do(ctx).Into(&sec)
	if err != nil {
		return nil, s.explain("reading", err)
	}
	return &sec, nil
}

// explain says what to do about an API error. The API server's messages
// name objects and fields, never Secret data.
func (s *Secret) explain(doing string, err error) error {
	where := fmt.Sprintf("Secret %s in namespace %s (context %s)", s.ref.Name, s.ref.Namespace, s.context)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s: %s does not exist: create it first (`kubectl create secret generic %s -n %s`); plana does not create Secrets, so that a mistyped name fails instead of deploying where no pod reads it", s, where, s.ref.Name, s.ref.Namespace)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %s %s is forbidden: the credentials need get and update on it (`kubectl auth can-i update secret/%s -n %s`): %w", s, doing, where, s.ref.Name, s.ref.Namespace, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the cluster did not accept the credentials of context %s: log in again (`kubectl get secret %s -n %s` should work): %w", s, s.context, s.ref.Name, s.ref.Namespace, err)
	}
	return fmt.Errorf("%s: %s %s: %w", s, doing, where, err)
}

// Get returns the named data keys; an absent key is absent from the map.
func (s *Secret) Get(ctx context.Context, names ...string) (map[string]string, error) {
	sec, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	got := map[string]string{}
	for _, n := range names {
		if v, ok := sec.Data[n]; ok {
			got[n] = string(v)
		}
	}
	return got, nil
}

// Put sets and removes data keys in one update, every other key as it
// was. The update carries the resourceVersion it read, so a change made by
// someone else in between is never overwritten: the update is refused and
// made again on the new version.
func (s *Secret) Put(ctx context.Context, set map[string]string, unset ...string) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sec, err := s.get(ctx)
		if err != nil {
			return err
		}
		if sec.Immutable != nil && *sec.Immutable {
			return fmt.Errorf("%s: the Secret is immutable: plana can only write a Secret without `immutable: true`", s)
		}
		data := maps.Clone(sec.Data)
		if data == nil {
			data = map[string][]byte{}
		}
		for n, v := range set {
			data[n] = []byte(v)
		}
		for _, n := range unset {
			delete(data, n)
		}
		if maps.EqualFunc(data, sec.Data, func(a, b []byte) bool { return string(a) == string(b) }) {
			return nil
		}
		sec.Data = data
		err = s.core.Put().Namespace(s.ref.Namespace).Resource("secrets").Name(s.ref.Name).Body(sec).Do(ctx).Error()
		if err != nil && !apierrors.IsConflict(err) {
			return s.explain("updating", err)
		}
		return err
	})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("%s: the Secret kept changing while plana updated it; nothing was written: run again: %w", s, err)
	}
	return err
}
