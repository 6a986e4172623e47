package awssm_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/plana-cli/plana/internal/storetest"
	"github.com/plana-cli/plana/rotate/target/awssm"
)

// TestSecretsManagerSlots walks both fields through a rotation against the
// kumo emulator, found through the SDK's own configuration chain.
func TestSecretsManagerSlots(t *testing.T) {
	ctx := context.Background()
	api := secretsmanager.NewFromConfig(storetest.Kumo(t).Config(t))
	oldKey, newKey := storetest.NewKey(t), storetest.NewKey(t)
	initial := `{"DB_PASSWORD":"hunter2hunter2","PLANA_KEY":"` + oldKey + `","port":5432,"nested":{"a":[1,2]}}`
	if _, err := api.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("prod/stock-sync"), SecretString: aws.String(initial)}); err != nil {
		t.Fatal(err)
	}
	s, err := awssm.New(ctx, "prod/stock-sync")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Rotation(t, s, "aws-sm:prod/stock-sync", oldKey, newKey, nil)

	out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/stock-sync")})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "PLANA_KEY")
	others, _ := json.Marshal(doc)
	if string(others) != `{"DB_PASSWORD":"hunter2hunter2","nested":{"a":[1,2]},"port":5432}` {
		t.Errorf("the other fields are now %s", others)
	}
	storetest.AssertNoKeys(t, "kumo's output", storetest.ServerLogs(t))
}

func TestSecretsManagerRefusals(t *testing.T) {
	ctx := context.Background()
	api := secretsmanager.NewFromConfig(storetest.Kumo(t).Config(t))
	key := storetest.NewKey(t)

	missing, err := awssm.New(ctx, "prod/nothing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Get(ctx, "PLANA_KEY"); err == nil || !strings.Contains(err.Error(), "create-secret") {
		t.Errorf("reading a missing secret: %v", err)
	}
	err = missing.Put(ctx, map[string]string{"PLANA_KEY_NEW": key})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("writing a missing secret: %v", err)
	}
	if _, err := api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/nothing")}); err == nil {
		t.Error("a write created the missing secret")
	}

	for name, value := range map[string]string{"plain": "just text", "array": `["a"]`, "number-field": `{"PLANA_KEY": 7}`} {
		if _, err := api.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatal(err)
		}
		s, _ := awssm.New(ctx, name)
		if _, err := s.Get(ctx, "PLANA_KEY"); err == nil {
			t.Errorf("read %s (%s) without an error", name, value)
		}
	}
	plain, _ := awssm.New(ctx, "plain")
	err = plain.Put(ctx, map[string]string{"PLANA_KEY_NEW": key})
	if err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("writing into a non-JSON secret: %v", err)
	}
	out, _ := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("plain")})
	if aws.ToString(out.SecretString) != "just text" {
		t.Error("the refused write changed the secret")
	}
	storetest.AssertNoKeys(t, "the error", err.Error())

	t.Setenv("AWS_REGION", "")
	if _, err := awssm.New(ctx, "prod/stock-sync"); err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("without a region: %v", err)
	}
	if s, err := awssm.New(ctx, "arn:aws:secretsmanager:us-east-2:123456789012:secret:prod/x-AbCdEf"); err != nil {
		t.Errorf("an ARN names its region, yet: %v", err)
	} else if s == nil {
		t.Error("no secret")
	}
}
