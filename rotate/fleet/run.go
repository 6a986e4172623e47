package fleet

import (
	"context"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate"
)

// fleetRun is one command's fleet, read once: who plana acts as and every
// key of the workspace. The keys it chooses and the rotations it starts use
// what it read; a rotation asks the server again only where it must (the
// race rule after a create, the gate at each poll).
type fleetRun struct {
	r      *rotate.Rotator // its own copy, with Who set
	keys   []client.APIKey // active and revoked, as listed at listed
	listed time.Time
}

// start reads who plana acts as (r.Who, when set) and the workspace's keys.
func start(ctx context.Context, r *rotate.Rotator) (*fleetRun, error) {
	run := &fleetRun{r: new(rotate.Rotator)}
	*run.r = *r
	if run.r.Who == nil {
		me, err := r.API.Me(ctx)
		if err != nil {
			return nil, err
		}
		run.r.Who = me
	}
	run.listed = time.Now()
	keys, err := r.API.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: pageSize})
	if err != nil {
		return nil, err
	}
	run.keys = keys
	return run, nil
}
