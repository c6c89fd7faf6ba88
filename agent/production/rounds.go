package production

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/trafficlog"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
)

// ErrNoFeedback is returned (wrapped) by Round when no answer of the deployed version is
// marked wrong: there is nothing to adapt to.
var ErrNoFeedback = errors.New("no answer of the deployed version is marked wrong")

// roundFile records what a round started from.
const roundFile = "round.json"

// roundStart is a round's round.json.
type roundStart struct {
	Deployed string           `json:"deployed"` // the deployment's version the round adapts
	LogDir   string           `json:"log_dir"`
	Split    trafficlog.Split `json:"split"`
	Unknown  int              `json:"unknown_ids"` // verdicts on ids the traffic does not hold
}

// Round runs one production round on a served deployment, the loop `pioneer serve
// --deployment` and `pioneer adapt --deployment` close: deployDir is a run folder
// (cold-start's or production mode's) whose current version a server follows, and logDir
// holds that server's traffic and feedback. The answers of the current version marked
// wrong become the round's failure log and those marked right its traffic (R), in
// deployDir/rounds/N/ (N counts up; a round that did not finish is resumed instead);
// production mode runs there with the current version as the deployment (cfg's Deployed,
// Failures, Traffic and Out are set here). A version the round promotes (at once, or
// later by `pioneer approve` on the round's folder and Round run again) is added to
// deployDir's versions and made current, once: the server swaps it in, and deployDir's
// lineage records it. It returns the round's outcome and folder.
func Round(ctx context.Context, deployDir, logDir string, cfg Config) (*Outcome, string, error) {
	if cfg.Task == nil {
		return nil, "", fmt.Errorf("production: no task")
	}
	vs, err := versions.Open(deployDir, false)
	if err != nil {
		return nil, "", fmt.Errorf("production: deployment %s: %w", deployDir, err)
	}
	n, finished, err := lastRound(deployDir)
	if err != nil {
		return nil, "", err
	}
	if n > 0 && finished { // a round approved by hand since it ended is published now
		if err := publish(deployDir, vs, n); err != nil {
			return nil, "", err
		}
	}
	if n == 0 || finished {
		n++
	}
	dir := filepath.Join(deployDir, "rounds", strconv.Itoa(n))
	var start roundStart
	ok, err := fsutil.ReadJSON(filepath.Join(dir, roundFile), &start)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		if start, err = startRound(dir, logDir, vs, cfg.Task); err != nil {
			return nil, "", err
		}
	}
	cfg.Deployed, cfg.Out = vs.Dir(start.Deployed), dir
	// A version production mode promoted carries its training set: the parent's data of
	// this round, replayed in every candidate (the first version's are cfg's).
	ts := filepath.Join(cfg.Deployed, versions.TrainingSetFile)
	if _, err := os.Stat(ts); err == nil {
		cfg.ParentData = ts
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("production: %w", err)
	}
	cfg.Failures, cfg.Traffic = filepath.Join(dir, "failures.jsonl"), ""
	if start.Split.Traffic > 0 {
		cfg.Traffic = filepath.Join(dir, "traffic.jsonl")
	}
	if cfg.Log != nil {
		fmt.Fprintf(cfg.Log, "round    %d of deployment %s: version %s, %d failures and %d right answers from %s\n",
			n, deployDir, start.Deployed, start.Split.Failures, start.Split.Traffic, start.LogDir)
	}
	o, err := Run(ctx, cfg)
	if err != nil {
		return nil, dir, err
	}
	return o, dir, publish(deployDir, vs, n)
}

// lastRound is the highest round number of deployDir (0: none) and whether it finished.
func lastRound(deployDir string) (int, bool, error) {
	entries, err := os.ReadDir(filepath.Join(deployDir, "rounds"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, false, err
	}
	last := 0
	for _, e := range entries {
		if k, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() && k > last && strconv.Itoa(k) == e.Name() {
			last = k
		}
	}
	if last == 0 {
		return 0, false, nil
	}
	var o Outcome
	found, err := fsutil.ReadJSON(filepath.Join(deployDir, "rounds", strconv.Itoa(last), "outcome.json"), &o)
	return last, found, err
}

// startRound labels the logs for the deployment's current version and writes the
// round's inputs; round.json, written last, marks them complete.
func startRound(dir, logDir string, vs *versions.Store, t *task.Task) (roundStart, error) {
	cur, err := vs.Current()
	if err != nil {
		return roundStart{}, err
	}
	wrong, right, unknown, err := trafficlog.Label(logDir, cur)
	if err != nil {
		return roundStart{}, err
	}
	// feedback an earlier round adapted to drives no other (after a rollback too)
	used, err := usedIDs(filepath.Dir(dir))
	if err != nil {
		return roundStart{}, err
	}
	fresh := func(ls []trafficlog.Labelled) []trafficlog.Labelled {
		var out []trafficlog.Labelled
		for _, l := range ls {
			if !used[l.ID] {
				out = append(out, l)
			}
		}
		return out
	}
	wrong, right = fresh(wrong), fresh(right)
	failures, traffic, sp, err := trafficlog.ForTask(t, wrong, right)
	if err != nil {
		return roundStart{}, err
	}
	if sp.Failures == 0 {
		return roundStart{}, fmt.Errorf("production: %s (version %s, logs %s: %d answers marked wrong that no earlier round used, %d of them not the task's prompt): %w",
			vs.Dir(""), cur, logDir, len(wrong), sp.NotTask, ErrNoFeedback)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return roundStart{}, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "failures.jsonl"), failures); err != nil {
		return roundStart{}, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "traffic.jsonl"), traffic); err != nil {
		return roundStart{}, err
	}
	abs, err := filepath.Abs(logDir)
	if err != nil {
		return roundStart{}, err
	}
	start := roundStart{Deployed: cur, LogDir: abs, Split: sp, Unknown: unknown}
	return start, fsutil.WriteJSON(filepath.Join(dir, roundFile), start)
}

// publish adds what round n promoted to the deployment's versions and makes it current,
// once (deployDir's lineage holds rounds/n/published after): a rollback of the
// deployment afterwards is never undone by a rerun.
func publish(deployDir string, vs *versions.Store, n int) error {
	dir := filepath.Join(deployDir, "rounds", strconv.Itoa(n))
	rvs, err := versions.Open(dir, false)
	if err != nil {
		return err
	}
	rcur, err := rvs.Current()
	if err != nil || rcur == "v0" {
		return err // nothing promoted (yet)
	}
	run, err := agent.Open(deployDir)
	if err != nil {
		return fmt.Errorf("production: deployment %s: %w", deployDir, err)
	}
	defer run.Close()
	key := fmt.Sprintf("rounds/%d/published", n)
	if run.Lineage.Has(key) {
		return nil
	}
	source := filepath.Join("rounds", strconv.Itoa(n), "versions", rcur)
	candidate := fmt.Sprintf("round %d %s", n, rcur)
	v, err := vs.Find(candidate)
	if err != nil {
		return err
	}
	if v == "" {
		var es []task.Example
		if _, err := rvs.EvalSet(rcur, &es); err != nil {
			return err
		}
		var evalSet any
		if es != nil {
			evalSet = es
		}
		meta, err := rvs.Meta(rcur)
		if err != nil {
			return err
		}
		if v, err = vs.Add(rvs.Dir(rcur), versions.Meta{Source: source, Candidate: candidate, Recipe: meta.Recipe, Scores: meta.Scores,
			Note: fmt.Sprintf("promoted by production round %d", n)}, evalSet); err != nil {
			return err
		}
	}
	if err := vs.SetCurrent(v); err != nil {
		return err
	}
	return run.Lineage.Append(key, "published", map[string]any{"round": n, "round_version": rcur, "version": v})
}

// usedIDs is the ids of the logged answers the rounds in roundsDir took as failures or
// traffic.
func usedIDs(roundsDir string) (map[string]bool, error) {
	used := map[string]bool{}
	entries, err := os.ReadDir(roundsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		for _, f := range []string{"failures.jsonl", "traffic.jsonl"} {
			path := filepath.Join(roundsDir, e.Name(), f)
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				continue // a round that stopped before writing its inputs
			}
			err := jsonl.ReadFile(path, jsonl.DefaultMaxLine, func(l jsonl.Line) error {
				var rec struct {
					ID string `json:"id"`
				}
				if !l.TooLong && json.Unmarshal(l.Bytes, &rec) == nil && rec.ID != "" {
					used[rec.ID] = true
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return used, nil
}
