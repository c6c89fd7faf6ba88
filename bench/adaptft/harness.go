package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/production"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/bench/judge"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

// harness is how the stages of a generated scenario are run.
type harness struct {
	Model  string // base model
	Device torch.Device
	// Override changes the scenario's recipe where its fields are set (epochs, lr, strategy).
	Override   finetune.Recipe
	Strategy   string        // "", lora or full
	Iterations int           // the agent's search budget (0: production mode's)
	StageWall  time.Duration // the agent's wall-time bound per stage (0: none)
	Resume     bool
	Commit     string // the commit the results record ("": the checkout's at the time)
	Log        io.Writer
}

// recipe is a scenario's deployment recipe on the harness's base model: LoRA for
// classification; on pioneer-nano every weight for entities (LoRA on a 6.8M-parameter
// model does not learn generative NER; see bench/production).
func (h *harness) recipe(kind string, seed uint64) (finetune.Recipe, error) {
	r := finetune.Recipe{Epochs: 4, Batch: 16, LR: 5e-3, Seed: seed}
	if h.Model != data.NanoModel {
		r.LR = 1e-3
	}
	if kind == kindEntities {
		r.Epochs = 3
		if h.Model == data.NanoModel {
			r.Epochs, r.LR, r.Full = 6, 1e-3, true
		}
	}
	switch h.Strategy {
	case "":
	case "lora", "full":
		r.Full = h.Strategy == "full"
	default:
		return r, fmt.Errorf("-strategy must be lora or full, got %q", h.Strategy)
	}
	if h.Override.Epochs > 0 {
		r.Epochs = h.Override.Epochs
	}
	if h.Override.LR > 0 {
		r.LR = h.Override.LR
	}
	return r, nil
}

// stageScores are one stage's figures.
type stageScores struct {
	Deployed, Naive, Agent float64 // metric on the held-out set
	NaiveBroken            int     // examples of the stage's R naive gets wrong
	AgentBroken            int     // examples of R the agent's version gets wrong
	Verdict, Version       string
	Planted, Admitted      int // poisoned seen lines; of them trained on by the agent
	Failures, R            int
	Unreadable             int // seen lines whose expected answer does not read as the task's
}

// run runs the harness on a generated scenario folder (dir: <out>/<scenario>/seed<S>):
// the deployment, then for each stage the deployment's answers on the stage's seen logs
// (its mistakes the failure log, its right answers R), naive retraining (the base
// model on the parent's data and every log seen so far, as logged) and the agent
// (production mode on the stage's log with the current deployment), the agent's
// version becoming the next stage's deployment. Every phase is kept in dir/harness for
// -resume. It returns the scenario's figures.
func (h *harness) run(sc *scenario, dir string, seed uint64, files string) (*bench.Result, error) {
	recipe, err := h.recipe(sc.kind, seed)
	if err != nil {
		return nil, err
	}
	work := filepath.Join(dir, h.workName())
	settings := fmt.Sprintf("files=%s model=%s device=%s recipe=%+v iterations=%d stage-wall=%s", files, h.Model, h.Device, recipe, h.Iterations, h.StageWall)
	prog, err := h.progress(work, settings)
	if err != nil {
		return nil, err
	}
	stopAll := prog.Time("all")
	defer stopAll()
	t, err := task.Load(filepath.Join(dir, "task"))
	if err != nil {
		return nil, err
	}
	heldOut, err := t.Split("test")
	if err != nil {
		return nil, err
	}
	val, err := t.Split("validation")
	if err != nil {
		return nil, err
	}
	parentPath := filepath.Join(dir, "parent.jsonl")
	parent, _, err := t.ReadFile(parentPath)
	if err != nil {
		return nil, err
	}
	truth, err := judge.ReadJSONL[truthRecord](filepath.Join(dir, "truth.jsonl"))
	if err != nil {
		return nil, err
	}
	bm, err := model.Open(h.Model, model.OpenOptions{Device: h.Device})
	if err != nil {
		return nil, err
	}
	defer bm.Close()
	ms := &judge.Models{Base: bm, BaseName: h.Model, Device: h.Device, Task: t, Recipe: recipe, Val: t.Sample(val, 100, 3),
		Eval: task.EvalOptions{Batch: 32, EOS: bm.EOS, PadID: bm.Pad}, Resume: h.Resume, Log: h.Log}

	// The deployment: the base model on the parent's data.
	deployed := filepath.Join(work, "deployed")
	if err := phase(prog, "deploy", func() ([2]float64, error) {
		fmt.Fprintf(h.Log, "== %s: deploying on %d parent examples\n", sc.name, len(parent))
		return [2]float64{}, ms.Train(parent, deployed)
	}); err != nil {
		return nil, err
	}
	dep, depParent := deployed, parentPath
	var seenSoFar []task.Example
	var scores []stageScores
	for k := range poisonRates {
		sd := filepath.Join(work, fmt.Sprintf("stage%d", k))
		logs, err := judge.ReadJSONL[logRecord](filepath.Join(dir, fmt.Sprintf("stage%d", k), "logs.jsonl"))
		if err != nil {
			return nil, err
		}
		exs, unreadable := examples(t, logs)
		seenSoFar = append(seenSoFar, exs...)
		planted := map[string]bool{}
		for _, tr := range truth {
			if tr.Stage == k && tr.Part == "seen" && tr.Poison != "" {
				planted[tr.ID] = true
			}
		}
		s := stageScores{Planted: len(planted), Unreadable: unreadable}
		// The deployment's answers on the stage's logs: the failure log and R.
		var r []task.Example
		failures := filepath.Join(sd, "failures.jsonl")
		traffic := filepath.Join(sd, "traffic.jsonl")
		if err := phase(prog, fmt.Sprintf("stage%d/logs", k), func() ([2]float64, error) {
			res, err := ms.Evaluate(dep, exs)
			if err != nil {
				return [2]float64{}, err
			}
			fails, _, right := judge.Split(t, exs, res)
			if err := os.MkdirAll(sd, 0o755); err != nil {
				return [2]float64{}, err
			}
			if err := fsutil.WriteJSONL(failures, fails); err != nil {
				return [2]float64{}, err
			}
			return [2]float64{float64(len(fails)), float64(len(right))}, fsutil.WriteJSONL(traffic, right)
		}); err != nil {
			return nil, err
		}
		lg, _ := prog.Done(fmt.Sprintf("stage%d/logs", k))
		s.Failures = int(lg[0])
		if r, _, err = t.ReadFile(traffic); err != nil {
			return nil, err
		}
		s.R = len(r)
		fmt.Fprintf(h.Log, "== %s stage %d (%.0f %% poison): %d seen lines, %d answered wrong by the deployment, %d right (R), %d poisoned\n",
			sc.name, k, 100*poisonRates[k], len(exs), s.Failures, s.R, len(planted))

		// The deployment's score.
		if err := phase(prog, fmt.Sprintf("stage%d/deployed", k), func() ([2]float64, error) {
			v, _, err := ms.Score(dep, heldOut, nil)
			return [2]float64{v}, err
		}); err != nil {
			return nil, err
		}
		d, _ := prog.Done(fmt.Sprintf("stage%d/deployed", k))
		s.Deployed = d[0]

		// Naive: the base model on the parent's data and every log seen so far, as logged.
		if err := phase(prog, fmt.Sprintf("stage%d/naive", k), func() ([2]float64, error) {
			nd := filepath.Join(sd, "naive")
			if err := ms.Train(append(append([]task.Example(nil), parent...), seenSoFar...), nd); err != nil {
				return [2]float64{}, err
			}
			v, broken, err := ms.Score(nd, heldOut, r)
			return [2]float64{v, float64(broken)}, err
		}); err != nil {
			return nil, err
		}
		n, _ := prog.Done(fmt.Sprintf("stage%d/naive", k))
		s.Naive, s.NaiveBroken = n[0], int(n[1])

		// The agent: production mode on the stage's log with the current deployment.
		runDir := filepath.Join(sd, "agent")
		cfg := production.Config{Base: h.Model, Deployed: dep, Task: t, Failures: failures, ParentData: depParent, Out: runDir,
			Epsilon: production.DefaultEpsilon, Iterations: h.Iterations, WallTime: h.StageWall, Device: h.Device, Recipe: recipe,
			HeldOut: len(val), Seed: seed + uint64(k), Log: h.Log}
		if len(r) > 0 {
			cfg.Traffic = traffic
		}
		stop := prog.Time(fmt.Sprintf("stage%d/agent", k))
		o, err := production.Run(context.Background(), cfg)
		if err != nil {
			return nil, fmt.Errorf("stage %d: %w", k, err)
		}
		if err := stop(); err != nil {
			return nil, err
		}
		final := filepath.Join(runDir, "versions", o.Version)
		if err := phase(prog, fmt.Sprintf("stage%d/agent_scored", k), func() ([2]float64, error) {
			v, broken, err := ms.Score(final, heldOut, r)
			return [2]float64{v, float64(broken)}, err
		}); err != nil {
			return nil, err
		}
		a, _ := prog.Done(fmt.Sprintf("stage%d/agent_scored", k))
		s.Agent, s.AgentBroken, s.Verdict, s.Version = a[0], int(a[1]), string(o.Verdict), o.Version
		adm, err := judge.Admitted(runDir, planted)
		if err != nil {
			return nil, err
		}
		s.Admitted = adm.Admitted
		fmt.Fprintf(h.Log, "== %s stage %d: deployed %.4f, naive %.4f (%d of R broken), agent %.4f (%s %s, %d of R broken, %d of %d poisoned lines trained on)\n",
			sc.name, k, s.Deployed, s.Naive, s.NaiveBroken, s.Agent, o.Verdict, o.Version, s.AgentBroken, s.Admitted, s.Planted)
		scores = append(scores, s)
		// The agent's version is the next stage's deployment, its training set the
		// parent's data there.
		if o.Version != "v0" {
			dep, depParent = final, filepath.Join(final, versions.TrainingSetFile) // every promoted version carries one
		}
	}
	if err := stopAll(); err != nil {
		return nil, err
	}
	// The poison that reached the deployment: the poisoned lines in the training set of
	// the version deployed at the end (a version carries its parents' data).
	deployedPoison := 0
	if dep != deployed {
		trained, _, err := t.ReadFile(filepath.Join(dep, versions.TrainingSetFile))
		if err != nil {
			return nil, err
		}
		in := map[string]bool{}
		for _, ex := range trained {
			in[ex.ID] = true
		}
		for _, tr := range truth {
			if tr.Poison != "" && tr.Part == "seen" && in[tr.ID] {
				deployedPoison++
			}
		}
	}
	return h.result(sc, seed, t, recipe, prog, scores, len(parent), len(heldOut), deployedPoison)
}

// workName is the harness's folder in a scenario's: one per base model.
func (h *harness) workName() string { return "harness" + bench.ResultSuffix(h.Model) }

// progress opens the harness's progress record: fresh (anything an earlier run left is
// removed), or with -resume the interrupted run's.
func (h *harness) progress(work, settings string) (*bench.Progress, error) {
	_, err := os.Stat(filepath.Join(work, "progress.json"))
	resuming := h.Resume && err == nil
	if h.Resume && !resuming {
		fmt.Fprintf(h.Log, "== no run to resume in %s: starting a new one\n", work)
	}
	if !resuming {
		if err := os.RemoveAll(work); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	return bench.OpenProgress(work, settings, resuming)
}

// phase runs f once: a phase the progress record holds as finished is not run again.
// Its time counts towards the phase.
func phase(p *bench.Progress, name string, f func() ([2]float64, error)) error {
	if _, ok := p.Done(name); ok {
		return nil
	}
	stop := p.Time(name)
	v, err := f()
	if serr := stop(); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return p.Finish(name, v)
}

// examples reads the seen log lines as task examples (the input as text, the expected
// answer as the answer); lines whose expected answer does not read as the task's are
// counted and left out.
func examples(t *task.Task, logs []logRecord) (exs []task.Example, unreadable int) {
	for _, l := range logs {
		ex, why := t.ReadAnswer(l.Expected)
		if why != "" {
			unreadable++
			continue
		}
		ex.ID, ex.Text = l.ID, l.Input
		exs = append(exs, ex)
	}
	return exs, unreadable
}

// result is a scenario's figures (bench/adaptft/README.md).
func (h *harness) result(sc *scenario, seed uint64, t *task.Task, recipe finetune.Recipe, prog *bench.Progress, ss []stageScores, parentN, heldOutN, deployedPoison int) (*bench.Result, error) {
	cmd := fmt.Sprintf("go run ./bench/adaptft -scenario %s -seed %d", sc.name, seed)
	if h.Model != data.NanoModel {
		cmd += " -model " + h.Model
	}
	budget := "production mode's search budget"
	if h.Iterations > 0 {
		cmd += fmt.Sprintf(" -iterations %d", h.Iterations)
		budget = fmt.Sprintf("%d rounds a stage", h.Iterations)
	}
	if h.StageWall > 0 {
		cmd += " -stage-wall " + h.StageWall.String()
		budget += fmt.Sprintf(", no round started after %s of a stage's search", h.StageWall)
	}
	how := fmt.Sprintf("LoRA rank 16, %d epochs, lr %g, batch %d", recipe.Epochs, recipe.LR, recipe.Batch)
	if recipe.Full {
		how = fmt.Sprintf("every weight, %d epochs, lr %g, batch %d", recipe.Epochs, recipe.LR, recipe.Batch)
	}
	method := fmt.Sprintf("AdaptFT-Bench scenario %s (%s), seed %d, base model %s. Deployment: the base model fine-tuned (%s) on %d parent examples; "+
		"four stages of logs (%.0f/%.0f/%.0f/%.0f %% of the seen lines poisoned, about 30 %% with fixable noise); at each stage the deployment answers the stage's seen lines: "+
		"its mistakes are the failure log, its right answers R. Naive = the base model retrained with the same recipe on the parent data plus every log line seen so far, as logged; "+
		"agent = production mode (epsilon 2; "+budget+") on the stage's failure log and R with the current deployment, its version the next stage's deployment. "+
		"Metrics on the held-out set (the stages' test parts, %d examples); regressions = examples of the stage's R the agent's version gets wrong; "+
		"poison admitted = poisoned lines the agent trained on.",
		sc.name, sc.kind, seed, h.Model, how, parentN, 100*poisonRates[0], 100*poisonRates[1], 100*poisonRates[2], 100*poisonRates[3], heldOutN)
	if prog.Resumed > 0 {
		method += fmt.Sprintf(" The run was interrupted and resumed %d time(s).", prog.Resumed)
	}
	res := bench.NewResult("adaptft_"+sc.name, cmd, method)
	if h.Commit != "" {
		res.Commit = h.Commit
	}
	const ref = "naive retraining at the same stage"
	worstDrop, maxBroken, planted, admitted := 0.0, 0, 0, 0
	var notes []string
	for k, s := range ss {
		p := fmt.Sprintf("%s_stage%d_", sc.name, k)
		res.Add(p+"deployed_metric", t.Metric, s.Deployed, nil, "", true)
		res.Add(p+"naive_metric", t.Metric, s.Naive, nil, "", true)
		nv := s.Naive
		res.Add(p+"agent_metric", t.Metric, s.Agent, &nv, ref, true)
		res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("%s %s; failure log %d lines, R %d; naive broke %d of R", s.Verdict, s.Version, s.Failures, s.R, s.NaiveBroken)
		worstDrop = max(worstDrop, ss[0].Deployed-s.Naive)
		maxBroken = max(maxBroken, s.AgentBroken)
		planted += s.Planted
		admitted += s.Admitted
		if s.Unreadable > 0 {
			notes = append(notes, fmt.Sprintf("stage %d: %d seen lines' expected answers do not read as the task's and were left out", k, s.Unreadable))
		}
	}
	pl := float64(planted)
	res.Add(sc.name+"_poison_admitted", "log lines", float64(admitted), &pl, "poisoned seen lines (naive trains on all)", false)
	res.Figures[len(res.Figures)-1].Note = "poisoned lines in any candidate's training set, promoted or not"
	res.Add(sc.name+"_poison_deployed", "log lines", float64(deployedPoison), &pl, "poisoned seen lines (naive's deployment trains on all)", false)
	res.Figures[len(res.Figures)-1].Note = "poisoned lines in the training set of the version deployed at the end"
	res.Add(sc.name+"_regressions", "examples", float64(maxBroken), nil, "", false)
	res.Figures[len(res.Figures)-1].Note = "the most examples of a stage's R the agent's version of that stage gets wrong"
	res.Add(sc.name+"_naive_worst_drop", t.Metric, worstDrop, nil, "", false)
	res.Figures[len(res.Figures)-1].Note = "how far naive retraining falls below the first deployment at its worst stage (0: never below)"
	last := ss[len(ss)-1]
	ok := 0.0
	if last.Agent >= ss[0].Deployed {
		ok = 1
	}
	res.Add(sc.name+"_improve_or_preserve", "scenarios", ok, nil, "", true)
	res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("1 when the agent's last stage (%.4f) is at or above the first deployment (%.4f)", last.Agent, ss[0].Deployed)
	res.Add(sc.name+"_agent_wall_time_s", "s", sumSpent(prog, "agent"), nil, "", false)
	nw := sumSpent(prog, "naive")
	res.Figures[len(res.Figures)-1].Reference = &nw
	res.Figures[len(res.Figures)-1].ReferenceName = "naive retraining, all stages"
	res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("whole scenario %.0f s on %s", prog.Spent("all"), h.Device)
	if len(notes) > 0 {
		res.Method += " " + strings.Join(notes, "; ") + "."
	}
	return res, nil
}

// sumSpent adds a phase's seconds over the stages.
func sumSpent(p *bench.Progress, what string) float64 {
	total := 0.0
	for k := range poisonRates {
		total += p.Spent(fmt.Sprintf("stage%d/%s", k, what))
	}
	return total
}

// filesSum fingerprints a generated scenario folder (its summary, truth and parent
// files): a resumed harness run must see the files it started on.
func filesSum(dir string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"summary.json", "truth.jsonl", "parent.jsonl"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}
