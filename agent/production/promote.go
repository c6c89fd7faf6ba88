package production

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/pioneer-ai/pioneer/internal/crash"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// Promotion is one transaction of three steps, each recognised when a killed command is
// run again: (1) the candidate's files, verified against the checksums recorded when it
// was gated, are copied into a complete, verified version folder (versions.Add; a rerun
// finds it by the candidate's name instead of making another); (2) CURRENT is switched
// to it (verified again); (3) the lineage records it. Only then is the outcome written.

// promotion is the lineage record of a version made current by the gate or by approval.
type promotion struct {
	Candidate string `json:"candidate"`
	Version   string `json:"version"`
}

// promoteVersion runs steps 1 and 2 for a candidate and returns the version.
func promoteVersion(run *agent.Run, vs *versions.Store, c *candidate, note string, evalSet []task.Example) (string, error) {
	v, err := vs.Find(c.Name)
	if err != nil {
		return "", err
	}
	if v == "" {
		src := c.trained(run.Dir)
		if err := sameFiles(src, c.Files); err != nil {
			return "", fmt.Errorf("candidate %s: %w", c.Name, err)
		}
		recipe, err := json.Marshal(c.Recipe)
		if err != nil {
			return "", err
		}
		scores, err := json.Marshal(c.Scores)
		if err != nil {
			return "", err
		}
		meta := versions.Meta{Source: c.Dir, Candidate: c.Name, Recipe: recipe, Scores: scores, Note: note}
		if v, err = vs.Add(src, meta, evalSet); err != nil {
			return "", err
		}
	}
	return v, vs.SetCurrent(v)
}

// sameFiles checks that a folder's files are the ones recorded (checksums taken when the
// candidate was gated): what is promoted is what was scored.
func sameFiles(dir string, want map[string]string) error {
	if len(want) == 0 {
		return fmt.Errorf("no checksums were recorded for %s", dir)
	}
	got, err := versions.FileSums(dir)
	if err != nil {
		return err
	}
	if !maps.Equal(got, want) {
		for f, sum := range want {
			if got[f] != sum {
				return fmt.Errorf("%s has changed since the candidate was scored", filepath.Join(dir, f))
			}
		}
		return fmt.Errorf("%s holds other files than the candidate that was scored", dir)
	}
	return nil
}

// decide records the winning candidate: as the new current version, or (Manual) as
// waiting for approval. A stop request before it keeps the run undecided (resumable).
func (in *inputs) decide(ctx context.Context, run *agent.Run, c *candidate, o *Outcome, evalSet []task.Example) error {
	if err := agent.Stopped(ctx); err != nil {
		return err // never promote after a stop request
	}
	cur, err := in.vs.Current()
	if err != nil {
		return err
	}
	o.Candidate, o.Chosen = c.Name, &c.Scores
	if in.cfg.Manual {
		if err := sameFiles(c.trained(run.Dir), c.Files); err != nil {
			return fmt.Errorf("candidate %s: %w", c.Name, err)
		}
		p := Pending{Candidate: *c, Over: cur, EvalSet: evalSet}
		if err := writeJSON(run.Path(pendingFile), p); err != nil {
			return err
		}
		if err := run.Lineage.Append("awaiting_approval", "awaiting_approval", map[string]string{"candidate": c.Name}); err != nil {
			return err
		}
		o.Verdict, o.Version = AwaitingApproval, cur
		fmt.Fprintf(in.cfg.Log, "gate     %s passed; waiting for `pioneer approve %s`\n", c.Name, run.Dir)
		return nil
	}
	var done promotion
	ok, err := run.Lineage.Get("promoted", &done)
	if err != nil {
		return err
	}
	if !ok {
		v, err := promoteVersion(run, in.vs, c, fmt.Sprintf("promoted by the gate over %s", cur), evalSet)
		if err != nil {
			return err
		}
		done = promotion{Candidate: c.Name, Version: v}
		if err := run.Lineage.Append("promoted", "promoted", done); err != nil {
			return err
		}
		crash.Point("promote:recorded")
	}
	o.Verdict, o.Version = Promoted, done.Version
	fmt.Fprintf(in.cfg.Log, "promote  %s is version %s\n", c.Name, done.Version)
	return nil
}

// finish writes the outcome (outcome.json, the lineage's last step) and the report.
func finish(run *agent.Run, start time.Time, o *Outcome) (*Outcome, error) {
	o.Wall = time.Since(start).Seconds()
	o.Finished = time.Now().UTC()
	if o.Triage.Kinds == nil {
		o.Triage.Kinds = map[string]int{}
	}
	if err := writeJSON(run.Path("outcome.json"), o); err != nil {
		return nil, err
	}
	crash.Point("outcome:written")
	if err := run.Lineage.Append("outcome", "outcome", o); err != nil {
		return nil, err
	}
	if err := writeReport(run); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return o, nil
}

// pendingFile holds the candidate a manual-approval run left waiting.
const pendingFile = "pending.json"

// Pending is a candidate that passed the gate under manual approval (RUN_DIR/pending.json).
// Its folder is named relative to the run folder, so a copied run folder approves its
// own candidate.
type Pending struct {
	Candidate candidate      `json:"candidate"`
	Over      string         `json:"over"` // the version current when it passed
	EvalSet   []task.Example `json:"eval_set"`
}

// ErrNothingPending is returned (wrapped) by Approve when no candidate waits.
var ErrNothingPending = errors.New("nothing awaits approval")

// Approve promotes the candidate a manual-approval run left pending, after checking that
// its files are the ones the gate scored.
func Approve(runDir string) (string, error) {
	run, err := agent.Open(runDir)
	if err != nil {
		return "", err
	}
	defer run.Close()
	path := run.Path(pendingFile)
	var p Pending
	found, err := fsutil.ReadJSON(path, &p)
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("%s: %w", runDir, ErrNothingPending)
	}
	if p.Candidate.Name == "" || p.Candidate.Dir == "" || !filepath.IsLocal(p.Candidate.Dir) {
		return "", fmt.Errorf("%s does not name a candidate of this run folder", path)
	}
	vs, err := versions.Open(runDir, false)
	if err != nil {
		return "", err
	}
	v, err := promoteVersion(run, vs, &p.Candidate, fmt.Sprintf("approved by hand over %s", p.Over), p.EvalSet)
	if err != nil {
		return "", err
	}
	if err := run.Lineage.Append("approved/"+v, "approved", promotion{Candidate: p.Candidate.Name, Version: v}); err != nil {
		return "", err
	}
	crash.Point("approve:recorded")
	if err := os.Remove(path); err != nil {
		return "", err
	}
	return v, writeReport(run)
}

// Rollback deploys an earlier version, given by name (to ""; the one before the current),
// after verifying its files.
func Rollback(runDir, to string) (string, error) {
	run, err := agent.Open(runDir)
	if err != nil {
		return "", err
	}
	defer run.Close()
	vs, err := versions.Open(runDir, false)
	if err != nil {
		return "", err
	}
	cur, err := vs.Current()
	if err != nil && (to == "" || !errors.Is(err, versions.ErrNoCurrent)) {
		return "", err
	}
	list, err := vs.List()
	if err != nil {
		return "", err
	}
	if to == "" {
		if cur == "" {
			return "", fmt.Errorf("%s: no version is deployed", runDir)
		}
		for i, v := range list {
			if v == cur && i > 0 {
				to = list[i-1]
			}
		}
		if to == "" {
			return "", fmt.Errorf("%s: version %s has no earlier version to roll back to", runDir, cur)
		}
	}
	if err := vs.SetCurrent(to); err != nil {
		return "", err
	}
	key := fmt.Sprintf("rollback/%d", len(run.Lineage.Events())+1)
	if err := run.Lineage.Append(key, "rollback", map[string]string{"from": cur, "to": to}); err != nil {
		return "", err
	}
	return to, writeReport(run)
}
