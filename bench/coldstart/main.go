// Command coldstart measures cold-start mode (pioneer start) on tasks of different kinds
// from ../shared/data, each from a description written once (tasks.go), and writes
// bench/results/coldstart.json.
//
// The agent's catalog holds the training data only: a mirror of the shared data's
// folders for the benchmark's datasets with their test splits left out (SMS Spam, which
// has none, split once by a hash of each message: a fifth is test) and SOURCES.md copied,
// so that the agent finds, reads and maps the data as a user's catalog would give it.
// Each task's official test split is the score, read by this command alone: the base
// model zero-shot and the agent's deployed v0, with the task the agent wrote.
//
//	go run ./bench/coldstart -dry                  # plan and data for every task, no training
//	go run ./bench/coldstart -tasks sms_spam,sst2  # whole runs
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/agent/catalog"
	"github.com/pioneer-ai/pioneer/agent/coldstart"
	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
)

func main() {
	names := flag.String("tasks", strings.Join(taskNames(), ","), "comma-separated tasks")
	dry := flag.Bool("dry", false, "plan and gather the data for each task (what the agent would train on), no training")
	shared := flag.String("data", filepath.Join("..", "shared", "data"), "the shared data folder")
	work := flag.String("work", "runs/bench-coldstart", "folder for the catalog and the runs")
	base := flag.String("model", data.NanoModel, "base model")
	iterations := flag.Int("iterations", 2, "the agent's search rounds")
	evalSize := flag.Int("eval-size", 200, "the frozen evaluation set")
	wall := flag.Duration("wall-time", 20*time.Minute, "each task's search budget")
	testN := flag.Int("test", 500, "test examples scored per task (0: the whole test split)")
	out := flag.String("out", "bench/results/coldstart.json", "result file")
	merge := flag.String("merge", "", "an earlier result of this benchmark (e.g. bench/results/coldstart.json) whose figures this run does not measure are kept in the result, named in its method")
	flag.Parse()
	if err := run(strings.Split(*names, ","), *dry, *shared, *work, *base, *iterations, *evalSize, *wall, *testN, *out, *merge); err != nil {
		fmt.Fprintln(os.Stderr, "bench/coldstart:", err)
		os.Exit(1)
	}
}

func run(names []string, dry bool, shared, work, base string, iterations, evalSize int, wall time.Duration, testN int, out, merge string) error {
	catDir := filepath.Join(work, "catalog")
	heldout := filepath.Join(work, "heldout")
	if err := buildCatalog(shared, catDir, heldout); err != nil {
		return err
	}
	cat, err := catalog.Open(catDir)
	if err != nil {
		return err
	}
	if err := cat.AddBundled(); err != nil {
		return err
	}
	res := bench.NewResult("coldstart", "go run ./bench/coldstart -tasks "+strings.Join(names, ",")+" -model "+base,
		fmt.Sprintf("Each task from its description (bench/coldstart/tasks.go) by pioneer start on %s: catalog = the benchmark's datasets without their test splits (plus the bundled tasks); "+
			"frozen evaluation set %d, %d greedy rounds, %s per task; score = the task's official test split (SMS Spam: the hash-split fifth), %d examples, base model zero-shot against the deployed v0.",
			base, evalSize, iterations, wall, testN))
	for _, name := range names {
		bt, ok := tasks[name]
		if !ok {
			return fmt.Errorf("unknown task %q (%s)", name, strings.Join(taskNames(), ", "))
		}
		if bt.skip != "" {
			fmt.Printf("%s: not run: %s\n", name, bt.skip)
			continue
		}
		p, err := coldstart.PlanTask(bt.description, nil, cat)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		first := "none"
		if len(p.Sources) > 0 {
			first = p.Sources[0].Dataset
		}
		fmt.Printf("%s: %q -> %s %s, metric %s, first source %s\n", name, bt.description, p.Task.Type, map[bool]string{true: "(multiple choice)"}[p.MultipleChoice], p.Task.Metric, first)
		if dry {
			pool, err := coldstart.Gather(p, cat)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Printf("  data: %d examples from %v; left out %v\n", len(pool.Examples), pool.From, pool.Dropped)
			continue
		}
		if first != bt.dataset {
			fmt.Printf("  the plan's first source is %s, not %s: scored on %s's test split all the same\n", first, bt.dataset, bt.dataset)
		}
		runDir := filepath.Join(work, "runs", name)
		o, err := coldstart.Run(context.Background(), coldstart.Config{Description: bt.description, Catalogs: []string{catDir}, Base: base, Out: runDir,
			Device: torch.CPU, Iterations: iterations, EvalSize: evalSize, WallTime: wall, Log: os.Stderr,
			Recipe: finetune.Recipe{Epochs: 3, Batch: 16, Seed: 1}}) // no learning rate: the base model's usual one (finetune.UsualLR)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		// The run's own wall time, from its outcome: a run finished before (the command
		// rerun to score it) is not timed again; a run resumed after a kill counts its last
		// part only.
		wallS := o.Wall
		baseTest, agentTest, n, err := score(p, bt, shared, heldout, runDir, base, o.Version, testN)
		if err != nil {
			return fmt.Errorf("%s: scoring: %w", name, err)
		}
		fmt.Printf("  test (%d examples): base %.4f, agent %.4f; frozen set: base %.4f, best candidate %.4f; %s\n", n, baseTest, agentTest, o.Baseline, o.Best.Metric, o.Stopped)
		res.Add(name+"_base_metric", p.Task.Metric, baseTest, nil, "", true)
		bt0 := baseTest
		res.Add(name+"_agent_metric", p.Task.Metric, agentTest, &bt0, "the base model zero-shot on the same test examples", true)
		var tokens int64
		for _, c := range o.Candidates {
			tokens += c.Tokens
		}
		iters := len(o.Candidates) / 2 // greedy rounds are of two candidates (a round cut short by the budget counts half)
		if len(o.Candidates)%2 == 1 {
			iters++
		}
		res.Add(name+"_iterations", "rounds", float64(iters), nil, "", false)
		res.Add(name+"_candidates", "candidates", float64(len(o.Candidates)), nil, "", false)
		res.Add(name+"_train_tokens", "tokens", float64(tokens), nil, "", false)
		res.Add(name+"_wall_time_s", "s", wallS, nil, "", false)
	}
	if dry {
		return nil
	}
	if merge != "" {
		if err := res.MergeFile(merge); err != nil {
			return err
		}
		res.Command += " -merge " + merge
	}
	res.Table(os.Stdout)
	return res.Write(out)
}

// score evaluates the base model and the deployed version (when there is one) on the
// task's test split, in the task the agent wrote, labels mapped by the plan.
func score(p *coldstart.Plan, bt benchTask, shared, heldout, runDir, base, version string, n int) (float64, float64, int, error) {
	t, err := task.Load(filepath.Join(runDir, "task"))
	if err != nil {
		return 0, 0, 0, err
	}
	exs, err := testExamples(p, bt, shared, heldout)
	if err != nil {
		return 0, 0, 0, err
	}
	exs = t.Sample(exs, n, 11)
	m, err := model.Open(base, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		return 0, 0, 0, err
	}
	defer m.Close()
	o := task.EvalOptions{Batch: 32, EOS: m.EOS, PadID: m.Pad}
	before, err := t.Evaluate(context.Background(), m.LM, m.Tokenizer, exs, o)
	if err != nil {
		return 0, 0, 0, err
	}
	if version == "" {
		return before.Value, before.Value, len(exs), nil // nothing deployed: the base model answers
	}
	vdir := filepath.Join(runDir, "versions", version)
	kind, _, err := versions.Inspect(vdir)
	if err != nil {
		return 0, 0, 0, err
	}
	lm := m.LM
	if kind == versions.Model { // trained in every weight
		if lm, err = model.Load(vdir, torch.CPU, m.LM.DType()); err != nil {
			return 0, 0, 0, err
		}
		defer lm.Close()
	} else {
		set, err := lora.Load(vdir, m.LM)
		if err != nil {
			return 0, 0, 0, err
		}
		defer set.Close()
	}
	after, err := t.Evaluate(context.Background(), lm, m.Tokenizer, exs, o)
	if err != nil {
		return 0, 0, 0, err
	}
	return before.Value, after.Value, len(exs), nil
}
