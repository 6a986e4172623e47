// Package awsconf loads the AWS SDK's configuration the way the AWS CLI
// does (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, shared config and
// credentials files, SSO, instance roles), for plana's AWS targets.
package awsconf

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Load is the default configuration chain. A region is required; an ARN
// names its own region, used when none is configured. what names the
// target in errors.
func Load(ctx context.Context, what, arn string) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("%s: reading the AWS configuration: %w: check AWS_PROFILE and ~/.aws/config", what, err)
	}
	if cfg.Region == "" {
		if r := arnRegion(arn); r != "" {
			cfg.Region = r
		} else {
			return aws.Config{}, fmt.Errorf("%s: no AWS region: set AWS_REGION, or a region in your AWS profile", what)
		}
	}
	return cfg, nil
}

// arnRegion is the region field of an ARN (arn:PARTITION:SERVICE:REGION:…).
func arnRegion(s string) string {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" {
		return parts[3]
	}
	return ""
}
