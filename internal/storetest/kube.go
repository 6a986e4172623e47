package storetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a real Kubernetes control plane on loopback: etcd, a
// kube-apiserver that knows one token user in system:masters, and, when
// asked for, a kube-controller-manager running the workload controllers
// (Deployment, ReplicaSet, StatefulSet, DaemonSet), so a rollout really
// progresses. There are no nodes: pods stay Pending.
type Cluster struct {
	Server string // https://127.0.0.1:PORT
	CAFile string // the CA that signed the server's certificate
	Token  string // a bearer token of a system:masters user
	dir    string
}

// Contexts in the kubeconfigs Cluster writes: ContextAdmin reaches the
// cluster as the system:masters user; ContextStranger reaches it with a
// token the server does not know.
const (
	ContextAdmin    = "plana-test"
	ContextStranger = "plana-stranger"
)

// Kubernetes starts a control plane for the test. withControllers adds a
// kube-controller-manager.
func Kubernetes(t testing.TB, withControllers bool) *Cluster {
	t.Helper()
	etcdBin := onPath(t, "k8s", "etcd")
	apiserver := built(t, "k8s", "kubernetes", "KUBERNETES_VERSION", "kube-apiserver")
	kcm := ""
	if withControllers {
		kcm = built(t, "k8s", "kubernetes", "KUBERNETES_VERSION", "kube-controller-manager")
	}
	dir := t.TempDir()
	c := &Cluster{dir: dir, Token: randomToken(t)}

	etcdPort, peerPort := FreePort(t), FreePort(t)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	etcd := start(t, "etcd", baseEnv(), etcdBin,
		"--name=plana-test", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=plana-test="+peerURL, "--log-level=warn")
	etcd.waitReady(t, 30*time.Second, answersOK(http.DefaultClient, etcdURL+"/health", ""))

	certFile, keyFile := c.writeTLS(t)
	saKey := writeServiceAccountKey(t, dir)
	tokens := filepath.Join(dir, "tokens.csv")
	writeFile(t, tokens, c.Token+`,plana-admin,plana-admin,"system:masters"`+"\n")
	port := FreePort(t)
	c.Server = "https://127.0.0.1:" + strconv.Itoa(port)
	api := start(t, "kube-apiserver", baseEnv(), apiserver,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--tls-cert-file="+certFile, "--tls-private-key-file="+keyFile,
		"--token-auth-file="+tokens, "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saKey, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range=10.96.0.0/24",
		"--profiling=false", "--v=0")
	api.waitReady(t, 90*time.Second, answersOK(c.httpClient(t), c.Server+"/readyz", c.Token))

	if withControllers {
		start(t, "kube-controller-manager", baseEnv(), kcm,
			"--kubeconfig="+c.Kubeconfig(t, ContextAdmin),
			"--controllers=deployment-controller,replicaset-controller,statefulset-controller,daemonset-controller",
			"--leader-elect=false", "--secure-port=0", "--v=0")
	}
	return c
}

// Kubeconfig writes a kubeconfig holding both contexts, with current as
// its current context, and returns its path.
func (c *Cluster) Kubeconfig(t testing.TB, current string) string {
	t.Helper()
	f, err := os.CreateTemp(c.dir, "kubeconfig-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{ContextAdmin: c.Token, ContextStranger: randomToken(t)}
	if _, err := f.WriteString(kubeconfig(c.Server, ca, current, tokens)); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// Interpose starts a proxy in front of the API server that calls hook with
// each request before passing it on, and returns a kubeconfig (the admin's
// context) that goes through it: a test times a race with it.
func (c *Cluster) Interpose(t testing.TB, hook func(*http.Request)) string {
	t.Helper()
	target, err := url.Parse(c.Server)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = c.httpClient(t).Transport
	// Over TLS: client-go sends a bearer token only to an https server.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hook(r)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	writeFile(t, path, kubeconfig(srv.URL, ca, ContextAdmin, map[string]string{ContextAdmin: c.Token}))
	return path
}

// kubeconfig is a kubeconfig for the API server at server, whose
// certificate caPEM signs: a context for each name in tokens, with its
// bearer token, and current as the current one.
func kubeconfig(server string, caPEM []byte, current string, tokens map[string]string) string {
	var users, contexts strings.Builder
	for _, name := range slices.Sorted(maps.Keys(tokens)) {
		fmt.Fprintf(&users, "- name: %s\n  user:\n    token: %s\n", name, tokens[name])
		fmt.Fprintf(&contexts, "- name: %s\n  context: {cluster: plana-test, user: %s}\n", name, name)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: plana-test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
%scontexts:
%scurrent-context: %s
`, server, base64.StdEncoding.EncodeToString(caPEM), users.String(), contexts.String(), current)
}

// answersOK is a readiness probe: GET endpoint, with token as a bearer token
// when it is not empty, answers 200.
func answersOK(client *http.Client, endpoint, token string) func() error {
	return func() error {
		req, err := http.NewRequest(http.MethodGet, endpoint, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", endpoint, resp.Status)
		}
		return nil
	}
}

// httpClient trusts the cluster's CA, for the readiness probe.
func (c *Cluster) httpClient(t testing.TB) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// writeTLS makes a CA and a serving certificate for 127.0.0.1 signed by
// it, so clients verify the server for real.
func (c *Cluster) writeTLS(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "plana-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c.CAFile = filepath.Join(c.dir, "ca.crt")
	certFile, keyFile = filepath.Join(c.dir, "apiserver.crt"), filepath.Join(c.dir, "apiserver.key")
	writeFile(t, c.CAFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

// writeServiceAccountKey writes the key the API server signs service
// account tokens with: it will not start without one.
func writeServiceAccountKey(t testing.TB, dir string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "sa.key")
	writeFile(t, p, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	return p
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
