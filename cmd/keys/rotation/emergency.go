package rotation

import (
	"context"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/rotate/fleet"
)

// EmergencyOptions are an emergency rotation of many keys, as keys audit
// --rotate asks for the keys it flagged.
type EmergencyOptions struct {
	Reason  string        // compromise, departed, lost-device or free text
	Timeout time.Duration // how long each waits for its new key in use; 0: no limit
	Notify  []string      // --notify hooks besides the profile's
	// Output: the table prints a summary of the rotations on stdout; JSON
	// prints nothing, the caller puts the result in its own document.
	Output string
}

// RotateEmergency runs `keys rotate KEY --emergency REASON` for each key,
// as --issued-by --emergency does for a person's: a new key created and
// stored, the old one revoked at once, the new one deployed to the key's
// rotation.targets (none: kept in the keyring for a deploy by hand) and
// checked in use. The caller has confirmed. The error is mapped to an exit
// code like a rotate's.
func RotateEmergency(ctx context.Context, f *cmdutil.Factory, keys []client.APIKey, eo EmergencyOptions) (*fleet.Result, error) {
	o := &RotateOptions{StepDeps: stepDeps(f), Emergency: eo.Reason, Yes: true, Timeout: eo.Timeout, Parallel: 4, Notify: eo.Notify, Output: eo.Output,
		WatchAfterRevoke: new(time.Duration)}
	c, err := newRotateContext(ctx, o)
	if err != nil {
		return nil, err
	}
	defer c.close()
	res, err := fleet.Rotate(ctx, c.r, keys, c.fleetOptions())
	c.rep.stop()
	if res != nil && o.Output != cmdutil.FormatJSON {
		if perr := printBulkSummary(o.IO, res); perr != nil {
			return res, perr
		}
	}
	return res, mapErr(err)
}
