package rotate

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/rotate/target"
)

// Settings are what a rotation runs with that a person or the profile
// chooses: where the new key goes, how long the old key must be quiet, how
// long a key lives, how often a wait reads the log, how long an exec target
// may run. A zero field is unset.
type Settings struct {
	Targets      []string
	QuietPeriod  time.Duration
	Cadence      time.Duration
	PollInterval time.Duration
	ExecTimeout  time.Duration
}

// Rule is one entry of the profile's rotation.targets (or, with Cadence
// alone, of its rotation.cadence_overrides): the keys whose name Match, a
// glob, fits.
type Rule struct {
	Match       string
	Targets     []string
	QuietPeriod time.Duration
	Cadence     time.Duration
}

func (r Rule) matches(name string) bool {
	ok, _ := path.Match(r.Match, name) // a bad glob matches nothing; the config refuses one when read
	return ok
}

// Policy is what the profile says about rotations, as plain values: the
// command layer reads it from the configuration, which this package never
// sees.
type Policy struct {
	// Rules are rotation.targets: the first whose Match fits a key's name
	// is that key's rule.
	Rules []Rule
	// Cadences are rotation.cadence_overrides: the first that fits gives a
	// key's cadence when its rule gives none.
	Cadences []Rule
	// Profile is the profile's own: quiet period, cadence, poll interval.
	Profile Settings
}

// Resolve is the one place a key's settings are decided, each on its own:
// the flags', else the first rule that matches the key's name, else (the
// cadence) the first matching override, else the profile's. A quiet period
// none of them sets stays 0: step 3 suggests one from the old key's own
// calls (gate.Suggest) and records it. A rotation under way keeps what it
// recorded (see settingsOf).
func (p Policy) Resolve(name string, flags Settings) Settings {
	var rule, over Rule
	if i := slices.IndexFunc(p.Rules, func(r Rule) bool { return r.matches(name) }); i >= 0 {
		rule = p.Rules[i]
	}
	if i := slices.IndexFunc(p.Cadences, func(r Rule) bool { return r.matches(name) }); i >= 0 {
		over = p.Cadences[i]
	}
	targets := flags.Targets
	if len(targets) == 0 {
		targets = rule.Targets
	}
	return Settings{
		Targets:      slices.Clone(targets),
		QuietPeriod:  cmp.Or(flags.QuietPeriod, rule.QuietPeriod, p.Profile.QuietPeriod),
		Cadence:      cmp.Or(flags.Cadence, rule.Cadence, over.Cadence, p.Profile.Cadence),
		PollInterval: cmp.Or(flags.PollInterval, p.Profile.PollInterval),
		ExecTimeout:  cmp.Or(flags.ExecTimeout, p.Profile.ExecTimeout),
	}
}

// Flags are the settings this run was given on its command line.
func (o Options) Flags() Settings {
	return Settings{Targets: o.Targets, QuietPeriod: o.QuietPeriod, PollInterval: o.PollInterval, ExecTimeout: o.ExecTimeout}
}

// settingsOf is the settings of the rotation of the key named name that j
// records (nil: a rotation not begun) for a run with options o: what Resolve
// decides, but what the rotation recorded when it began wins over a rule or
// a profile that changed since (said in notes). A flag that differs from it
// (but from a quiet period plana only suggested) is refused when o.hold (keys rotate: run again without flags, it carries
// the rotation on exactly as it began), unless o.ResetSettings decides them
// all again on purpose; a single step's flag (keys deploy --to, keys verify
// --quiet-period) says what that step does, and wins.
func settingsOf(name string, j *Journal, o Options) (set Settings, notes []string, err error) {
	flags := o.Flags()
	if flags.Targets, err = resolveTargets(flags.Targets); err != nil {
		return Settings{}, nil, err
	}
	if j != nil {
		name = j.Old.Name
	}
	set = o.Policy.Resolve(name, flags)
	if j == nil {
		return set, nil, nil
	}
	if o.ResetSettings {
		return set, nil, j.canReset(set.Targets)
	}
	change := "Run it without %s to carry it on as it began; to change it on purpose, add --reset-settings (the settings are decided again: flags, rule, profile), " +
		"or call the rotation off with plana keys rotate " + j.Old.ID + " --abort and start again"
	if rec := j.targetNames(); len(rec) > 0 {
		switch {
		case len(flags.Targets) > 0 && sameTargets(flags.Targets, rec):
		case len(flags.Targets) > 0 && o.hold:
			return Settings{}, nil, usageErrorf("the rotation of %s deploys to %s, as it recorded when it began; this run's --to resolves to %s. Nothing was changed. "+change,
				j.Old.Prefix, strings.Join(rec, ", "), strings.Join(flags.Targets, ", "), "--to")
		case len(flags.Targets) > 0:
			rec = flags.Targets
		case len(set.Targets) > 0 && !sameTargets(set.Targets, rec):
			notes = append(notes, fmt.Sprintf("the rotation keeps the targets it recorded when it began (%s), not the %s rotation.targets gives now",
				strings.Join(rec, ", "), strings.Join(set.Targets, ", ")))
		}
		set.Targets = rec
	}
	if rec := j.quiet(); rec > 0 {
		switch {
		case flags.QuietPeriod > 0 && flags.QuietPeriod.Truncate(time.Second) == rec:
		case flags.QuietPeriod > 0 && o.hold && !j.QuietSuggested:
			return Settings{}, nil, usageErrorf("the rotation of %s holds the old key to a quiet period of %s, as it recorded; this run's --quiet-period is %s. Nothing was changed. "+change,
				j.Old.Prefix, duration.Format(rec), duration.Format(flags.QuietPeriod), "--quiet-period")
		case flags.QuietPeriod > 0:
			rec = flags.QuietPeriod // a single step's, or in place of plana's suggestion
		case set.QuietPeriod > 0 && set.QuietPeriod.Truncate(time.Second) != rec:
			notes = append(notes, fmt.Sprintf("the rotation keeps the quiet period it recorded, %s, not the %s the configuration gives now",
				duration.Format(rec), duration.Format(set.QuietPeriod)))
		}
		set.QuietPeriod = rec
	}
	return set, notes, nil
}

// canReset refuses new targets for the rotation j records that would leave
// the new key behind: once step 4 ran, or at a target that holds it and is
// not among them, where it would stay and never be finalized.
func (j *Journal) canReset(targets []string) error {
	if j.State.Reached(Finalized) {
		return usageErrorf("the rotation of %s is past step 4: its targets hold only the new key, and its settings can no longer change. Run it without --reset-settings to finish it", j.Old.Prefix)
	}
	for _, st := range j.Targets {
		if st.Deployed && !slices.Contains(targets, st.Target) {
			return usageErrorf("%s already holds the new key of the rotation of %s: keep it among the targets (--to %s), or call the rotation off with plana keys rotate %s --abort. Nothing was changed",
				st.Target, j.Old.Prefix, st.Target, j.Old.ID)
		}
	}
	return nil
}

// resolveTargets is target.Resolve of each of targets, in a slice of its
// own.
func resolveTargets(targets []string) ([]string, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	out := make([]string, len(targets))
	for i, t := range targets {
		var err error
		if out[i], err = target.Resolve(t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sameTargets says a and b name the same targets, in any order.
func sameTargets(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(t string) bool { return !slices.Contains(b, t) })
}

// Settings are the settings Rotate would run key's rotation with under o
// (see settingsOf), read without taking the rotation's lock: a fleet decides
// with them which keys it can rotate before it starts any.
func (r *Rotator) Settings(key client.APIKey, o Options) (Settings, error) {
	o.hold = true
	js := r.journals()
	id := key.ID
	if old := js.rotationOf(key.ID); old != "" {
		id = old
	}
	if err := checkID(id); err != nil {
		return Settings{}, err
	}
	j, err := js.load(id)
	if err != nil {
		return Settings{}, err
	}
	set, _, err := settingsOf(key.Name, j, o)
	return set, err
}
