package awsssm_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/plana-cli/plana/internal/storetest"
	"github.com/plana-cli/plana/rotate/target/awsssm"
)

// TestParameterStoreSlots walks both parameters through a rotation against
// the kumo emulator, found through the SDK's own configuration chain.
func TestParameterStoreSlots(t *testing.T) {
	ctx := context.Background()
	api := ssm.NewFromConfig(storetest.Kumo(t).Config(t))
	oldKey, newKey := storetest.NewKey(t), storetest.NewKey(t)
	put := func(name, value string, typ types.ParameterType) {
		t.Helper()
		if _, err := api.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	put("/prod/stock-sync/PLANA_KEY", oldKey, types.ParameterTypeSecureString)
	put("/prod/stock-sync/DB_URL", "postgres://db", types.ParameterTypeString)
	put("/prod/other/PLANA_KEY_NEW", "untouched", types.ParameterTypeSecureString)

	p, err := awsssm.New(ctx, "/prod/stock-sync")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Rotation(t, p, "aws-ssm:/prod/stock-sync", oldKey, newKey, func() {
		got, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/prod/stock-sync/PLANA_KEY_NEW")})
		if err != nil {
			t.Fatal(err)
		}
		if got.Parameter.Type != types.ParameterTypeSecureString {
			t.Errorf("PLANA_KEY_NEW was written as %s, want SecureString", got.Parameter.Type)
		}
	})
	if err := p.Put(ctx, nil, "PLANA_KEY_NEW"); err != nil {
		t.Errorf("deleting an absent parameter: %v", err)
	}
	for name, want := range map[string]string{"/prod/stock-sync/DB_URL": "postgres://db", "/prod/other/PLANA_KEY_NEW": "untouched"} {
		got, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
		if err != nil || aws.ToString(got.Parameter.Value) != want {
			t.Errorf("%s changed: %v", name, err)
		}
	}

	// A plain String parameter is not overwritten with a key.
	put("/prod/plain/PLANA_KEY_NEW", "not secret", types.ParameterTypeString)
	plain, _ := awsssm.New(ctx, "/prod/plain")
	err = plain.Put(ctx, map[string]string{"PLANA_KEY_NEW": newKey})
	if err == nil || !strings.Contains(err.Error(), "only as SecureString") {
		t.Errorf("writing over a String parameter: %v", err)
	}
	storetest.AssertNoKeys(t, "the error", err.Error())

	empty, _ := awsssm.New(ctx, "/nothing/here")
	if got, err := empty.Get(ctx, "PLANA_KEY", "PLANA_KEY_NEW"); err != nil || len(got) != 0 {
		t.Errorf("an empty path read as %d parameters, %v", len(got), err)
	}
	storetest.AssertNoKeys(t, "kumo's output", storetest.ServerLogs(t))
}

func TestParameterStorePaths(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-west-1")
	for _, bad := range []string{"", "prod/x", "/prod/x/", "/prod//x"} {
		if _, err := awsssm.New(context.Background(), bad); err == nil {
			t.Errorf("aws-ssm:%s was accepted", bad)
		}
	}
}
