package production

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// Run runs production mode into cfg.Out, resuming what a previous run of the same
// settings there recorded (another run's folder is refused), and returns its outcome. It
// holds the run folder for its whole length; a stop request (ctx) ends it between steps,
// resumable and undecided.
func Run(ctx context.Context, cfg Config) (*Outcome, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	start := time.Now()
	// Open: the models and data, checked before anything is written.
	in, err := open(cfg)
	if err != nil {
		return nil, err
	}
	defer in.close()
	settings, err := in.settings()
	if err != nil {
		return nil, err
	}
	run, err := agent.Create(cfg.Out)
	if err != nil {
		return nil, err
	}
	defer run.Close()
	if err := run.Start(settings, map[string]any{"task": in.t.Name, "base": cfg.Base, "deployed": cfg.Deployed}); err != nil {
		return nil, err
	}
	var done Outcome
	if ok, err := run.Lineage.Get("outcome", &done); err != nil || ok {
		if ok {
			fmt.Fprintf(cfg.Log, "run already finished: %s (version %s)\n", done.Verdict, done.Version)
		}
		return &done, err
	}
	if n := len(run.Lineage.Events()); n > 1 {
		fmt.Fprintf(cfg.Log, "resuming: the lineage log holds %d steps\n", n)
	}
	if in.vs, err = versions.Open(cfg.Out, true); err != nil {
		return nil, err
	}
	in.vs.Check = in.deployable
	if err := registerDeployed(run, in); err != nil {
		return nil, err
	}

	// Triage: what of the log may become training data.
	tg, err := in.triageLog(ctx, run)
	if err != nil {
		return nil, err
	}
	o := &Outcome{Triage: tg.counts}
	if o.Version, err = in.vs.Current(); err != nil {
		return nil, err
	}
	if len(tg.admitted) == 0 {
		o.Verdict, o.Reasons = Rejected, []string{"no failure in the log may become training data"}
		return finish(run, start, o)
	}

	// Baseline: the deployed model's scores and R.
	base, err := agent.Step(ctx, run, "baseline", "deployed_scored", func() (baseline, error) {
		return in.measureBaseline(ctx, run.Dir, tg)
	})
	if err != nil {
		return nil, err
	}
	o.Deployed = base.Deployed

	// Diagnose: candidate patterns, confirmed on fresh probes.
	diag := groupFailures(in.t, tg.admitted)
	if diag.Patterns, err = agent.Step(ctx, run, "diagnosis", "diagnosis", func() ([]*Pattern, error) {
		return diag.Patterns, in.confirm(ctx, diag, tg)
	}); err != nil {
		return nil, err
	}
	if err := writeJSON(run.Path("diagnosis.json"), diag); err != nil {
		return nil, err
	}
	for _, p := range diag.Patterns {
		if p.Confirmed {
			o.Patterns++
			fmt.Fprintf(cfg.Log, "pattern  %s: %s\n", p.ID, p.Evidence)
		}
	}
	fmt.Fprintf(cfg.Log, "diagnose %d candidate patterns, %d confirmed on fresh probes (diagnosis.json)\n", len(diag.Patterns), o.Patterns)
	fmt.Fprintf(cfg.Log, "deployed %s %s %.4f on the held-out set (%d examples), R = %d examples it gets right\n",
		o.Version, in.t.Metric, base.Deployed.HeldOut, len(base.HeldOut), len(base.R))
	// Search: curricula and candidates from the base model, each through the gate.
	sp := newSpace(in, run, tg, base, diag)
	if o.Patterns == 0 {
		if !sp.replayable() {
			o.Verdict, o.Reasons = Rejected, []string{"no error pattern was confirmed on fresh probes: nothing systematic to fix"}
			return finish(run, start, o)
		}
		fmt.Fprintf(cfg.Log, "search   no pattern confirmed: the candidates consolidate (the parent's data, R and the admitted failures, poison left out)\n")
	}
	var best *candidate
	if cfg.Search == SearchMCTS {
		best, o.Reasons, err = sp.mcts(ctx)
	} else {
		best, o.Reasons, err = sp.greedy(ctx)
	}
	if err != nil {
		return nil, err
	}
	if best == nil { // a candidate better everywhere but on a few of R: repaired (repair.go)
		rep, err := sp.repair(ctx)
		if err != nil {
			return nil, err
		}
		if rep != nil && rep.Pass {
			best = rep
		} else if rep != nil {
			o.Reasons = append(o.Reasons, fmt.Sprintf("%s (the last repair of what a candidate broke of R): %s", rep.Name, rep.Verdict))
		}
	}
	if err := agent.Stopped(ctx); err != nil {
		return nil, err
	}

	// Promote the winner, or reject.
	if best == nil {
		o.Verdict = Rejected
		return finish(run, start, o)
	}
	o.Reasons = nil
	if err := in.decide(ctx, run, best, o, base.HeldOut); err != nil {
		return nil, err
	}
	return finish(run, start, o)
}

// registerDeployed makes the deployment version v0 of a new run folder (the open stage
// has checked it): copied, verified and made current, then recorded. A rerun after a
// kill in between finds the copy and goes on.
func registerDeployed(run *agent.Run, in *inputs) error {
	if run.Lineage.Has("v0") {
		return nil
	}
	list, err := in.vs.List()
	if err != nil {
		return err
	}
	if len(list) == 0 {
		if _, err := in.vs.Add(in.cfg.Deployed, versions.Meta{Source: in.cfg.Deployed, Note: "the deployment this run started from"}, nil); err != nil {
			return err
		}
	} else if list[0] != "v0" || len(list) > 1 {
		return fmt.Errorf("%s holds versions %v but its lineage records no start from v0: not this run's folder", in.vs.Dir(""), list)
	}
	if err := in.vs.SetCurrent("v0"); err != nil {
		return err
	}
	return run.Lineage.Append("v0", "version_registered", map[string]string{"version": "v0", "source": in.cfg.Deployed})
}

// writeJSON writes v into the run folder as indented JSON, making its folder.
func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteJSON(path, v)
}

// IsStopped reports whether err is a run's stop on request (resumable).
func IsStopped(err error) bool {
	return errors.Is(err, agent.ErrStopped) || errors.Is(err, context.Canceled)
}
