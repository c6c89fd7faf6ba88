package coldstart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/search"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/teacher"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/format"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/model"
)

// Config configures Run. Zero values take the defaults noted.
type Config struct {
	Description string
	Examples    []task.Example // the user's few examples (may be nil)
	Catalogs    []string       // dataset folders; the bundled tasks are always in
	Base        string         // base model: a folder, GGUF file or bundled model
	Out         string         // run folder
	Device      torch.Device
	// Iterations bounds the search's rounds (3: with Search mcts, 2 x Iterations
	// candidates); Target is the evaluation metric at which it stops (0.96, the paper's τ).
	Iterations int
	// Search is greedy (rounds of two candidates) or mcts (Monte-Carlo graph search over
	// data size, epochs, learning rate and rank, one change from a pipeline tried before).
	Search string
	// Strategy is search (LoRA first, every weight tried in the greedy search's second
	// round; the default), lora or full (every candidate in every weight). The
	// Monte-Carlo search trains LoRA unless it is full.
	Strategy string
	Target   float64
	EvalSize int // frozen evaluation examples (200)
	// Recipe is the first candidate's training (finetune defaults, the learning rate
	// finetune.UsualLR's for the base model where none is given; LoRA); the search
	// changes epochs, learning rate and the data's size from it.
	Recipe   finetune.Recipe
	WallTime time.Duration // 0: no bound
	Seed     uint64        // 1
	// Manual stops the run after the task folder is written, for a person to read and
	// edit task/task.yaml; the same command without it goes on from there (the task as
	// edited).
	Manual bool
	// Planner, when set, proposes the task (agent/coldstart's planner.go); a planner that
	// fails or proposes an invalid task is recorded and the built-in planner plans.
	// Teacher, when set, writes seed examples where the catalog's data are thin (or
	// missing): seeds.go.
	Planner, Teacher *teacher.Client
	Log              io.Writer
	Progress         func(training.Progress)
}

func (c *Config) defaults() {
	if c.Iterations == 0 {
		c.Iterations = 3
	}
	if c.Search == "" {
		c.Search = SearchGreedy
	}
	if c.Target == 0 {
		c.Target = 0.96
	}
	if c.EvalSize == 0 {
		c.EvalSize = 200
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Strategy == "" {
		c.Strategy = StrategySearch
	}
	c.Recipe.Full = c.Strategy == StrategyFull
	lr := c.Recipe.LR
	c.Recipe.Defaults()
	c.Recipe.LR = lr // 0: the base model's usual rate (finetune.UsualLR), set once it is open
}

// Candidate is one trained pipeline scored on the frozen evaluation set.
type Candidate struct {
	Name     string          `json:"name"`
	Recipe   finetune.Recipe `json:"recipe"`
	TrainN   int             `json:"train_examples"` // asked for (0: all the curation leaves)
	Curation Curation        `json:"curation"`
	Metric   float64         `json:"metric"`
	Tokens   int64           `json:"train_tokens"`
	Dir      string          `json:"dir"` // relative to the run folder: Dir/adapter
	// WallS is the candidate's training and scoring time, TrainS the training's part of it
	// (its validation included); Sized says how its data were cut to the wall time left
	// ("" if they were not).
	WallS  float64 `json:"wall_s"`
	TrainS float64 `json:"train_s"`
	Sized  string  `json:"sized,omitempty"`
}

// Outcome is what a cold-start run decided.
type Outcome struct {
	Task       string      `json:"task"`
	Metric     string      `json:"metric"`
	Baseline   float64     `json:"baseline"` // the base model on the frozen set
	Target     float64     `json:"target"`
	Reached    bool        `json:"reached"`
	Best       *Candidate  `json:"best"`
	Candidates []Candidate `json:"candidates"`
	Version    string      `json:"version"` // the deployment's v0 (versions/ in the run folder)
	Stopped    string      `json:"stopped"` // why the search ended
	Wall       float64     `json:"wall_s"`
}

// AwaitingApproval is Outcome.Stopped of a run that waits for its task to be approved.
const AwaitingApproval = "awaiting approval of the task"

// data is the data stage's record.
type dataRecord struct {
	Pool  *Pool    `json:"pool"`
	Seeds *Seeds   `json:"seeds,omitempty"` // the teacher's, when there is one
	Eval  *EvalSet `json:"eval"`
	Train int      `json:"train"`
	Dev   int      `json:"dev"`
}

// Run runs cold-start mode into cfg.Out: plan, data, frozen evaluation set, baseline,
// search, result. A rerun of the same settings resumes (finished stages and candidates
// are not redone); a stop request ends it between steps.
func Run(ctx context.Context, cfg Config) (*Outcome, error) {
	cfg.defaults()
	if strings.TrimSpace(cfg.Description) == "" {
		return nil, errors.New("coldstart: no task description")
	}
	if cfg.Out == "" || cfg.Base == "" {
		return nil, errors.New("coldstart: a run folder and a base model are needed")
	}
	if cfg.Search != SearchGreedy && cfg.Search != SearchMCTS {
		return nil, fmt.Errorf("coldstart: search %q is not greedy or mcts", cfg.Search)
	}
	if cfg.Strategy != StrategySearch && cfg.Strategy != StrategyLoRA && cfg.Strategy != StrategyFull {
		return nil, fmt.Errorf("coldstart: strategy %q is not search, lora or full", cfg.Strategy)
	}
	if cfg.Target <= 0 || cfg.Target > 1 {
		return nil, fmt.Errorf("coldstart: target %v is not in (0, 1]", cfg.Target)
	}
	start := time.Now()
	cat, err := catalog.Open(cfg.Catalogs...)
	if err != nil {
		return nil, err
	}
	if err := cat.AddBundled(); err != nil {
		return nil, err
	}
	run, err := agent.Create(cfg.Out)
	if err != nil {
		return nil, err
	}
	defer run.Close()
	set := agent.Settings{"description": cfg.Description, "base": cfg.Base, "catalogs": strings.Join(cfg.Catalogs, "\x00"),
		"examples": strconv.Itoa(len(cfg.Examples)), "eval_size": strconv.Itoa(cfg.EvalSize), "seed": strconv.FormatUint(cfg.Seed, 10),
		"recipe": fmt.Sprintf("%+v", cfg.Recipe), "target": strconv.FormatFloat(cfg.Target, 'g', -1, 64), "iterations": strconv.Itoa(cfg.Iterations), "search": cfg.Search}
	if cfg.Strategy != StrategySearch {
		set["strategy"] = cfg.Strategy
	}
	for k, c := range map[string]*teacher.Client{"planner": cfg.Planner, "teacher": cfg.Teacher} {
		if c != nil { // (absent without, so that the settings of runs from before stay)
			set[k] = c.URL + " " + c.Model
		}
	}
	if err := run.Start(set, nil); err != nil {
		return nil, err
	}
	var done Outcome
	if ok, err := run.Lineage.Get("outcome", &done); err != nil || ok {
		return &done, err
	}
	log := cfg.Log

	// 1. The task.
	plan, err := agent.Step(ctx, run, "plan", "plan", func() (*Plan, error) { return PlanWith(ctx, cfg.Planner, cfg.Description, cfg.Examples, cat) })
	if err != nil {
		return nil, err
	}
	if plan.PlannerFallback != "" {
		fmt.Fprintf(log, "planner  %s\n", plan.PlannerFallback)
	}
	fmt.Fprintf(log, "task     %s: %s, metric %s\n", plan.Task.Name, plan.Task.Type, plan.Task.Metric)
	if len(plan.Sources) == 0 {
		if cfg.Teacher == nil {
			return nil, fmt.Errorf("coldstart: no dataset in the catalogs supplies the task (%s); add a folder of examples with --catalog, or a teacher to write them", strings.Join(plan.Reasons, "; "))
		}
		fmt.Fprintf(log, "data     no dataset in the catalogs supplies the task: the teacher at %s writes it\n", cfg.Teacher.URL)
	}

	// 2-3. The data and the frozen evaluation set, written as a task folder.
	taskDir := run.Path("task")
	rec, err := agent.Step(ctx, run, "data", "data", func() (dataRecord, error) {
		pool := &Pool{From: map[string]int{}, Dropped: map[string]int{}}
		if len(plan.Sources) > 0 {
			if pool, err = Gather(plan, cat); err != nil {
				return dataRecord{}, err
			}
		}
		tested, err := TestInputs(cat)
		if err != nil {
			return dataRecord{}, err
		}
		pool.AddUser(plan, cfg.Examples, tested)
		var seeds *Seeds
		if cfg.Teacher != nil {
			if seeds, err = Seed(ctx, cfg.Teacher, plan, cfg.Examples, pool, tested); err != nil {
				return dataRecord{}, err
			}
			fmt.Fprintf(log, "teacher  %s\n", seeds)
		}
		if len(pool.Examples) == 0 {
			return dataRecord{}, fmt.Errorf("coldstart: no usable example for the task from the catalogs or the teacher (%s)", seeds)
		}
		es, train, dev, err := Freeze(taskDir, plan, pool.Examples, cfg.EvalSize, cfg.Seed)
		if err != nil && seeds != nil {
			return dataRecord{}, fmt.Errorf("%w (teacher: %s)", err, seeds)
		}
		if err != nil {
			return dataRecord{}, err
		}
		return dataRecord{Pool: pool, Seeds: seeds, Eval: es, Train: len(train), Dev: len(dev)}, nil
	})
	if err != nil {
		return nil, err
	}
	if cfg.Manual && !run.Lineage.Has("task_approved") {
		fmt.Fprintf(log, "waiting  for the task to be approved: read (and edit) %s, then run the same command without manual approval\n", filepath.Join(taskDir, "task.yaml"))
		return &Outcome{Task: plan.Task.Name, Metric: plan.Task.Metric, Target: cfg.Target, Stopped: AwaitingApproval}, nil
	}
	t, err := task.Load(taskDir)
	if err != nil {
		return nil, fmt.Errorf("coldstart: the task folder (as edited?): %w", err)
	}
	fp, err := t.Fingerprint()
	if err != nil {
		return nil, err
	}
	approved, err := agent.Step(ctx, run, "task_approved", "task_approved", func() (string, error) { return fp, nil })
	if err != nil {
		return nil, err
	}
	if approved != fp {
		return nil, fmt.Errorf("coldstart: %s changed after the run went on with it (fingerprint %s, now %s): use another run folder", taskDir, approved, fp)
	}
	// The task as it is now (a person may have edited it) is what the report shows.
	plan.Task.Prompt, plan.Task.Output, plan.Task.Metric, plan.Task.Labels, plan.Task.EntityTypes = t.Prompt, t.Output, t.Metric, t.Labels, t.EntityTypes
	plan.Task.MaxNewTokens = t.MaxNewTokens
	train, dev, eval, err := t.Splits()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "data     %d training, %d dev, %d frozen evaluation examples (%s)\n", len(train), len(dev), len(eval), rec.Eval.Parts())

	base, err := model.Open(cfg.Base, model.OpenOptions{Device: cfg.Device})
	if err != nil {
		return nil, err
	}
	defer base.Close()
	if len(base.EOS) == 0 {
		return nil, fmt.Errorf("%s: no end-of-sequence token", base.Dir)
	}
	if cfg.Recipe.LR == 0 {
		params := base.LM.Info().Params
		cfg.Recipe.LR = finetune.UsualLR(params, cfg.Recipe.Full)
		fmt.Fprintf(log, "recipe   learning rate %g, the usual one for a model of %s parameters\n", cfg.Recipe.LR, format.Commas(params))
	}
	eopts := task.EvalOptions{Batch: 32, EOS: base.EOS, PadID: base.Pad}

	// 4. The base model on the frozen set, and its mistakes on a sample of the training
	// data (the hard examples curation puts first).
	type baseline struct {
		Metric float64  `json:"metric"`
		Hard   []string `json:"hard"`
		Probed int      `json:"probed"` // training examples the base model answered
	}
	bl, err := agent.Step(ctx, run, "baseline", "baseline", func() (baseline, error) {
		res, err := t.Evaluate(ctx, base.LM, base.Tokenizer, eval, eopts)
		if err != nil {
			return baseline{}, err
		}
		probe := t.Sample(train, 200, cfg.Seed+7)
		pr, err := t.Evaluate(ctx, base.LM, base.Tokenizer, probe, eopts)
		if err != nil {
			return baseline{}, err
		}
		b := baseline{Metric: res.Value, Probed: len(probe)}
		for i, p := range pr.Predictions {
			if !p.Correct {
				b.Hard = append(b.Hard, probe[i].ID)
			}
		}
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "baseline %s %.4f on the frozen set (target %.2f); the base model gets %d of %d training examples wrong\n", t.Metric, bl.Metric, cfg.Target, len(bl.Hard), bl.Probed)
	hard := map[string]bool{}
	for _, id := range bl.Hard {
		hard[id] = true
	}

	// 5. The search: candidates from the base model, scored on the frozen set.
	o := &Outcome{Task: t.Name, Metric: t.Metric, Baseline: bl.Metric, Target: cfg.Target}
	budget := agent.NewBudget(cfg.WallTime, 0)
	train1 := func(pl pipelinePlan) (Candidate, error) {
		c, err := agent.Step(ctx, run, pl.Name, "candidate", func() (Candidate, error) {
			return trainCandidate(ctx, run, base, t, train, dev, eval, hard, pl, eopts, cfg)
		})
		if err != nil {
			return c, err
		}
		fmt.Fprintf(log, "  %s: %d training examples, %d epochs, lr %g, %s: %s %.4f on the frozen set\n",
			c.Name, c.Curation.Out, c.Recipe.Epochs, c.Recipe.LR, strategyOf(c.Recipe), t.Metric, c.Metric)
		o.Candidates = append(o.Candidates, c)
		if o.Best == nil || c.Metric > o.Best.Metric {
			best := c
			o.Best = &best
		}
		return c, nil
	}
	if cfg.Search == SearchMCTS {
		if err := o.mcts(ctx, cfg, run, len(t.Labels), len(train), budget, train1); err != nil {
			return nil, err
		}
	}
	plans := firstRound(cfg.Recipe, len(t.Labels), len(train))
	for it := 1; it <= cfg.Iterations && cfg.Search == SearchGreedy; it++ {
		var round []Candidate
		for _, pl := range plans {
			if why := budget.Spent(); why != "" {
				o.Stopped = why
				break
			}
			pl.Name = fmt.Sprintf("iter%d/%s", it, pl.Name)
			if !run.Lineage.Has(pl.Name) { // (a candidate trained before is kept as it was)
				var ok bool
				if pl, ok = sizeToBudget(pl, o.Candidates, budget, len(train)); !ok {
					o.Stopped = fmt.Sprintf("the wall time left (%s) trains no candidate at the pace of those before", budget.Wall)
					break
				}
			}
			c, err := train1(pl)
			if err != nil {
				return nil, err
			}
			round = append(round, c)
		}
		if o.Best != nil && o.Best.Metric >= cfg.Target {
			o.Reached, o.Stopped = true, fmt.Sprintf("target %.2f reached", cfg.Target)
			break
		}
		if o.Stopped != "" || len(round) == 0 {
			break
		}
		plans = nextRound(*o.Best, cfg.Strategy == StrategySearch && !triedFull(o.Candidates))
	}
	if o.Stopped == "" && o.Best != nil && o.Best.Metric >= cfg.Target {
		o.Reached, o.Stopped = true, fmt.Sprintf("target %.2f reached", cfg.Target)
	}
	if o.Stopped == "" {
		o.Stopped = fmt.Sprintf("%d iterations done", cfg.Iterations)
		if cfg.Search == SearchMCTS {
			o.Stopped = fmt.Sprintf("%d candidates done", len(o.Candidates))
		}
	}
	if err := agent.Stopped(ctx); err != nil {
		return nil, err
	}

	// 6. The best candidate becomes v0 of the deployment in the run folder.
	if o.Best != nil && o.Best.Metric > bl.Metric {
		vs, err := versions.Open(cfg.Out, true)
		if err != nil {
			return nil, err
		}
		if v, err := vs.Find(o.Best.Name); err != nil {
			return nil, err
		} else if v == "" {
			if o.Version, err = vs.Add(filepath.Join(cfg.Out, o.Best.Dir, "adapter"), versions.Meta{Source: o.Best.Name, Note: "cold-start's best candidate"}, nil); err != nil {
				return nil, err
			}
		} else {
			o.Version = v
		}
		if err := vs.SetCurrent(o.Version); err != nil {
			return nil, err
		}
	}
	o.Wall = time.Since(start).Seconds()
	if err := fsutil.WriteJSON(run.Path("outcome.json"), o); err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(run.Path("report.md"), []byte(o.Report(plan, rec))); err != nil {
		return nil, err
	}
	return o, run.Lineage.Append("outcome", "outcome", o)
}

// mcts runs the Monte-Carlo graph search: 2 x Iterations candidates at most, the first
// the recipe on a balanced 32 per label, each next one change from one tried before (with
// strategy search, LoRA or every weight among the changes), its data cut to the wall time
// left as in the greedy search; it stops at the target or the wall time.
func (o *Outcome) mcts(ctx context.Context, cfg Config, run *agent.Run, labels, pool int, budget *agent.Budget, train1 func(pipelinePlan) (Candidate, error)) error {
	first := firstRound(cfg.Recipe, labels, pool)[0]
	root := point{N: first.N, Epochs: cfg.Recipe.Epochs, LR: cfg.Recipe.LR, Full: cfg.Recipe.Full, Rank: cfg.Recipe.Rank,
		pool: pool, either: cfg.Strategy == StrategySearch}
	stop := func() bool {
		if why := budget.Spent(); why != "" {
			o.Stopped = why
			return true
		}
		return o.Stopped != "" || ctx.Err() != nil || o.Best != nil && o.Best.Metric >= cfg.Target
	}
	_, err := search.MCTS(root, search.Options{Budget: 2 * cfg.Iterations, Seed: cfg.Seed, Stop: stop,
		PreferWhenSound: []string{"twice the data", "one epoch more", "every weight", "learning rate x0.5"}},
		func(n *search.Node[point]) (float64, bool, error) {
			r := cfg.Recipe
			r.Epochs, r.LR, r.Full = n.P.Epochs, n.P.LR, n.P.Full
			if !r.Full {
				r.Rank = n.P.Rank
				if r.Alpha > 0 {
					r.Alpha = cfg.Recipe.Alpha * float64(n.P.Rank) / float64(cfg.Recipe.Rank)
				}
			}
			pl := pipelinePlan{Name: "search/" + n.Name, Recipe: r, N: n.P.N}
			if !run.Lineage.Has(pl.Name) { // (a candidate trained before is kept as it was)
				var ok bool
				if pl, ok = sizeToBudget(pl, o.Candidates, budget, pool); !ok {
					// the search ends here (stop says so before the next round); this node scores nothing
					o.Stopped = fmt.Sprintf("the wall time left (%s) trains no candidate at the pace of those before", budget.Wall)
					return 0, false, nil
				}
			}
			c, err := train1(pl)
			return c.Metric, false, err
		})
	return err
}

// pipelinePlan is a candidate to train: its recipe and how many curated examples.
type pipelinePlan struct {
	Name   string
	Recipe finetune.Recipe
	N      int
	Sized  string // how N was cut to the wall time left
}

// minSizedExamples is the fewest examples a plan is cut to: a few batches.
const minSizedExamples = 64

// sizeToBudget cuts a plan's data so that it ends within the wall time left: the time
// left, less the longest scoring so far (a fixed cost, whatever the data's size), at the
// training pace of the slowest candidate so far of the plan's strategy (every weight or
// LoRA; of any strategy where none of its own was trained) in seconds per curated
// example and epoch. The slowest, so that the cut is on the safe side; the scoring apart,
// so that a small first candidate's pace is not inflated by it. A plan without a
// wall-time bound, or with no candidate to pace it by, is kept; ok is false when the time
// left would train fewer than minSizedExamples.
func sizeToBudget(pl pipelinePlan, done []Candidate, budget *agent.Budget, pool int) (_ pipelinePlan, ok bool) {
	left, bounded := budget.WallLeft()
	pace, own, scoring := 0.0, false, 0.0
	for _, c := range done {
		n := c.Curation.Out * c.Recipe.Epochs
		if n == 0 || c.TrainS <= 0 {
			continue
		}
		scoring = max(scoring, c.WallS-c.TrainS)
		p, same := c.TrainS/float64(n), c.Recipe.Full == pl.Recipe.Full
		switch {
		case same && !own:
			pace, own = p, true
		case same == own:
			pace = max(pace, p)
		}
	}
	if !bounded || pace == 0 {
		return pl, true
	}
	n := pl.N
	if n == 0 {
		n = pool
	}
	fit := int((left.Seconds() - scoring) / (pace * float64(pl.Recipe.Epochs)))
	if fit >= n {
		return pl, true
	}
	if fit < minSizedExamples {
		return pl, false
	}
	pl.N = fit
	pl.Sized = fmt.Sprintf("%d of %d examples: what %s left, less %.0f s of scoring, trains at %.1f ms per example and epoch", fit, n, left.Round(time.Second), scoring, 1000*pace)
	return pl, true
}

// firstRound: the recipe on a balanced sample (32 per label, or 256), and on all the
// curated data.
func firstRound(r finetune.Recipe, labels, pool int) []pipelinePlan {
	small := 256
	if labels > 0 {
		small = 32 * labels
	}
	out := []pipelinePlan{{Name: "A-all", Recipe: r, N: 0}}
	if small < pool {
		out = append([]pipelinePlan{{Name: "A-small", Recipe: r, N: small}}, out...)
	}
	return out
}

// nextRound: from the best so far, one epoch more, and the learning rate halved; or,
// when every weight is to be tried and has not been, the best's data and epochs in every
// weight (at fullLRShare of its rate), and one epoch more.
func nextRound(best Candidate, tryFull bool) []pipelinePlan {
	a, b := best.Recipe, best.Recipe
	a.Epochs++
	if tryFull && !best.Recipe.Full {
		b.Full, b.LR = true, best.Recipe.LR*fullLRShare
		return []pipelinePlan{{Name: "full", Recipe: b, N: best.TrainN}, {Name: "epochs+1", Recipe: a, N: best.TrainN}}
	}
	b.LR /= 2
	return []pipelinePlan{{Name: "epochs+1", Recipe: a, N: best.TrainN}, {Name: "lr/2", Recipe: b, N: best.TrainN}}
}

func triedFull(cs []Candidate) bool {
	for _, c := range cs {
		if c.Recipe.Full {
			return true
		}
	}
	return false
}

// strategyOf says how a recipe trains, for people.
func strategyOf(r finetune.Recipe) string {
	if r.Full {
		return "every weight"
	}
	return fmt.Sprintf("LoRA rank %d", r.Rank)
}

// trainCandidate curates, trains from the base model (LoRA, or every weight) and scores a
// pipeline on the frozen set. Dir/adapter holds what it trained: an adapter, or a model
// folder. A candidate trained in every weight changes the base model's: they are loaded
// back before it returns, on every way out.
func trainCandidate(ctx context.Context, run *agent.Run, base *model.Pretrained, t *task.Task, train, dev, eval []task.Example,
	hard map[string]bool, pl pipelinePlan, eopts task.EvalOptions, cfg Config) (_ Candidate, err error) {
	start := time.Now()
	data, cu := Curate(t.Type, train, eval, hard, pl.N, cfg.Seed)
	c := Candidate{Name: pl.Name, Recipe: pl.Recipe, TrainN: pl.N, Curation: cu, Dir: pl.Name, Sized: pl.Sized}
	if pl.Sized != "" {
		fmt.Fprintf(cfg.Log, "  %s: data cut to the wall time left: %s\n", pl.Name, pl.Sized)
	}
	out := filepath.Join(run.Dir, c.Dir, "adapter")
	if pl.Recipe.Full {
		defer func() {
			if lerr := base.LoadWeights(base.Dir, cfg.Device); lerr != nil {
				err = errors.Join(err, fmt.Errorf("candidate %s: the base weights back: %w", pl.Name, lerr))
			}
		}()
	}
	set, tr, err := finetune.Train(ctx, base.LM, base.Tokenizer, t, data, t.Sample(dev, 100, 3), pl.Recipe, finetune.TrainEnv{
		EOS: base.FirstEOS(), Pad: base.Pad, Base: base.Dir, Out: out, Log: cfg.Log, Progress: cfg.Progress, Resume: true})
	if err != nil {
		return c, fmt.Errorf("candidate %s: %w", pl.Name, err)
	}
	if set != nil {
		defer set.Close()
	} else if err := model.CopyCompanionFiles(base.Dir, out); err != nil {
		return c, fmt.Errorf("candidate %s: %w", pl.Name, err)
	}
	c.Tokens = tr.Tokens
	c.TrainS = time.Since(start).Seconds()
	res, err := t.Evaluate(ctx, base.LM, base.Tokenizer, eval, eopts)
	if err != nil {
		return c, err
	}
	c.Metric = res.Value
	if err := fsutil.WriteJSON(filepath.Join(run.Dir, c.Dir, "eval.json"), res); err != nil {
		return c, err
	}
	if err := writeJSONLines(filepath.Join(run.Dir, c.Dir, "train.jsonl"), data); err != nil {
		return c, err
	}
	c.WallS = time.Since(start).Seconds()
	return c, nil
}
