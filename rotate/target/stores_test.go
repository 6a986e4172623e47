package target_test

import (
	"github.com/plana-cli/plana/rotate/target"
	"github.com/plana-cli/plana/rotate/target/awssm"
	"github.com/plana-cli/plana/rotate/target/awsssm"
	"github.com/plana-cli/plana/rotate/target/k8s"
	"github.com/plana-cli/plana/rotate/target/pass"
	"github.com/plana-cli/plana/rotate/target/sops"
)

// The secret-store clients are Stores, ready for Slots.
var (
	_ target.Store = (*k8s.Secret)(nil)
	_ target.Store = (*awssm.Secret)(nil)
	_ target.Store = (*awsssm.Params)(nil)
	_ target.Store = (*sops.File)(nil)
	_ target.Store = (*pass.Store)(nil)
)
