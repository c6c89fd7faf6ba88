// Command production measures production mode (pioneer adapt) on a deployment built from
// real data, against naive retraining, and writes bench/results/production_<name>.json
// (production_<name>_smollm2.json with -model smollm2-135m-instruct).
//
// The deployment: the base model (-model: pioneer-nano by default, or
// smollm2-135m-instruct) fine-tuned on a deliberately thin and skewed sample of the
// task's training split (some labels or entity types barely seen): with a LoRA adapter
// for intents, in every weight for entities (LoRA on a 6.8M-parameter model does not
// learn generative NER: entity F1 0.001-0.07 against 0.55-0.65 for full fine-tuning of
// the same model in `pioneer tune --task conll2003` runs; see the closing notes).
// A traffic stream (other training examples) goes through it; its mistakes form the
// failure log, in which a fraction of the expected answers are then corrupted as poison
// (classification: the label flipped to another label; extraction: an entity's type
// changed). The examples it gets right are the traffic R it must keep right.
//
// Then, in one run: naive retraining (the base model retrained on the parent's data plus
// every logged failure, poison included), naive_traffic (the same plus the traffic R) and
// the agent (production.Run with the same log, traffic and parent data). All are scored
// on the task's untouched test split.
//
//	go run ./bench/production -task clinc150     # intent: 10 intents of CLINC150
//	go run ./bench/production -task conll2003    # entities
//	go run ./bench/production -task clinc150 -model smollm2-135m-instruct -lr 1e-3
//	go run ./bench/production -task banking77 ...   # intent: 10 intents of Banking77
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/production"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/bench/judge"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

type setup struct {
	name               string // result name: intent or ner
	labels             int    // classification: intents drawn from the task (0: all)
	parentPer, thinPer int    // parent examples per label; per thin label
	thinShare          float64
	trafficPer         int     // traffic examples per label (extraction: sentences in all)
	poison             float64 // fraction of the failure log corrupted
	heldout, test      int     // validation and test examples used (0: all)
	parentN, trafficN  int     // extraction: parent and traffic sentences
	recipe             finetune.Recipe
}

var setups = map[string]setup{
	"clinc150": {name: "intent", labels: 10, parentPer: 40, thinPer: 6, thinShare: 0.3, trafficPer: 50, poison: 0.15, heldout: 200, recipe: finetune.Recipe{Epochs: 4, Batch: 16, LR: 5e-3, Seed: 1}},
	// Banking77 (fine-grained banking intents) is the intent deployment the thresholds were
	// not chosen on; its smallest intents have 31 training examples, hence a thin parent
	// (as in the SmolLM2 runs of clinc150 with -parent 10) and less traffic.
	"banking77": {name: "intent_banking77", labels: 10, parentPer: 10, thinPer: 2, thinShare: 0.3, trafficPer: 20, poison: 0.15, heldout: 200, recipe: finetune.Recipe{Epochs: 4, Batch: 16, LR: 5e-3, Seed: 1}},
	"conll2003": {name: "ner", parentN: 8000, trafficN: 600, poison: 0.15, heldout: 300, test: 1000, recipe: finetune.Recipe{Epochs: 6, Batch: 16, LR: 1e-3, Full: true, Seed: 1}},
}

var (
	override finetune.Recipe
	parentN  int
	trafficN int
	testN    int
	strategy string
	search   string
	// triageOnly stops after the agent's first curriculum: the deployment, its log, and
	// what triage and the curriculum did with the poison, without the training runs.
	triageOnly bool
	// seed draws the deployment (labels, parent, traffic), the poison and the training;
	// 1 is the committed results' seed.
	seed uint64
	// resume continues an interrupted run in the work folder instead of starting again.
	resume bool
	// baseModel is the base model the deployment and every candidate are trained from.
	baseModel string
)

func main() {
	taskName := flag.String("task", "clinc150", "clinc150 or banking77 (intent), or conll2003 (entities)")
	device := flag.String("device", "cpu", "cpu, cuda or auto")
	out := flag.String("out", "", "result file (default bench/results/production_<intent|ner>.json)")
	work := flag.String("work", "runs/bench-production", "folder for the deployment, logs and runs")
	commit := flag.String("commit", "", "commit to record (default: git rev-parse HEAD)")
	flag.IntVar(&override.Epochs, "epochs", 0, "override the setup's training epochs")
	flag.Float64Var(&override.LR, "lr", 0, "override the setup's learning rate")
	flag.IntVar(&override.Rank, "lora-r", 0, "override the setup's LoRA rank (default 16)")
	flag.IntVar(&trafficN, "traffic", 0, "override the traffic's size: examples per intent, or extraction sentences")
	flag.IntVar(&testN, "test", 0, "override the setup's number of test examples scored (a seeded sample of the test split)")
	flag.IntVar(&parentN, "parent", 0, "override the parent's data: examples per intent (thin intents get the same share of it as by default, at least 2), or extraction sentences")
	flag.StringVar(&strategy, "strategy", "", "override the setup's strategy: lora or full (every weight)")
	flag.Uint64Var(&seed, "seed", 1, "seed of the deployment's draw, the poison and the training runs")
	flag.BoolVar(&triageOnly, "triage-only", false, "stop after the agent's first curriculum and print the poison figures (no naive run, no candidates, no result file)")
	flag.StringVar(&baseModel, "model", data.NanoModel, "base model: "+data.NanoModel+" or "+data.SmolLM2+" (or a model folder or GGUF file)")
	flag.StringVar(&search, "search", production.SearchGreedy, "the agent's search: greedy or mcts (Monte-Carlo graph search, same budget of candidates)")
	seeds := flag.String("seeds", "", "comma-separated seeds: one whole run per seed, one result file with each seed's figures and their summary (default file bench/results/production_<intent|ner>_seeds.json); each seed's figures are also written to <work>/seedN/result.json as it ends")
	flag.BoolVar(&resume, "resume", false, "continue the interrupted run in -work (same flags): finished phases (deployment, naive retraining, the agent's steps, with -seeds whole seeds) are kept, an interrupted training continues from its last checkpoint; wall times add up each phase's time over the processes that ran it; where -work holds no run, one is started")
	flag.Parse()
	if err := main1(*taskName, *device, *out, *work, *commit, *seeds); err != nil {
		fmt.Fprintln(os.Stderr, "bench/production:", err)
		os.Exit(1)
	}
}

func main1(taskName, device, out, work, commit, seeds string) error {
	if seeds == "" {
		r, err := run(taskName, device, work, commit)
		if err != nil || r == nil { // nil: -triage-only
			return err
		}
		if out == "" {
			out = "bench/results/" + r.Benchmark + ".json"
		}
		return write(r, out)
	}
	if triageOnly {
		return fmt.Errorf("-seeds and -triage-only do not go together")
	}
	var list []uint64
	for _, f := range strings.Split(seeds, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil || v == 0 {
			return fmt.Errorf("-seeds: want positive integers separated by commas, got %q", seeds)
		}
		list = append(list, v)
	}
	var runs []*bench.Result
	for _, v := range list {
		seed = v
		fmt.Fprintf(os.Stderr, "==== seed %d\n", v)
		dir := filepath.Join(work, fmt.Sprintf("seed%d", v))
		if resume {
			if r, err := bench.ReadResult(filepath.Join(dir, "result.json")); err == nil {
				fmt.Fprintf(os.Stderr, "seed %d finished before: %s\n", v, filepath.Join(dir, "result.json"))
				runs = append(runs, r)
				continue
			}
		}
		r, err := run(taskName, device, dir, commit)
		if err != nil {
			return fmt.Errorf("seed %d: %w", v, err)
		}
		// Each seed's figures are kept as soon as they exist: a later seed's failure
		// does not lose them.
		if err := r.Write(filepath.Join(dir, "result.json")); err != nil {
			return err
		}
		runs = append(runs, r)
	}
	r := summarize(runs, list, seeds)
	if out == "" {
		out = "bench/results/" + r.Benchmark + ".json"
	}
	return write(r, out)
}

func write(r *bench.Result, out string) error {
	r.Table(os.Stdout)
	if err := r.Write(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", out)
	return nil
}

// summarize merges one result per seed: every seed's figures with the suffix _seedN, then
// the figures under their usual names over all seeds: the mean metric and wall time, the
// worst seed's regressions, and the poison planted and admitted summed.
func summarize(runs []*bench.Result, seeds []uint64, list string) *bench.Result {
	first := runs[0]
	cmd := regexp.MustCompile(` -seed \d+`).ReplaceAllString(first.Command, "") + " -seeds " + list
	method := first.Method + fmt.Sprintf(" Seeds %s, one whole run each (deployment, log, poison, naive and agent); figures with _seedN are that seed's; "+
		"the unsuffixed figures summarise them: metrics and wall time the mean over seeds, regressions the worst seed, poison planted and admitted the sums.", list)
	r := bench.NewResult(first.Benchmark+"_seeds", cmd, method)
	r.Commit = first.Commit
	// Each figure's values over the seeds; kinds keeps the first run's order.
	var kinds []bench.Figure
	vals, refs := map[string][]float64{}, map[string][]float64{}
	for i, res := range runs {
		for _, f := range res.Figures {
			g := f
			g.Name = fmt.Sprintf("%s_seed%d", f.Name, seeds[i])
			r.Figures = append(r.Figures, g)
			if i == 0 {
				kinds = append(kinds, f)
			}
			vals[f.Name] = append(vals[f.Name], f.Pioneer)
			if f.Reference != nil {
				refs[f.Name] = append(refs[f.Name], *f.Reference)
			}
		}
	}
	for _, f := range kinds {
		combine, how := mean, "mean over seeds "+list
		switch f.Name {
		case "agent_regressions", "naive_regressions", "naive_traffic_regressions":
			combine, how = slices.Max[[]float64], "worst seed of "+list
		case "poison_planted", "poison_admitted":
			combine, how = sum, "sum over seeds "+list
		}
		var ref *float64
		if rs := refs[f.Name]; len(rs) > 0 {
			v := combine(rs)
			ref = &v
		}
		r.Add(f.Name, f.Unit, combine(vals[f.Name]), ref, f.ReferenceName, f.HigherIsBetter)
		r.Figures[len(r.Figures)-1].Note = how
	}
	return r
}

func sum(v []float64) float64 {
	t := 0.0
	for _, x := range v {
		t += x
	}
	return t
}

func mean(v []float64) float64 { return sum(v) / float64(len(v)) }

// run builds the deployment, its failure log, naive retraining and the agent's run for one
// seed, and returns the figures (nil with -triage-only, which prints its own).
func run(taskName, device, work, commit string) (*bench.Result, error) {
	su, ok := setups[taskName]
	if !ok {
		return nil, fmt.Errorf("unknown -task %q (clinc150, banking77 or conll2003)", taskName)
	}
	su.recipe.Seed = seed
	if override.Epochs > 0 {
		su.recipe.Epochs = override.Epochs
	}
	if override.LR > 0 {
		su.recipe.LR = override.LR
	}
	if override.Rank > 0 {
		su.recipe.Rank = override.Rank
	}
	if testN > 0 {
		su.test = testN
	}
	if trafficN > 0 {
		if su.labels > 0 {
			su.trafficPer = trafficN
		} else {
			su.trafficN = trafficN
		}
	}
	if parentN > 0 {
		if su.labels > 0 { // classification: per intent; thin intents keep their share of it
			su.thinPer = max(2, parentN*su.thinPer/su.parentPer)
			su.parentPer = parentN
		} else {
			su.parentN = parentN
		}
	}
	switch strategy {
	case "":
	case "lora", "full":
		su.recipe.Full = strategy == "full"
		if override.LR == 0 { // the strategy's usual rate
			su.recipe.LR = 5e-3
			if su.recipe.Full {
				su.recipe.LR = 1e-3
			}
		}
	default:
		return nil, fmt.Errorf("-strategy must be lora or full, got %q", strategy)
	}
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return nil, err
	}
	src, err := task.Load(taskName)
	if err != nil {
		return nil, err
	}
	work = filepath.Join(work, su.name)
	// -resume where no run was started (a later seed of -seeds) starts one.
	_, err = os.Stat(filepath.Join(work, "progress.json"))
	resuming := resume && err == nil
	if resume && !resuming {
		fmt.Fprintf(os.Stderr, "== no run to resume in %s: starting a new one\n", work)
	}
	if !resuming {
		os.RemoveAll(work)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	code := commit
	if code == "" {
		code = bench.Commit()
	}
	settings := fmt.Sprintf("commit=%s model=%s task=%s device=%s seed=%d epochs=%d lr=%g lora-r=%d parent=%d traffic=%d test=%d strategy=%s search=%s triage-only=%v",
		code, baseModel, taskName, device, seed, override.Epochs, override.LR, override.Rank, parentN, trafficN, testN, strategy, search, triageOnly)
	prog, err := bench.OpenProgress(work, settings, resuming)
	if err != nil {
		return nil, err
	}
	if prog.Resumed > 0 {
		fmt.Fprintf(os.Stderr, "== resuming the run in %s (finished: %v)\n", work, slices.Sorted(maps.Keys(prog.Finished)))
	}
	stopAll := prog.Time("all")
	defer stopAll()
	d, err := build(src, su, work)
	if err != nil {
		return nil, err
	}
	t, err := task.Load(d.taskDir)
	if err != nil {
		return nil, err
	}
	bm, err := model.Open(baseModel, model.OpenOptions{Device: dev})
	if err != nil {
		return nil, err
	}
	defer bm.Close()
	test, err := t.Split("test")
	if err != nil {
		return nil, err
	}
	if su.test > 0 {
		test = t.Sample(test, su.test, 5)
	}
	val, err := t.Split("validation")
	if err != nil {
		return nil, err
	}
	ms := &judge.Models{Base: bm, BaseName: baseModel, Device: dev, Task: t, Recipe: su.recipe, Val: t.Sample(val, 100, 3),
		Eval: task.EvalOptions{Batch: 32, EOS: bm.EOS, PadID: bm.Pad}, Resume: resume, Log: os.Stderr}
	train := ms.Train
	score := func(dir string) (float64, int, error) { return ms.Score(dir, test, d.r) } // test metric, regressions on R

	// The deployment.
	fmt.Fprintf(os.Stderr, "== deploying: %d parent examples\n", len(d.parent))
	deployed := filepath.Join(work, "deployed")
	if _, ok := prog.Done("deploy"); !ok {
		stop := prog.Time("deploy")
		if err := train(d.parent, deployed); err != nil {
			return nil, err
		}
		if err := stop(); err != nil {
			return nil, err
		}
		if err := prog.Finish("deploy", [2]float64{}); err != nil {
			return nil, err
		}
	}
	tr, err := ms.Evaluate(deployed, d.traffic)
	if err != nil {
		return nil, err
	}
	log, planted, r := failureLog(t, d.traffic, tr, su.poison)
	d.r = r
	trafficMetric := tr.Value
	if err := fsutil.WriteJSONL(filepath.Join(work, "failures.jsonl"), log); err != nil {
		return nil, err
	}
	if err := fsutil.WriteJSONL(filepath.Join(work, "traffic.jsonl"), r); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "deployed: %s %.4f on %d traffic examples; %d failures logged, %d poisoned\n", t.Metric, trafficMetric, len(d.traffic), len(log), len(planted))
	// The agent's run (production.Run loads its own copy of the base model).
	runDir := filepath.Join(work, "agent")
	traffic := filepath.Join(work, "traffic.jsonl")
	if len(r) == 0 { // the deployed model got no traffic right: the agent builds R itself
		traffic = ""
	}
	agentCfg := production.Config{
		Base: baseModel, Deployed: deployed, Epsilon: production.DefaultEpsilon, Task: t, Failures: filepath.Join(work, "failures.jsonl"),
		Traffic: traffic, ParentData: d.parentPath, Out: runDir, Device: dev,
		Recipe: su.recipe, HeldOut: su.heldout, Seed: seed, Log: os.Stderr, Search: search,
	}
	if triageOnly {
		return nil, triageFigures(agentCfg, planted)
	}
	if _, ok := prog.Done("deployed_score"); !ok {
		v, _, err := score(deployed)
		if err != nil {
			return nil, err
		}
		if err := prog.Finish("deployed_score", [2]float64{v, 0}); err != nil {
			return nil, err
		}
	}
	ds, _ := prog.Done("deployed_score")
	deployedTest := ds[0]

	// The naive baselines, each a phase of its own: the base model retrained on extra
	// plus every logged failure as logged, then scored.
	baseline := func(phase string, extra ...[]task.Example) (float64, int, error) {
		if _, ok := prog.Done(phase); !ok {
			stop := prog.Time(phase)
			var data []task.Example
			for _, e := range extra {
				data = append(data, e...)
			}
			for _, l := range log {
				data = append(data, l.example)
			}
			dir := filepath.Join(work, phase)
			if err := train(data, dir); err != nil {
				return 0, 0, err
			}
			v, broken, err := score(dir)
			if err != nil {
				return 0, 0, err
			}
			if err := stop(); err != nil {
				return 0, 0, err
			}
			if err := prog.Finish(phase, [2]float64{v, float64(broken)}); err != nil {
				return 0, 0, err
			}
		}
		r, _ := prog.Done(phase)
		fmt.Fprintf(os.Stderr, "%s: %s %.4f on test, %d of R broken\n", phase, t.Metric, r[0], int(r[1]))
		return r[0], int(r[1]), nil
	}
	// naive: the parent's data and the log
	naiveTest, naiveBroken, err := baseline("naive", d.parent)
	if err != nil {
		return nil, err
	}
	naiveWall := prog.Spent("naive")
	// naive_traffic: also the traffic R, all the data the agent is given, unfiltered
	naiveTrafficTest, naiveTrafficBroken, err := baseline("naive_traffic", d.parent, d.r)
	if err != nil {
		return nil, err
	}

	// The agent.
	stopAgent := prog.Time("agent")
	o, err := production.Run(context.Background(), agentCfg)
	if err != nil {
		return nil, err
	}
	if err := stopAgent(); err != nil {
		return nil, err
	}
	agentWall := prog.Spent("agent")
	final := filepath.Join(runDir, "versions", o.Version)
	agentTest, agentBroken, err := score(final)
	if err != nil {
		return nil, err
	}
	a, err := judge.Admitted(runDir, planted)
	if err != nil {
		return nil, err
	}
	passedTriage, falseAlarms, genuine, admitted := a.PassedTriage, a.FalseAlarms, a.Genuine, a.Admitted
	fmt.Fprintf(os.Stderr, "agent: %s, version %s; %s %.4f on test, %d of R broken, %d of %d poisoned logs admitted\n",
		o.Verdict, o.Version, t.Metric, agentTest, agentBroken, admitted, len(planted))

	cmd := "go run ./bench/production -task " + taskName
	if device != "cpu" {
		cmd += " -device " + device
	}
	for _, f := range []string{"model", "epochs", "lr", "lora-r", "parent", "traffic", "test", "strategy", "search", "seed"} {
		if fl := flag.Lookup(f); fl.Value.String() != fl.DefValue {
			cmd += " -" + f + " " + fl.Value.String()
		}
	}
	how := fmt.Sprintf("LoRA (rank %d, %d epochs, lr %g, batch %d)", max(su.recipe.Rank, 16), su.recipe.Epochs, su.recipe.LR, su.recipe.Batch)
	if su.recipe.Full {
		how = fmt.Sprintf("every weight fine-tuned (%d epochs, lr %g, batch %d; the agent's candidates likewise)", su.recipe.Epochs, su.recipe.LR, su.recipe.Batch)
	}
	searchNote := "greedy search: at most 3 iterations, 2 candidates each"
	if search == production.SearchMCTS {
		searchNote = "Monte-Carlo graph search: at most 6 candidates, the best passing one promoted"
	}
	method := fmt.Sprintf("%s. Deployment: %s, %s, on %d parent examples (%s); traffic %d examples, "+
		"deployed %s on traffic %.4f; failure log %d lines, %.0f %% of them poisoned (%s). Naive = the base model retrained with the same recipe "+
		"on the parent data plus every logged failure as logged; naive_traffic = the same with R (the traffic the deployed model gets right) added too. Agent = pioneer adapt (epsilon 2, %s; "+
		"held-out = %d validation examples + 30 %% of the admitted failures; R = the traffic the deployed model gets right, %d examples). "+
		"Metrics on %d test examples of the task's untouched test split; regressions = examples of R the final model gets wrong; "+
		"poison_admitted = poisoned log lines trained on (pioneer: the agent; reference: naive, which trains on all). One run, seed %d; "+
		"the final agent model is the version deployed at the end (%s: %s).",
		d.describe, baseModel, how, len(d.parent), d.parentNote, len(d.traffic), t.Metric, trafficMetric,
		len(log), 100*su.poison, d.poisonNote, searchNote, su.heldout, len(r), len(test), seed, o.Verdict, o.Version)
	if prog.Resumed > 0 {
		method += fmt.Sprintf(" The run was interrupted and resumed %d time(s) (-resume); wall times add up each phase's time over the processes that ran it.", prog.Resumed)
	}
	res := bench.NewResult("production_"+su.name+bench.ResultSuffix(baseModel), cmd, method)
	res.Commit = code // the commit the run started at (-commit, or the checkout's then), not the checkout's now

	const ref = "naive retraining (every logged failure added, retrained from the base model)"
	res.Add("deployed_metric", t.Metric, deployedTest, nil, "", true)
	res.Add("naive_metric", t.Metric, naiveTest, nil, "", true)
	nt := naiveTest
	res.Add("agent_metric", t.Metric, agentTest, &nt, ref, true)
	nb := float64(naiveBroken)
	res.Add("agent_regressions", "examples", float64(agentBroken), &nb, ref, false)
	res.Add("naive_regressions", "examples", float64(naiveBroken), nil, "", false)
	const refTraffic = "naive retraining with the traffic replayed (parent + R + every logged failure, retrained from the base model)"
	ntt := naiveTrafficTest
	res.Add("agent_metric_vs_naive_traffic", t.Metric, agentTest, &ntt, refTraffic, true)
	res.Add("naive_traffic_metric", t.Metric, naiveTrafficTest, nil, "", true)
	res.Add("naive_traffic_regressions", "examples", float64(naiveTrafficBroken), nil, "", false)
	removed := 0.0
	if deployedTest < 1 {
		removed = (agentTest - deployedTest) / (1 - deployedTest)
	}
	res.Add("errors_removed", "fraction", removed, nil, "", true)
	res.Figures[len(res.Figures)-1].Note = "(agent - deployed) / (1 - deployed) on the test metric: the share of the deployed model's test errors the agent's final model removes (net)"
	res.Add("poison_planted", "log lines", float64(len(planted)), nil, "", false)
	np := float64(len(planted))
	res.Add("poison_admitted", "log lines", float64(admitted), &np, ref, false)
	res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("trained on (a gold failure in a curriculum); %d poisoned lines passed triage and were then left out as unconfirmed; triage turned away %d of the %d genuine failures as poison",
		passedTriage-admitted, falseAlarms, genuine)
	nw := naiveWall
	res.Add("wall_time_s", "s", agentWall, &nw, ref, false)
	if err := stopAll(); err != nil {
		return nil, err
	}
	res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("whole benchmark %.0f s on %s", prog.Spent("all"), dev)
	fmt.Fprintf(os.Stderr, "agent report: %s\n", filepath.Join(runDir, "report.md"))
	return res, nil
}
