package rotate

import (
	"context"
	"fmt"
	"time"

	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
	"github.com/plana-cli/plana/rotate/rotlog"
	"github.com/plana-cli/plana/rotate/target"
)

// planner gathers a dry run's lines, one or more per row of the table.
type planner struct {
	s     *session
	lines []string
	quiet time.Duration // resolved by step 3's row
}

func (p *planner) add(format string, a ...any) { p.lines = append(p.lines, fmt.Sprintf(format, a...)) }

// plan says what each step of the procedure would do, changing nothing.
func (s *session) plan(ctx context.Context) (*Result, error) {
	p := &planner{s: s}
	if s.j.State != NotStarted {
		p.add("resume the rotation of %s at step %q (journal %s)", s.j.Old.Prefix, s.j.State, s.js.path(s.j.Old.ID))
	}
	for _, row := range procedure(s.j.Emergency) {
		if err := row.plan(p, ctx); err != nil {
			return nil, err
		}
	}
	p.add("append each step to the rotation log %s", rotlog.Open(s.r.StateDir).Path)
	for _, line := range p.lines {
		s.rep.Info("would " + line)
	}
	res := s.result()
	res.Plan, res.QuietPeriod = p.lines, duration.JSON(p.quiet)
	return res, nil
}

// reconcile says which rotation under way the run would carry on. The dry
// run takes it as its own in memory, so the rows after it plan from there.
func (p *planner) reconcile(ctx context.Context) error {
	s := p.s
	if s.j.New != nil || s.j.Pending != nil {
		return nil
	}
	keys, err := s.allKeys(ctx, time.Time{})
	if err != nil {
		return err
	}
	if !s.old.Active() {
		if kept, ok := lineage.NewFamily(keys, s.caller).Kept(s.old.ID); ok {
			p.add("do nothing: %s was already rotated to %s (%s)", s.old.Prefix, kept.Name, kept.Prefix)
		}
		return nil
	}
	succ := s.successors(keys)
	if s.j.Emergency {
		for _, k := range succ {
			if k.Active() {
				p.add("pass over %s (%s), created by %s: an emergency carries on no existing successor (revoke it afterwards with %s)", k.Name, k.Prefix, k.CreatedBy.Email, revokeCommand(k.ID))
			}
		}
		return nil
	}
	if win, ok := lineage.Winner(succ); ok {
		kr := ref.Of(win)
		s.j.New, s.j.Adopted = &kr, true
		p.add("carry on the rotation under way: %s (%s), created by %s", win.Name, win.Prefix, win.CreatedBy.Email)
	}
	return nil
}

func (p *planner) create(ctx context.Context) error {
	if p.s.j.New != nil {
		return nil
	}
	name, err := p.s.successorName(ctx)
	if err != nil {
		return err
	}
	p.add("create %q with scopes %v (the plaintext goes straight into the keyring, after a keyring probe)", name, p.s.old.Scopes)
	return nil
}

func (p *planner) check(context.Context) error {
	if p.s.j.New == nil {
		p.add("check the new key answers GET /v1/me")
	}
	return nil
}

func (p *planner) revokeNow(context.Context) error {
	if j := p.s.j; !j.oldRevoked() {
		p.add("revoke the old key %s (%s) at once: emergency (%s)", j.Old.Name, j.Old.Prefix, p.s.opts.Reason)
	}
	return nil
}

func (p *planner) deploy(context.Context) error {
	if p.s.j.deployed() {
		return nil
	}
	targets := p.s.targets()
	if len(targets) == 0 {
		p.add("leave deploying the new key to you (no --to target)")
	}
	for _, to := range targets {
		t, err := target.Parse(to)
		if err != nil {
			return err
		}
		switch t.Kind {
		case target.KindEnvFile:
			p.add("add %s to %s, keeping %s", target.NewKeySlot, t.Arg, target.KeySlot)
		case target.KindExec:
			p.add("run %q with the new key on its stdin and PLANA_STEP=deploy", t.Arg)
		case target.KindExecAB:
			p.add("run %q with the new key on its stdin and PLANA_STEP=deploy, then check PLANA_STEP=list names it", t.Arg)
		case target.KindStdout:
			p.add("print the new key once to stdout")
		default:
			p.add("add %s to %s, keeping %s, and read it back", target.NewKeySlot, t, target.KeySlot)
		}
	}
	return nil
}

func (p *planner) verify(ctx context.Context) error {
	q, _, err := p.s.resolveQuiet(ctx)
	if err != nil {
		return err
	}
	p.quiet = q
	if p.s.j.Emergency {
		p.add("wait until the new key is used")
	} else {
		p.add("wait until the new key is used and the old key %s has been unused for %s (server time)", p.s.j.Old.Prefix, duration.Approx(q))
	}
	return nil
}

func (p *planner) finalize(context.Context) error {
	p.add("ask for confirmation, then leave only the new key in the automation")
	return nil
}

func (p *planner) revoke(context.Context) error {
	p.add("revoke the old key %s, check it is refused, delete its plaintext from the keyring", p.s.j.Old.Prefix)
	return nil
}

// nothing: the row adds no line of its own (another row's covers it).
func (*planner) nothing(context.Context) error { return nil }
