// Package awsssm keeps the keys of a rotation in AWS Systems Manager
// Parameter Store: SecureString parameters PATH/PLANA_KEY and
// PATH/PLANA_KEY_NEW. The AWS SDK's configuration chain finds the account,
// the region and the endpoint (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).
package awsssm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/plana-cli/plana/internal/awsconf"
)

// Params is the parameters under one path.
type Params struct {
	path   string
	region string
	api    *ssm.Client
}

// New checks path (the part after "aws-ssm:") and loads the AWS
// configuration; nothing is sent yet.
func New(ctx context.Context, path string) (*Params, error) {
	if err := CheckPath(path); err != nil {
		return nil, err
	}
	p := &Params{path: path}
	cfg, err := awsconf.Load(ctx, p.String(), "")
	if err != nil {
		return nil, err
	}
	p.region = cfg.Region
	p.api = ssm.NewFromConfig(cfg)
	return p, nil
}

// CheckPath refuses what is not a parameter hierarchy; nothing is sent.
func CheckPath(path string) error {
	switch {
	case path == "":
		return errors.New("aws-ssm: needs a parameter path, as in aws-ssm:/prod/stock-sync")
	case !strings.HasPrefix(path, "/"):
		return fmt.Errorf("aws-ssm:%s: a parameter hierarchy begins with /: aws-ssm:/%s", path, path)
	case strings.HasSuffix(path, "/") || strings.Contains(path, "//"):
		return fmt.Errorf("aws-ssm:%s: write the path without a trailing or doubled /", path)
	}
	return nil
}

func (p *Params) String() string { return "aws-ssm:" + p.path }

func (p *Params) name(n string) string { return p.path + "/" + n }

// fullNames is names as parameter names under the path.
func (p *Params) fullNames(names []string) []string {
	full := make([]string, len(names))
	for i, n := range names {
		full[i] = p.name(n)
	}
	return full
}

// Get returns the named parameters, decrypted; an absent one is absent
// from the map.
func (p *Params) Get(ctx context.Context, names ...string) (map[string]string, error) {
	out, err := p.api.GetParameters(ctx, &ssm.GetParametersInput{Names: p.fullNames(names), WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("reading %s in %s: %w: the caller needs ssm:GetParameters on it (and kms:Decrypt on its KMS key)", p, p.region, err)
	}
	got := map[string]string{}
	for _, prm := range out.Parameters {
		for _, n := range names {
			if aws.ToString(prm.Name) == p.name(n) {
				got[n] = aws.ToString(prm.Value)
			}
		}
	}
	return got, nil
}

// existing describes the parameters among names that exist: a key is
// written only over a SecureString, and with the KMS key it already has.
func (p *Params) existing(ctx context.Context, names []string) (map[string]types.ParameterMetadata, error) {
	found := map[string]types.ParameterMetadata{}
	in := &ssm.DescribeParametersInput{ParameterFilters: []types.ParameterStringFilter{
		{Key: aws.String("Name"), Option: aws.String("Equals"), Values: p.fullNames(names)},
	}}
	for pages := ssm.NewDescribeParametersPaginator(p.api, in); pages.HasMorePages(); {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading %s in %s: %w: the caller needs ssm:DescribeParameters", p, p.region, err)
		}
		for _, m := range page.Parameters {
			found[aws.ToString(m.Name)] = m
		}
	}
	return found, nil
}

// Put overwrites (or creates) each parameter in set as a SecureString and
// deletes those in unset; an absent one is no error. Parameter Store has no
// transaction: the parameters are written in name order, the deletions
// last, in one call.
func (p *Params) Put(ctx context.Context, set map[string]string, unset ...string) error {
	names := slices.Sorted(maps.Keys(set))
	meta, err := p.existing(ctx, names)
	if err != nil {
		return err
	}
	for _, n := range names {
		in := &ssm.PutParameterInput{
			Name: aws.String(p.name(n)), Value: aws.String(set[n]),
			Type: types.ParameterTypeSecureString, Overwrite: aws.Bool(true),
		}
		if m, ok := meta[p.name(n)]; ok {
			if m.Type != types.ParameterTypeSecureString {
				return fmt.Errorf("%s exists as a %s parameter: plana writes keys only as SecureString; delete it (`aws ssm delete-parameter --name %s`) and run again", p.name(n), m.Type, p.name(n))
			}
			in.KeyId = m.KeyId
		}
		if _, err := p.api.PutParameter(ctx, in); err != nil {
			return fmt.Errorf("writing %s in %s: %w: the caller needs ssm:PutParameter on it (and kms:Encrypt on its KMS key)", p.name(n), p.region, err)
		}
	}
	if len(unset) == 0 {
		return nil
	}
	full := p.fullNames(unset)
	if _, err := p.api.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: full}); err != nil {
		return fmt.Errorf("deleting %s in %s: %w: the caller needs ssm:DeleteParameters on it", strings.Join(full, ", "), p.region, err)
	}
	return nil
}
