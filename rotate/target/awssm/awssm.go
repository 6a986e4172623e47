// Package awssm keeps the keys of a rotation in an AWS Secrets Manager
// secret whose SecretString is a JSON object: the fields PLANA_KEY and
// PLANA_KEY_NEW, beside whatever other fields it holds, in one version.
// The AWS SDK's configuration chain finds the account, the region and the
// endpoint (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).
package awssm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/plana-cli/plana/internal/awsconf"
)

// Secret is one Secrets Manager secret, by name or ARN.
type Secret struct {
	id     string
	region string
	api    *secretsmanager.Client
}

// New checks id (the part after "aws-sm:") and loads the AWS
// configuration; nothing is sent yet.
func New(ctx context.Context, id string) (*Secret, error) {
	if id == "" {
		return nil, errors.New("aws-sm: needs the secret's name or ARN, as in aws-sm:prod/stock-sync")
	}
	s := &Secret{id: id}
	cfg, err := awsconf.Load(ctx, s.String(), id)
	if err != nil {
		return nil, err
	}
	s.region = cfg.Region
	s.api = secretsmanager.NewFromConfig(cfg)
	return s, nil
}

func (s *Secret) String() string { return "aws-sm:" + s.id }

// fields reads the secret's current version as a JSON object, each field
// kept as written.
func (s *Secret) fields(ctx context.Context) (map[string]json.RawMessage, error) {
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.id)})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		return nil, fmt.Errorf("%s does not exist in %s, or has no value yet: create it first (`aws secretsmanager create-secret --name %s --secret-string '{}'`); plana does not create secrets, so that a mistyped name fails instead of deploying where nothing reads it", s, s.region, s.id)
	case err != nil:
		return nil, fmt.Errorf("reading %s in %s: %w", s, s.region, err)
	case out.SecretString == nil:
		return nil, fmt.Errorf("%s holds binary data: plana keeps keys in a SecretString holding a JSON object", s)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(*out.SecretString), &doc); err != nil || doc == nil {
		return nil, fmt.Errorf("%s's SecretString is not a JSON object: plana keeps keys as its fields PLANA_KEY and PLANA_KEY_NEW", s)
	}
	return doc, nil
}

// Get returns the named fields; an absent field is absent from the map.
func (s *Secret) Get(ctx context.Context, names ...string) (map[string]string, error) {
	doc, err := s.fields(ctx)
	if err != nil {
		return nil, err
	}
	got := map[string]string{}
	for _, n := range names {
		raw, ok := doc[n]
		if !ok {
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s holds the field %s, but not as a string", s, n)
		}
		got[n] = v
	}
	return got, nil
}

// Put puts a new version of the secret with the fields in set set and
// those in unset removed, every other field as it was. Secrets Manager has
// no compare-and-swap: a write by someone else between the read and this
// put is lost, which the read-back after each step catches.
func (s *Secret) Put(ctx context.Context, set map[string]string, unset ...string) error {
	doc, err := s.fields(ctx)
	if err != nil {
		return err
	}
	for n, v := range set {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		doc[n] = raw
	}
	for _, n := range unset {
		delete(doc, n)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if _, err := s.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(s.id), SecretString: aws.String(string(body)),
	}); err != nil {
		return fmt.Errorf("writing %s in %s: %w: the caller needs secretsmanager:PutSecretValue on it (and kms:GenerateDataKey on its KMS key)", s, s.region, err)
	}
	return nil
}
