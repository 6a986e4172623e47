package rotation

import (
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/rotate"
)

// PolicyOf is what the profile says about rotations, as the plain values
// rotate.Policy.Resolve decides every key's settings from: rotation.targets,
// rotation.cadence_overrides, and the profile's quiet period, cadence and
// poll interval. rotate never reads the configuration itself.
func PolicyOf(cfg *config.Config) rotate.Policy {
	p := rotate.Policy{Profile: rotate.Settings{Cadence: cfg.Cadence(), PollInterval: cfg.PollInterval()}}
	if q, ok := cfg.QuietPeriod(); ok {
		p.Profile.QuietPeriod = q
	}
	for _, r := range cfg.Targets() {
		p.Rules = append(p.Rules, rotate.Rule{Match: r.Match, Targets: r.To, QuietPeriod: r.QuietPeriod, Cadence: r.Cadence})
	}
	for _, o := range cfg.CadenceOverrides() {
		p.Cadences = append(p.Cadences, rotate.Rule{Match: o.Pattern, Cadence: o.Cadence})
	}
	return p
}
