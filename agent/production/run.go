// Package production is Pioneer's production mode: given a deployed adapter and a log of
// its labelled failures, it triages the log (poison never becomes training data),
// diagnoses systematic error patterns and confirms them on fresh probes, synthesises a
// targeted curriculum, retrains candidates from the base model, and promotes one only
// through a regression gate (DESIGN.md §5). Every step goes to an append-only lineage log;
// a killed run resumes where it stopped.
package production

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

// Config configures Run. Zero values take the defaults noted.
type Config struct {
	Base     string // base model folder
	BaseName string // how reports name it ("": Base)
	// Deployed is what is deployed: a PEFT adapter folder, or a model folder fine-tuned
	// from Base in every weight (candidates are then trained the same way).
	Deployed string
	Task     *task.Task
	Failures string // failure log (JSONL)
	// Traffic (optional): examples the deployed model got right, with their labels; they
	// define R, the set the new model must keep right. Without it R is the deployed
	// model's correct answers on the held-out set.
	Traffic string
	// ParentData (optional): the deployed adapter's training examples (task format). They
	// are replayed and are part of every candidate's training set (candidates are trained
	// from the base model on the parent's data plus the curriculum). Without it the
	// candidates learn from the curriculum and the pool examples it draws.
	ParentData string
	Out        string // run folder
	Epsilon    int    // at most this many examples of R may become wrong; 0: 2 (negative: 0)
	Iterations int    // 0: 3 (the search's budget: 2 candidates per iteration)
	// Search is how candidate pipelines are chosen: SearchGreedy ("" too) or
	// SearchMCTS.
	Search   string
	WallTime time.Duration
	// TokenBudget bounds the training tokens of all candidates together (0: no bound).
	// Like WallTime it is checked before an iteration (greedy) or a candidate (mcts)
	// starts, so the last one may overrun it.
	TokenBudget int64
	Manual      bool // stop before promotion and wait for Approve
	Device      torch.Device
	Recipe      agent.Recipe // the base recipe; 0 fields: 3 epochs, batch 16, lr 5e-3 (full: 1e-3), rank 16
	HeldOut     int          // validation examples in the held-out set; 0: 500
	Probes      int          // fresh probes per pattern; 0: 20
	MinProbe    float64      // probe error rate that confirms a pattern; 0: 0.2
	Teacher     *Teacher     // optional: an OpenAI-compatible endpoint that adds examples
	Seed        uint64
	Log         io.Writer
	Progress    func(training.Progress)
}

// Outcome is what a run decided; it is also RUN_DIR/outcome.json.
type Outcome struct {
	Verdict   string    `json:"verdict"` // promoted, awaiting_approval, rejected
	Version   string    `json:"version"` // the version deployed at the end
	Candidate string    `json:"candidate,omitempty"`
	Deployed  Scores    `json:"deployed"`
	Chosen    *Scores   `json:"chosen,omitempty"`
	Reasons   []string  `json:"reasons,omitempty"`
	Triage    Counts    `json:"triage"`
	Patterns  int       `json:"patterns_confirmed"`
	Wall      float64   `json:"wall_s"`
	Finished  time.Time `json:"finished"`
}

// Scores are a model's measurements in the gate.
type Scores struct {
	HeldOut     float64  `json:"heldout_metric"` // on V ∪ held-back failures
	Failures    float64  `json:"heldback_failures_metric"`
	Previous    float64  `json:"previous_eval_metric"` // on the previous version's evaluation set
	Regressions int      `json:"regressions"`          // examples of R now wrong
	Broken      []string `json:"broken,omitempty"`     // their ids
}

// Counts summarise triage.
type Counts struct {
	Read        int            `json:"read"`
	Quarantined int            `json:"quarantined"`
	Clean       int            `json:"clean"`
	Fixable     int            `json:"fixable"`
	Poison      int            `json:"poison"`
	Kinds       map[string]int `json:"kinds"`
}

func (c *Config) defaults() {
	if c.BaseName == "" {
		c.BaseName = c.Base
	}
	if c.Epsilon == 0 {
		c.Epsilon = 2
	} else if c.Epsilon < 0 {
		c.Epsilon = 0
	}
	if c.Iterations <= 0 {
		c.Iterations = 3
	}
	if c.Search == "" {
		c.Search = SearchGreedy
	}
	c.Recipe.Defaults()
	if c.HeldOut <= 0 {
		c.HeldOut = 500
	}
	if c.Probes <= 0 {
		c.Probes = 20
	}
	if c.MinProbe <= 0 {
		c.MinProbe = 0.2
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// state is a run in progress.
type state struct {
	cfg      Config
	t        *task.Task
	lin      *Lineage
	m        model.CausalLM
	tok      *tokenizer.Tokenizer
	eos, pad int
	eopts    task.EvalOptions
	versions *Versions
	tokens   int64 // training tokens of the candidates so far
}

// spent says which budget, wall time or training tokens, is used up ("" if none).
func (st *state) spent(start time.Time) string {
	switch c := st.cfg; {
	case c.WallTime > 0 && time.Since(start) > c.WallTime:
		return fmt.Sprintf("wall-time budget of %s spent", c.WallTime)
	case c.TokenBudget > 0 && st.tokens >= c.TokenBudget:
		return fmt.Sprintf("token budget of %d spent (%d training tokens)", c.TokenBudget, st.tokens)
	}
	return ""
}

// Run runs the production loop into cfg.Out (resuming what a previous, interrupted run
// there recorded) and returns its outcome.
func Run(ctx context.Context, cfg Config) (*Outcome, error) {
	full, err := isFullModel(cfg.Deployed)
	if err != nil {
		return nil, fmt.Errorf("deployed: %w", err)
	}
	cfg.Recipe.Full = full
	cfg.defaults()
	if cfg.Search != SearchGreedy && cfg.Search != SearchMCTS {
		return nil, fmt.Errorf("search %q: want %s or %s", cfg.Search, SearchGreedy, SearchMCTS)
	}
	start := time.Now()
	log := cfg.Log
	t := cfg.Task
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	lin, err := OpenLineage(filepath.Join(cfg.Out, "lineage.jsonl"))
	if err != nil {
		return nil, err
	}
	defer lin.Close()
	var done Outcome
	if lin.Has("outcome", &done) {
		fmt.Fprintf(log, "run already finished: %s (version %s)\n", done.Verdict, done.Version)
		return &done, nil
	}
	if len(lin.Events()) > 0 {
		fmt.Fprintf(log, "resuming: the lineage log holds %d steps\n", len(lin.Events()))
	}
	if err := lin.Append("start", "start", map[string]any{"task": t.Name, "base": cfg.BaseName, "deployed": cfg.Deployed,
		"failures": cfg.Failures, "traffic": cfg.Traffic, "parent_data": cfg.ParentData, "epsilon": cfg.Epsilon,
		"iterations": cfg.Iterations, "search": cfg.Search, "recipe": cfg.Recipe, "manual": cfg.Manual, "seed": cfg.Seed}); err != nil {
		return nil, err
	}
	versions, err := OpenVersions(cfg.Out)
	if err != nil {
		return nil, err
	}
	if versions.Current() == "" {
		if _, err := versions.Add(cfg.Deployed, VersionMeta{Source: cfg.Deployed, Note: "the deployment this run started from"}); err != nil {
			return nil, err
		}
		if err := lin.Append("v0", "version_registered", map[string]string{"version": "v0", "source": cfg.Deployed}); err != nil {
			return nil, err
		}
	}
	st := &state{cfg: cfg, t: t, lin: lin, versions: versions}
	if st.tok, err = tokenizer.Load(filepath.Join(cfg.Base, "tokenizer.json")); err != nil {
		return nil, err
	}
	defer st.tok.Close()
	// Triage reads the log with the base model (see likelier). The deployed adapter is
	// then attached to it for the rest of triage, the baseline and the probes, and
	// detached before any candidate trains. A fully fine-tuned deployment is loaded in
	// the base model's place instead (candidates reload the base).
	cur := versions.Current()
	if full {
		if err := st.fineTuneOf(versions.Dir(cur)); err != nil {
			return nil, fmt.Errorf("deployed model %s: %w", cfg.Deployed, err)
		}
	}
	if err := st.swap(cfg.Base); err != nil {
		return nil, err
	}
	defer func() { st.m.Close() }() // st.m is replaced when whole models are swapped in
	gen, err := model.ReadGenerationConfig(cfg.Base)
	if err != nil {
		return nil, err
	}
	if len(gen.EosTokenIDs) == 0 {
		return nil, fmt.Errorf("%s: no end-of-sequence token", cfg.Base)
	}
	st.eos, st.pad = gen.EosTokenIDs[0], gen.PadTokenID
	if st.pad < 0 {
		st.pad = st.eos
	}
	st.eopts = task.EvalOptions{Batch: 32, EOS: gen.EosTokenIDs, PadID: st.pad}

	// Data: the pool (training split), the held-out validation set, the parent's data.
	pool, err := t.Split("train")
	if err != nil {
		return nil, err
	}
	val, err := t.Split("validation")
	if err != nil {
		return nil, err
	}
	val = agent.Sample(t, val, cfg.HeldOut, cfg.Seed+11)
	var parent []task.Example
	if cfg.ParentData != "" {
		var bad []task.LineError
		if parent, bad, err = t.ReadFile(cfg.ParentData); err != nil {
			return nil, err
		}
		if len(bad) > 0 {
			return nil, fmt.Errorf("%s: %v", cfg.ParentData, bad[0])
		}
	}

	// 1. Read and triage the log.
	failures, quarantined, err := ReadFailures(t, cfg.Failures)
	if err != nil {
		return nil, err
	}
	if err := writeJSONL(filepath.Join(cfg.Out, "quarantine.jsonl"), quarantined); err != nil {
		return nil, err
	}
	var deployed *lora.Set
	detach := func() {
		if deployed != nil {
			deployed.Close()
			deployed = nil
		}
	}
	defer detach()
	// Triage compares the log with every labelled example at hand: the pool, the
	// parent's training data and the traffic the deployed model got right.
	reference := append(append([]task.Example(nil), pool...), parent...)
	if cfg.Traffic != "" {
		exs, _, err := t.ReadFile(cfg.Traffic)
		if err != nil {
			return nil, err
		}
		reference = append(reference, exs...)
	}
	tr := newTriager(t, reference)
	tr.lexicon = tokenLexicon(st.tok)
	var lmErr error
	tr.likelier = likelier(st.m, st.tok, st.eos, &lmErr)
	counts := Counts{Read: len(failures) + len(quarantined), Quarantined: len(quarantined), Kinds: map[string]int{}}
	verdicts := make([]Verdict, len(failures))
	var admitted []Failure
	gold := map[string]Item{}
	variants := map[string]Item{}
	for i, f := range failures {
		verdicts[i] = tr.triage(f)
	}
	if lmErr != nil {
		return nil, fmt.Errorf("triage: %w", lmErr)
	}
	if full {
		if err := st.swap(versions.Dir(cur)); err != nil {
			return nil, fmt.Errorf("deployed model %s: %w", cfg.Deployed, err)
		}
	} else if deployed, err = lora.Load(versions.Dir(cur), st.m); err != nil {
		return nil, fmt.Errorf("deployed adapter %s: %w", cfg.Deployed, err)
	}
	// A second look at entity types, with the deployed model.
	if err := st.modelCheck(tr, failures, verdicts); err != nil {
		return nil, err
	}
	for i, f := range failures {
		v := verdicts[i]
		counts.Kinds[v.Class+":"+v.Kind]++
		switch v.Class {
		case "poison":
			counts.Poison++
			continue
		case "fixable":
			counts.Fixable++
			ex := f.Example()
			variants[f.ID] = Item{Example: ex, Source: SrcVariant}
			ex.Text = v.Cleaned
			gold[f.ID] = Item{Example: ex, Source: SrcGold}
		default:
			counts.Clean++
			gold[f.ID] = Item{Example: f.Example(), Source: SrcGold}
		}
		admitted = append(admitted, f)
	}
	if err := writeJSONL(filepath.Join(cfg.Out, "triage.jsonl"), verdicts); err != nil {
		return nil, err
	}
	if err := lin.Append("triage", "triage", counts); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "triage   %d log lines: %d quarantined (quarantine.jsonl), %d clean, %d fixable, %d poison (triage.jsonl)\n",
		counts.Read, counts.Quarantined, counts.Clean, counts.Fixable, counts.Poison)
	if len(admitted) == 0 {
		return st.finish(start, &Outcome{Verdict: "rejected", Version: versions.Current(), Triage: counts,
			Reasons: []string{"no failure in the log may become training data"}})
	}

	// Hold back 30 % of the admitted failures (by id, stable) for evaluation.
	var trainF, holdF []Failure
	for _, f := range admitted {
		h := fnv.New32a()
		h.Write([]byte(f.ID))
		if h.Sum32()%10 < 3 {
			holdF = append(holdF, f)
		} else {
			trainF = append(trainF, f)
		}
	}
	hold := make([]task.Example, len(holdF))
	for i, f := range holdF {
		hold[i] = gold[f.ID].Example
	}
	trainIDs := map[string]bool{}
	for _, f := range trainF {
		trainIDs[f.ID] = true
	}
	for id := range gold {
		if !trainIDs[id] {
			delete(gold, id)
			delete(variants, id)
		}
	}

	// Pool entries already seen (the parent's data, the logged inputs) are not fresh.
	seenText := map[string]bool{}
	for _, ex := range parent {
		seenText[ex.Text] = true
	}
	for _, f := range failures {
		seenText[f.Input] = true
	}
	usable := func(i int) bool { return !seenText[pool[i].Text] }

	// 2. The deployed model: baseline scores, R, and probes for the diagnosis.
	var base baseline
	if !lin.Has("baseline", &base) {
		if base, err = st.baseline(val, hold, cfg.Traffic); err != nil {
			return nil, err
		}
		if err := lin.Append("baseline", "deployed_scored", base); err != nil {
			return nil, err
		}
	}
	diag := groupFailures(t, admitted)
	var probed []*Pattern
	if !lin.Has("diagnosis", &probed) {
		if err := st.confirm(diag, pool, usable); err != nil {
			return nil, err
		}
		if err := lin.Append("diagnosis", "diagnosis", diag.Patterns); err != nil {
			return nil, err
		}
	} else {
		diag.Patterns = probed
	}
	detach()
	if err := writeJSON(filepath.Join(cfg.Out, "diagnosis.json"), diag); err != nil {
		return nil, err
	}
	confirmed := 0
	for _, p := range diag.Patterns {
		if p.Confirmed {
			confirmed++
			fmt.Fprintf(log, "pattern  %s: %s\n", p.ID, p.Evidence)
		}
	}
	fmt.Fprintf(log, "diagnose %d candidate patterns, %d confirmed on fresh probes (diagnosis.json)\n", len(diag.Patterns), confirmed)
	fmt.Fprintf(log, "deployed %s %s %.4f on the held-out set (%d examples), R = %d examples it gets right\n",
		cur, t.Metric, base.Deployed.HeldOut, len(base.HeldOut), len(base.R))
	if confirmed == 0 {
		return st.finish(start, &Outcome{Verdict: "rejected", Version: cur, Deployed: base.Deployed, Triage: counts,
			Reasons: []string{"no error pattern was confirmed on fresh probes: nothing systematic to fix"}})
	}

	// 3-5. Iterate: curriculum, candidates from the base model, the gate.
	poolTexts := make([]string, len(pool))
	for i, ex := range pool {
		poolTexts[i] = ex.Text
	}
	poolIx := newIndex(poolTexts)
	env := &searchEnv{patterns: diag.Patterns, gold: gold, variants: variants, pool: pool, poolIx: poolIx, usable: usable,
		parent: parent, base: base, val: val, hold: hold, tr: tr}
	if cfg.Search == SearchMCTS {
		best, reasons, err := st.search(ctx, start, env)
		if err != nil {
			return nil, err
		}
		if best != nil {
			return st.promote(start, best, base, counts, confirmed)
		}
		return st.finish(start, &Outcome{Verdict: "rejected", Version: versions.Current(), Deployed: base.Deployed, Triage: counts,
			Patterns: confirmed, Reasons: reasons})
	}
	var reasons []string
	replayR := false // set once candidates fail the gate on regressions: replay R itself
	for it := 1; it <= cfg.Iterations; it++ {
		if why := st.spent(start); why != "" {
			reasons = append(reasons, fmt.Sprintf("%s after %d iterations", why, it-1))
			break
		}
		pol := policy(base.Deployed.HeldOut, it)
		cur2 := st.curriculum(ctx, env, pol.similar, pol.teacher, replayR, cfg.Seed+uint64(it)*101)
		if replayR {
			pol.name += "; the last candidates broke examples of R, so R is replayed"
		}
		key := fmt.Sprintf("iter%d", it)
		if err := writeJSONL(filepath.Join(cfg.Out, key, "curriculum.jsonl"), cur2.Items); err != nil {
			return nil, err
		}
		if err := lin.Append(key+"/curriculum", "curriculum", map[string]any{"iteration": it, "policy": pol.name, "mix": cur2.Mix, "items": len(cur2.Items)}); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "iter %d   policy %s; curriculum %d examples %v\n", it, pol.name, len(cur2.Items), cur2.Mix)
		var best *candidate
		for _, pl := range candidatePlans(cfg.Recipe, pol, it) {
			c, err := st.candidate(ctx, key, pl.recipe, pl.goldX, parent, cur2, base, val, hold)
			if err != nil {
				return nil, err
			}
			st.logCandidate(c, "", base)
			if c.Pass && (best == nil || c.Scores.HeldOut > best.Scores.HeldOut) {
				best = c
			}
			if !c.Pass {
				reasons = append(reasons, fmt.Sprintf("iteration %d, %s: %s", it, c.Name, c.Verdict))
				if c.Scores.Regressions > cfg.Epsilon {
					replayR = true
				}
			}
		}
		if best != nil {
			return st.promote(start, best, base, counts, confirmed)
		}
	}
	return st.finish(start, &Outcome{Verdict: "rejected", Version: versions.Current(), Deployed: base.Deployed, Triage: counts,
		Patterns: confirmed, Reasons: reasons})
}

// swap loads the model in dir (the base, or a fully fine-tuned version, which must have
// the base model's architecture and size) in place of the current one.
func (st *state) swap(dir string) error {
	if dir != st.cfg.Base {
		if err := st.fineTuneOf(dir); err != nil {
			return err
		}
	}
	m, err := model.Load(dir, st.cfg.Device, torch.Float32)
	if err != nil {
		return err
	}
	if st.m != nil {
		st.m.Close()
	}
	st.m = m
	return nil
}

// fineTuneOf checks that the model in dir has the base model's architecture and size.
func (st *state) fineTuneOf(dir string) error {
	a, err := model.Inspect(st.cfg.Base)
	if err != nil {
		return err
	}
	b, err := model.Inspect(dir)
	if err != nil {
		return err
	}
	if a.Architecture != b.Architecture || a.Params != b.Params || a.VocabSize != b.VocabSize {
		return fmt.Errorf("%s (%s, %d parameters, vocabulary %d) is not a fine-tune of the base model %s (%s, %d parameters, vocabulary %d)",
			dir, b.Architecture, b.Params, b.VocabSize, st.cfg.BaseName, a.Architecture, a.Params, a.VocabSize)
	}
	return nil
}

// likelierMargin: a spelling correction is made when the base model gives the corrected
// sentence at least this many nats more log-probability than the sentence as logged.
// Chosen with pioneer-nano as the judge, on 1,500 validation sentences of CoNLL-2003 and
// CLINC150 each, clean and with one slip planted in each (TestLikelier measures a
// sample): of the corrections the data's vocabulary proposes for clean CoNLL-2003 text
// (149, one in ten sentences), it lets 54 through; of the planted slips it would
// repair, it keeps 98 % (CoNLL-2003) and 93 % (CLINC150). A margin of 0 keeps 99 % and
// 96 % but lets 73 false corrections through. A fine-tuned deployment is a worse
// judge: fully fine-tuned for CoNLL-2003, it lets 90 through and keeps 93 %. (Measured
// before correction refused inflections of a known word, which removes a few more.)
const likelierMargin = 2

// likelier returns triage's language-model check of a spelling correction: m's
// log-probability of each sentence after a start token. A scoring error is kept in
// *errp (the first one) and the correction refused.
func likelier(m model.CausalLM, tok model.Tokenizer, start int, errp *error) func(before, after string) bool {
	return func(before, after string) bool {
		if *errp != nil {
			return false
		}
		a, err := tok.Encode(before, false)
		if err != nil {
			*errp = err
			return false
		}
		b, err := tok.Encode(after, false)
		if err != nil {
			*errp = err
			return false
		}
		if n := m.Info().MaxPositions - 1; len(a) > n || len(b) > n {
			return false // longer than the model reads: leave the text as logged
		}
		sc, err := infer.Score(m, [][]int{{start}, {start}}, [][]int{a, b}, 2)
		if err != nil {
			*errp = err
			return false
		}
		return sc[1].LogProb-sc[0].LogProb >= likelierMargin
	}
}

// modelCheck runs the triager's second look with the deployed model over the extraction
// failures triage let through whose entity types the type model already doubts: the
// deployed model's type scores for their entities.
func (st *state) modelCheck(tr *triager, failures []Failure, verdicts []Verdict) error {
	if st.t.Type != task.Extraction {
		return nil
	}
	var idx []int
	var exs []task.Example
	var doubts [][]float64
	for i, v := range verdicts {
		if v.Class == "poison" {
			continue
		}
		ex := failures[i].Example()
		if v.Cleaned != "" {
			ex.Text = v.Cleaned
		}
		d := tr.typeDoubts(ex)
		if d == nil {
			continue
		}
		idx, exs, doubts = append(idx, i), append(exs, ex), append(doubts, d)
	}
	if len(exs) == 0 {
		return nil
	}
	scores, err := st.t.EntityTypeScores(st.m, st.tok, exs, st.eopts)
	if err != nil {
		return err
	}
	for k, i := range idx {
		if reason := tr.entityModelCheck(exs[k], doubts[k], scores[k]); reason != "" {
			verdicts[i] = Verdict{ID: failures[i].ID, Line: failures[i].Line, Class: "poison", Kind: PoisonLabelFlip, Reason: reason}
		}
	}
	return nil
}

// baseline is the deployed model's measurements, recorded once.
type baseline struct {
	Deployed Scores         `json:"deployed"`
	HeldOut  []task.Example `json:"heldout"` // V ∪ held-back failures
	R        []task.Example `json:"r"`
	Previous []task.Example `json:"previous_eval"` // the current version's evaluation set
	RNote    string         `json:"r_note"`
}

func (st *state) baseline(val, hold []task.Example, traffic string) (baseline, error) {
	b := baseline{HeldOut: append(append([]task.Example(nil), val...), hold...)}
	prev, err := st.versions.EvalSet(st.versions.Current())
	if err != nil {
		return b, err
	}
	if prev == nil {
		prev = val
	}
	b.Previous = prev
	sc, res, err := st.score(b.HeldOut, nil, prev, len(hold))
	if err != nil {
		return b, err
	}
	if err := writeJSON(filepath.Join(st.cfg.Out, "deployed_heldout.json"), res); err != nil {
		return b, err
	}
	b.Deployed = sc
	if traffic != "" {
		exs, bad, err := st.t.ReadFile(traffic)
		if err != nil {
			return b, err
		}
		r, err := st.t.Evaluate(st.m, st.tok, exs, st.eopts)
		if err != nil {
			return b, err
		}
		for i, ex := range exs {
			if r.Predictions[i].Correct {
				b.R = append(b.R, ex)
			}
		}
		b.RNote = fmt.Sprintf("traffic %s: %d examples, %d bad lines, %d the deployed model gets right", traffic, len(exs), len(bad), len(b.R))
	} else {
		for i, ex := range val {
			if res.Predictions[i].Correct {
				b.R = append(b.R, ex)
			}
		}
		b.RNote = fmt.Sprintf("no traffic given: R = the %d held-out validation examples the deployed model gets right", len(b.R))
	}
	return b, nil
}

// score evaluates the model as it stands on the held-out set (whose last nHold examples
// are held-back failures), R and the previous version's evaluation set.
func (st *state) score(heldout, r, prev []task.Example, nHold int) (Scores, *task.Result, error) {
	var sc Scores
	res, err := st.t.Evaluate(st.m, st.tok, heldout, st.eopts)
	if err != nil {
		return sc, nil, err
	}
	sc.HeldOut = res.Value
	if nHold > 0 {
		sub := &task.Result{Predictions: res.Predictions[len(heldout)-nHold:]}
		sc.Failures = meanScore(sub)
	}
	if len(r) > 0 {
		rr, err := st.t.Evaluate(st.m, st.tok, r, st.eopts)
		if err != nil {
			return sc, nil, err
		}
		for i, p := range rr.Predictions {
			if !p.Correct {
				sc.Regressions++
				sc.Broken = append(sc.Broken, r[i].ID)
			}
		}
	}
	pr, err := st.t.Evaluate(st.m, st.tok, prev, st.eopts)
	if err != nil {
		return sc, nil, err
	}
	sc.Previous = pr.Value
	return sc, res, nil
}

func meanScore(r *task.Result) float64 {
	if len(r.Predictions) == 0 {
		return math.NaN()
	}
	var s float64
	for _, p := range r.Predictions {
		s += p.Score
	}
	return s / float64(len(r.Predictions))
}

// confirm runs the deployed model on fresh probes for every candidate pattern.
func (st *state) confirm(d *Diagnosis, pool []task.Example, usable func(int) bool) error {
	var all []task.Example
	idx := map[*Pattern][]int{}
	seen := map[int]int{}
	for _, p := range d.Patterns {
		for _, i := range probeSet(st.t, p, pool, usable, st.cfg.Probes) {
			if _, ok := seen[i]; !ok {
				seen[i] = len(all)
				all = append(all, pool[i])
			}
			idx[p] = append(idx[p], seen[i])
		}
	}
	var res *task.Result
	if len(all) > 0 {
		var err error
		if res, err = st.t.Evaluate(st.m, st.tok, all, st.eopts); err != nil {
			return err
		}
	}
	for _, p := range d.Patterns {
		probes := make([]task.Example, len(idx[p]))
		preds := make([]task.Prediction, len(idx[p]))
		for k, j := range idx[p] {
			probes[k], preds[k] = all[j], res.Predictions[j]
		}
		judge(p, probes, preds, st.cfg.MinProbe)
	}
	return nil
}

// band is the score-band policy of DESIGN §5.
type band struct {
	name    string
	similar int // similar pool examples per gold failure
	teacher int // teacher examples per gold failure
	tune    bool
}

func policy(metric float64, it int) band {
	switch {
	case metric < 0.80:
		return band{name: "rebuild data (deployed below 0.80): many similar examples per failure", similar: 2 * it, teacher: 2, tune: false}
	case metric < 0.95:
		return band{name: "tune (deployed 0.80-0.95): targeted data, hyperparameters searched", similar: it, teacher: 1, tune: true}
	default:
		return band{name: "targeted (deployed above 0.95): a few examples per failure pattern", similar: max(it-1, 0), teacher: 1, tune: true}
	}
}

// plan is a candidate to train: its recipe and how many copies of each gold failure
// its training set holds.
type plan struct {
	recipe agent.Recipe
	goldX  int
}

// candidatePlans are the pipelines tried in an iteration: the base recipe, and a second
// one that weighs the failures twice (and, when tuning, trains longer at a lower rate).
func candidatePlans(r agent.Recipe, pol band, it int) []plan {
	a := r
	a.Name = "A"
	a.Seed = r.Seed + uint64(it)
	b := a
	b.Name = "B-gold-x2"
	if pol.tune {
		b.Epochs = r.Epochs + 1
		b.LR = r.LR * 0.6
	}
	return []plan{{a, 1}, {b, 2}}
}

// curriculum builds the curriculum for similarPer similar pool examples per gold
// failure (extended by the teacher, when there is one), with R appended when replayR.
func (st *state) curriculum(ctx context.Context, env *searchEnv, similarPer, teacherPer int, replayR bool, seed uint64) *Curriculum {
	cur := buildCurriculum(st.t, env.patterns, env.gold, env.variants, env.pool, env.poolIx, env.usable, env.parent, similarPer, seed)
	if st.cfg.Teacher != nil {
		if err := st.cfg.Teacher.extend(ctx, st.t, env.tr, cur, teacherPer); err != nil {
			fmt.Fprintf(st.cfg.Log, "teacher  %v (continuing without)\n", err)
		}
	}
	if replayR {
		for _, ex := range env.base.R {
			cur.Items = append(cur.Items, Item{Example: ex, Source: SrcTraffic})
			cur.Mix[SrcTraffic]++
		}
	}
	return cur
}

// logCandidate prints a gated candidate's scores and verdict; how says where it came
// from ("" for none).
func (st *state) logCandidate(c *candidate, how string, base baseline) {
	if how != "" {
		how = " (" + how + ")"
	}
	fmt.Fprintf(st.cfg.Log, "  %s%s: %s %.4f (deployed %.4f), regressions %d/%d (ε %d), previous-version set %.4f (needs %.4f): %s\n",
		c.Name, how, st.t.Metric, c.Scores.HeldOut, base.Deployed.HeldOut, c.Scores.Regressions, len(base.R), st.cfg.Epsilon,
		c.Scores.Previous, base.Deployed.Previous, c.Verdict)
}

// candidate is one trained and gated pipeline.
type candidate struct {
	Name    string       `json:"name"`
	Dir     string       `json:"dir"`
	Recipe  agent.Recipe `json:"recipe"`
	Train   int          `json:"train_examples"`
	Tokens  int64        `json:"train_tokens"`
	Scores  Scores       `json:"scores"`
	Pass    bool         `json:"pass"`
	Verdict string       `json:"verdict"`
}

// candidate trains recipe r from the base model on the parent's data and the curriculum
// (its gold failures goldX times) and gates it; a candidate the lineage already holds is
// not trained again.
func (st *state) candidate(ctx context.Context, iter string, r agent.Recipe, goldX int, parent []task.Example, cur *Curriculum, base baseline, val, hold []task.Example) (*candidate, error) {
	key := iter + "/" + r.Name
	var c candidate
	if st.lin.Has(key+"/gate", &c) {
		st.tokens += c.Tokens
		return &c, nil
	}
	c = candidate{Name: key, Dir: filepath.Join(st.cfg.Out, iter, r.Name), Recipe: r}
	train := append([]task.Example(nil), parent...)
	for _, it := range cur.Items {
		train = append(train, it.Example)
		for k := 1; k < goldX && it.Source == SrcGold; k++ {
			train = append(train, it.Example)
		}
	}
	c.Train = len(train)
	if r.Full { // retrain from the base model's weights
		if err := st.swap(st.cfg.Base); err != nil {
			return nil, err
		}
	}
	if err := st.lin.Append(key+"/recipe", "candidate_recipe", map[string]any{"candidate": key, "recipe": r, "train_examples": len(train),
		"parent_examples": len(parent), "curriculum": cur.Mix}); err != nil {
		return nil, err
	}
	set, tr, err := agent.Train(ctx, st.m, st.tok, st.t, train, agent.Sample(st.t, val, 100, 7), r, agent.TrainEnv{
		EOS: st.eos, Pad: st.pad, Base: st.cfg.BaseName, Out: filepath.Join(c.Dir, "adapter"), Log: st.cfg.Log,
		Progress: st.cfg.Progress, Resume: true})
	if err != nil {
		return nil, fmt.Errorf("candidate %s: %w", key, err)
	}
	if tr != nil {
		c.Tokens = tr.Tokens
		st.tokens += c.Tokens
	}
	if r.Full {
		if err := model.CopyCompanionFiles(st.cfg.Base, filepath.Join(c.Dir, "adapter")); err != nil {
			return nil, err
		}
	}
	sc, res, err := st.score(base.HeldOut, base.R, base.Previous, len(hold))
	if set != nil {
		set.Close()
	}
	if err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(c.Dir, "heldout.json"), res); err != nil {
		return nil, err
	}
	c.Scores = sc
	c.Pass, c.Verdict = gate(sc, base.Deployed, st.cfg.Epsilon)
	if err := st.lin.Append(key+"/gate", "gate", c); err != nil {
		return nil, err
	}
	return &c, nil
}

// gate is the regression gate: the candidate must improve the held-out metric, break at
// most epsilon examples of R, and do at least as well as the deployed version on that
// version's own evaluation set (the ratchet).
func gate(c, deployed Scores, epsilon int) (bool, string) {
	var why []string
	if !(c.HeldOut > deployed.HeldOut) {
		why = append(why, fmt.Sprintf("held-out metric %.4f does not improve on %.4f", c.HeldOut, deployed.HeldOut))
	}
	if c.Regressions > epsilon {
		why = append(why, fmt.Sprintf("%d examples of R became wrong (at most %d allowed)", c.Regressions, epsilon))
	}
	if c.Previous < deployed.Previous {
		why = append(why, fmt.Sprintf("previous version's evaluation set %.4f < %.4f (ratchet)", c.Previous, deployed.Previous))
	}
	if len(why) == 0 {
		return true, "pass"
	}
	return false, "rejected: " + joinSemi(why)
}

func joinSemi(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}

// promote records the winning candidate as a new version (or, with Manual, as pending).
func (st *state) promote(start time.Time, c *candidate, base baseline, counts Counts, confirmed int) (*Outcome, error) {
	o := &Outcome{Candidate: c.Name, Deployed: base.Deployed, Chosen: &c.Scores, Triage: counts, Patterns: confirmed}
	meta := VersionMeta{Source: c.Dir, Candidate: c.Name, Recipe: c.Recipe, Scores: &c.Scores,
		Note: fmt.Sprintf("promoted by the gate over %s", st.versions.Current())}
	if st.cfg.Manual {
		if err := writeJSON(filepath.Join(st.cfg.Out, "pending.json"), Pending{Adapter: filepath.Join(c.Dir, "adapter"), Meta: meta, EvalSet: base.HeldOut}); err != nil {
			return nil, err
		}
		o.Verdict, o.Version = "awaiting_approval", st.versions.Current()
		if err := st.lin.Append("awaiting_approval", "awaiting_approval", map[string]string{"candidate": c.Name}); err != nil {
			return nil, err
		}
		fmt.Fprintf(st.cfg.Log, "gate     %s passed; waiting for `pioneer approve %s`\n", c.Name, st.cfg.Out)
		return st.finish(start, o)
	}
	v, err := st.versions.Add(filepath.Join(c.Dir, "adapter"), meta)
	if err != nil {
		return nil, err
	}
	if err := st.versions.SetEvalSet(v, base.HeldOut); err != nil {
		return nil, err
	}
	if err := st.lin.Append("promoted", "promoted", map[string]string{"candidate": c.Name, "version": v}); err != nil {
		return nil, err
	}
	o.Verdict, o.Version = "promoted", v
	fmt.Fprintf(st.cfg.Log, "promote  %s is version %s\n", c.Name, v)
	return st.finish(start, o)
}

func (st *state) finish(start time.Time, o *Outcome) (*Outcome, error) {
	o.Wall = time.Since(start).Seconds()
	o.Finished = time.Now().UTC()
	if o.Triage.Kinds == nil {
		o.Triage.Kinds = map[string]int{}
	}
	if err := writeJSON(filepath.Join(st.cfg.Out, "outcome.json"), o); err != nil {
		return nil, err
	}
	if err := st.lin.Append("outcome", "outcome", o); err != nil {
		return nil, err
	}
	if err := WriteReport(st.cfg.Out); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return o, nil
}

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(b, '\n'))
}

func writeJSONL[T any](path string, rows []T) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var buf []byte
	for _, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	return fsutil.WriteFileAtomic(path, buf)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

var errNoPending = errors.New("nothing awaits approval")
