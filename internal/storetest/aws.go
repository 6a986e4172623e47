package storetest

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// AWS is the kumo emulator on loopback, serving Secrets Manager and SSM
// Parameter Store in the AWS SDK's wire format, in memory.
type AWS struct {
	Endpoint string // http://127.0.0.1:PORT
	Region   string
}

// Kumo starts kumo for the test and points the AWS SDK's configuration
// chain at it, as a user would: AWS_ENDPOINT_URL, AWS_REGION and static
// credentials in the environment, and no shared config or credentials file
// of the machine's, so nothing reaches a real account.
func Kumo(t testing.TB) *AWS {
	t.Helper()
	bin := built(t, "aws", "kumo", "KUMO_VERSION", "kumo")
	port := FreePort(t)
	a := &AWS{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), Region: "eu-west-1"}
	srv := start(t, "kumo", baseEnv("KUMO_HOST=127.0.0.1", "KUMO_PORT="+strconv.Itoa(port), "KUMO_LOG_LEVEL=warn"), bin)
	srv.waitReady(t, 30*time.Second, func() error {
		resp, err := http.Get(a.Endpoint + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            a.Endpoint,
		"AWS_REGION":                  a.Region,
		"AWS_ACCESS_KEY_ID":           "AKIAPLANATEST0000000",
		"AWS_SECRET_ACCESS_KEY":       "plana-test-secret-access-key",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	return a
}

// Config is the SDK's own configuration as Kumo set the environment, for
// the test's own client, as an operator's aws CLI would be.
func (a *AWS) Config(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
