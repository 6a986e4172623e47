// Command storekit is the store tests' side of a secret store, written as
// the automation and its operator would, with each store's own client and
// none of plana's: the Kubernetes clientset, the AWS SDK, and the sops and
// pass commands.
//
//	storekit init TARGET <ENVFILE   create the store with PLANA_KEY from ENVFILE
//	                                 (and OTHER=kept beside it)
//	storekit read TARGET            print PLANA_KEY=… and PLANA_KEY_NEW=… as
//	                                 the automation reads them (its --key-cmd)
//	storekit show TARGET            print what the store holds, keys by prefix
//	                                 only: "NAME VALUE" lines, and "note LINE"
//	                                 for each line pass keeps under PLANA_KEY
//
// TARGET is written as plana's --to. Keys never reach argv: they come on
// stdin and go to stdout (read) or to the store's own client.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/subosito/gotenv"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/target/k8s"
)

const (
	keySlot    = "PLANA_KEY"
	newKeySlot = "PLANA_KEY_NEW"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: storekit init|read|show TARGET")
		os.Exit(2)
	}
	// The store's side never holds the management key; a script's
	// PLANA_TOKEN reaching a credential_process from here would blur the
	// test that none reaches it from plana.
	os.Unsetenv("PLANA_TOKEN")
	if err := run(context.Background(), os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "storekit: "+client.Redact(err.Error()))
		os.Exit(1)
	}
}

// store is one kind's side: what init writes, and every value it holds.
type store interface {
	init(ctx context.Context, key string) error
	values(ctx context.Context) (map[string]string, error)
}

func run(ctx context.Context, verb, to string) error {
	kind, arg, _ := strings.Cut(to, ":")
	var s store
	switch kind {
	case "k8s":
		ref, err := k8s.Parse(arg)
		if err != nil {
			return err
		}
		s = &kube{ref: ref}
	case "aws-sm":
		s = &awsSM{id: arg}
	case "aws-ssm":
		s = &awsSSM{path: arg}
	case "sops":
		s = sopsFile(arg)
	case "pass":
		s = passPath(arg)
	default:
		return fmt.Errorf("unknown store %q", to)
	}
	switch verb {
	case "init":
		env, err := gotenv.StrictParse(os.Stdin)
		if err != nil || env[keySlot] == "" {
			return errors.New("init reads an env file holding PLANA_KEY on stdin")
		}
		return s.init(ctx, env[keySlot])
	case "read":
		v, err := s.values(ctx)
		if err != nil {
			return err
		}
		for _, n := range []string{newKeySlot, keySlot} {
			if v[n] != "" {
				fmt.Printf("%s=%s\n", n, v[n])
			}
		}
		return nil
	case "show":
		v, err := s.values(ctx)
		if err != nil {
			return err
		}
		for _, n := range slices.Sorted(maps.Keys(v)) {
			val := v[n]
			if p := client.PrefixOf(val); p != "" {
				val = p
			} else if strings.HasPrefix(n, "note") {
				val = client.Redact(val)
			}
			fmt.Printf("%s %s\n", n, val)
		}
		return nil
	}
	return fmt.Errorf("unknown verb %q", verb)
}

// kube is a Secret, read through the typed clientset as a workload's
// operator would.
type kube struct{ ref k8s.Ref }

func (k *kube) client() (*kubernetes.Clientset, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.ref.Context}).ClientConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func (k *kube) init(ctx context.Context, key string) error {
	c, err := k.client()
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k.ref.Namespace}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: k.ref.Name}, StringData: map[string]string{keySlot: key, "OTHER": "kept"}}
	if _, err := c.CoreV1().Secrets(k.ref.Namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		return err
	}
	if w := k.ref.Rollout; w != nil {
		// No nodes run pods here: a Deployment of no replicas completes
		// each rollout once the controller has seen it.
		zero, labels := int32(0), map[string]string{"app": w.Name}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: w.Name}, Spec: appsv1.DeploymentSpec{
			Replicas: &zero, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "sync", Image: "example.invalid/stock-sync:1",
					EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: k.ref.Name}}}}}}}}}}
		if _, err := c.AppsV1().Deployments(k.ref.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func (k *kube) values(ctx context.Context) (map[string]string, error) {
	c, err := k.client()
	if err != nil {
		return nil, err
	}
	sec, err := c.CoreV1().Secrets(k.ref.Namespace).Get(ctx, k.ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for n, v := range sec.Data {
		out[n] = string(v)
	}
	if w := k.ref.Rollout; w != nil {
		d, err := c.AppsV1().Deployments(k.ref.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		out["restarted"] = fmt.Sprint(d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] != "")
	}
	return out, nil
}

func awsConfig(ctx context.Context) (aws.Config, error) { return config.LoadDefaultConfig(ctx) }

// awsSM is a Secrets Manager secret's JSON fields.
type awsSM struct{ id string }

func (s *awsSM) init(ctx context.Context, key string) error {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{keySlot: key, "OTHER": "kept"})
	_, err = secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(s.id), SecretString: aws.String(string(body))})
	return err
}

func (s *awsSM) values(ctx context.Context) (map[string]string, error) {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.id)})
	if err != nil {
		return nil, err
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
		return nil, errors.New("the SecretString is not a JSON object of strings")
	}
	return v, nil
}

// awsSSM is SecureString parameters under a path.
type awsSSM struct{ path string }

func (s *awsSSM) init(ctx context.Context, key string) error {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return err
	}
	api := ssm.NewFromConfig(cfg)
	for n, v := range map[string]string{keySlot: key, "OTHER": "kept"} {
		if _, err := api.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(s.path + "/" + n), Value: aws.String(v), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
			return err
		}
	}
	return nil
}

func (s *awsSSM) values(ctx context.Context) (map[string]string, error) {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	out, err := ssm.NewFromConfig(cfg).GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String(s.path), WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	v := map[string]string{}
	for _, p := range out.Parameters {
		v[strings.TrimPrefix(aws.ToString(p.Name), s.path+"/")] = aws.ToString(p.Value)
	}
	return v, nil
}

// sopsFile is a dotenv file encrypted with sops, its rule from the
// .sops.yaml beside it.
type sopsFile string

func (f sopsFile) init(ctx context.Context, key string) error {
	out, err := tool(ctx, filepath.Dir(string(f)), keySlot+"="+key+"\nOTHER=kept\n", "sops", "encrypt", "--input-type", "dotenv", "--output-type", "dotenv", "--filename-override", string(f))
	if err != nil {
		return err
	}
	return os.WriteFile(string(f), out, 0o600)
}

func (f sopsFile) values(ctx context.Context) (map[string]string, error) {
	out, err := tool(ctx, "", "", "sops", "decrypt", "--input-type", "dotenv", "--output-type", "dotenv", string(f))
	if err != nil {
		return nil, err
	}
	return gotenv.StrictParse(bytes.NewReader(out))
}

// passPath is a password store's entries under a path.
type passPath string

func (p passPath) init(ctx context.Context, key string) error {
	_, err := tool(ctx, "", key+"\n", "pass", "insert", "--multiline", string(p)+"/"+keySlot)
	return err
}

// values reads PLANA_KEY_NEW before PLANA_KEY, as an automation must: the
// two entries are two reads, and plana's finalize writes the new key under
// PLANA_KEY before it removes PLANA_KEY_NEW. Read the other way round, a
// finalize between the reads leaves the old key alone.
func (p passPath) values(ctx context.Context) (map[string]string, error) {
	v := map[string]string{}
	for _, n := range []string{newKeySlot, keySlot} {
		out, err := tool(ctx, "", "", "pass", "show", string(p)+"/"+n)
		if err != nil {
			if strings.Contains(err.Error(), "is not in the password store") {
				continue
			}
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for i := 0; sc.Scan(); i++ {
			if i == 0 {
				v[n] = sc.Text()
			} else if n == keySlot && sc.Text() != "" {
				v[fmt.Sprintf("note%d", i)] = sc.Text()
			}
		}
	}
	return v, nil
}

// tool runs a store's command with stdin, in dir when given; its stderr
// goes into the error.
func tool(ctx context.Context, dir, stdin string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", name, args[0], err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
