package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/production"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/data"
)

func adaptCommand() *cli.Command {
	return &cli.Command{
		Name:  "adapt",
		Usage: "production mode: diagnose a deployed model's logged failures, retrain from the base model, promote through a regression gate",
		Description: `Reads the failure log (JSONL: id, input, output, expected, optional timestamp and
metadata), quarantines lines that do not parse or fit the task, triages the rest
(poison — label flips, off-domain, prompt injection, gibberish, empty — is never trained
on; fixable noise is repaired), groups failures into patterns and confirms them on
fresh probes from the task's data, builds a curriculum per pattern, trains at least two
candidates from the base model per iteration, and promotes one only if it improves the
held-out metric, breaks at most --epsilon examples of R (the traffic the deployed model
gets right) and does not lose ground on the previous version's evaluation set. RUN_DIR
gets lineage.jsonl (append-only; rerunning the same command resumes a killed run),
versions/ (CURRENT names the deployed one), report.md and report.html.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Value: data.NanoModel, Usage: modelUsage},
			&cli.StringFlag{Name: "deployment", Usage: "a served deployment (a run folder pioneer serve --deployment follows): its current version is adapted to the feedback in --log-dir, in DIR/rounds/N, and a promotion becomes its new current version (instead of --adapter, --failures, --traffic and --out)"},
			&cli.StringFlag{Name: "log-dir", Usage: "with --deployment: pioneer serve's log folder (default DIR/logs, where pioneer serve --deployment DIR logs)"},
			&cli.StringFlag{Name: "adapter", Usage: "what is deployed: a PEFT adapter folder, or a model folder fine-tuned from --model in every weight (pioneer tune --full); candidates are trained the same way"},
			&cli.StringFlag{Name: "task", Usage: "bundled task name or task.yaml (with --deployment, default: the cold-start folder's DIR/task)"},
			&cli.StringFlag{Name: "failures", Usage: "failure log (JSONL)"},
			&cli.StringFlag{Name: "traffic", Usage: "JSONL of task examples the deployed model gets right (defines R)"},
			&cli.StringFlag{Name: "parent-data", Usage: "JSONL of the deployed model's training examples (replayed; part of every candidate's data)"},
			&cli.StringFlag{Name: "out", Usage: "run folder"},
			&cli.IntFlag{Name: "epsilon", Value: production.DefaultEpsilon, Usage: "examples of R the new model may break (absolute count; 0: none)"},
			&cli.IntFlag{Name: "iterations", Value: 3, Usage: "iterations at most (with --search mcts: 2 candidates per iteration)"},
			&cli.StringFlag{Name: "search", Value: production.SearchGreedy, Usage: "how candidate pipelines are chosen: greedy (iterations of up to 2 candidates, the first that passes wins) or mcts (Monte-Carlo graph search over data x hyperparameters, the best passing candidate of the budget wins)"},
			&cli.DurationFlag{Name: "wall-time", Usage: "wall-time budget (0: none)"},
			&cli.Int64Flag{Name: "token-budget", Usage: "training tokens all candidates together may use (0: no bound); checked before each iteration (greedy) or candidate (mcts)"},
			&cli.StringFlag{Name: "approve", Value: "auto", Usage: "auto: promote what passes the gate; manual: wait for pioneer approve"},
			&cli.IntFlag{Name: "epochs", Value: 3, Usage: "candidate training epochs"},
			&cli.Float64Flag{Name: "lr", Usage: "candidate learning rate (0: 5e-3 for an adapter, 1e-3 for a fully fine-tuned model)"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "sequences per step"},
			&cli.IntFlag{Name: "heldout", Value: 500, Usage: "validation examples in the held-out set"},
			&cli.IntFlag{Name: "probes", Value: 20, Usage: "fresh examples the deployed model is run on to confirm each error pattern"},
			urlFlag("teacher", "writes extra examples"), modelFlag("teacher"), redactFlag,
			&cli.Uint64Flag{Name: "seed", Value: 1},
			deviceFlag(),
			threadsFlag(),
		},
		Action: runAdapt,
	}
}

func runAdapt(c *cli.Context) error {
	if a := c.String("approve"); a != "auto" && a != "manual" {
		return fmt.Errorf("--approve must be auto or manual, got %q", a)
	}
	if sr := c.String("search"); sr != production.SearchGreedy && sr != production.SearchMCTS {
		return fmt.Errorf("--search must be %s or %s, got %q", production.SearchGreedy, production.SearchMCTS, sr)
	}
	if err := checkInts(c, intRange{"epsilon", 0, 1 << 30}, intRange{"iterations", 1, production.MaxIterations},
		intRange{"epochs", 1, maxEpochs}, intRange{"batch", 1, maxBatch}, intRange{"heldout", 1, maxExamples}, intRange{"probes", 1, maxExamples}); err != nil {
		return err
	}
	if err := checkFloats(c, floatRange{"lr", 0, 1, false}); err != nil { // 0: the strategy's default
		return err
	}
	if c.Duration("wall-time") < 0 {
		return fmt.Errorf("--wall-time must not be negative, got %s", c.Duration("wall-time"))
	}
	if c.Int64("token-budget") < 0 {
		return fmt.Errorf("--token-budget must not be negative, got %d", c.Int64("token-budget"))
	}
	dev, err := device(c)
	if err != nil {
		return err
	}
	deployDir := c.String("deployment")
	taskName := c.String("task")
	if deployDir != "" {
		for _, f := range []string{"adapter", "failures", "traffic", "out"} {
			if c.IsSet(f) {
				return fmt.Errorf("--%s and --deployment: the deployment's current version, its logs and its rounds/ folder take their place", f)
			}
		}
		if taskName == "" {
			if _, err := os.Stat(filepath.Join(deployDir, "task", "task.yaml")); err == nil {
				taskName = filepath.Join(deployDir, "task")
			}
		}
	} else {
		for _, f := range []string{"adapter", "failures", "out"} {
			if c.String(f) == "" {
				return fmt.Errorf("--%s is required (or --deployment)", f)
			}
		}
		if c.IsSet("log-dir") {
			return fmt.Errorf("--log-dir goes with --deployment")
		}
	}
	if taskName == "" {
		return fmt.Errorf("--task is required")
	}
	t, err := task.Load(taskName)
	if err != nil {
		return err
	}
	cfg := production.Config{
		Base: c.String("model"), Deployed: c.String("adapter"), Task: t,
		Failures: c.String("failures"), Traffic: c.String("traffic"), ParentData: c.String("parent-data"), Out: c.String("out"),
		Epsilon: c.Int("epsilon"), Iterations: c.Int("iterations"), Search: c.String("search"), WallTime: c.Duration("wall-time"), TokenBudget: c.Int64("token-budget"),
		Manual: c.String("approve") == "manual", Device: dev, HeldOut: c.Int("heldout"), Probes: c.Int("probes"), Seed: c.Uint64("seed"),
		Recipe: finetune.Recipe{Epochs: c.Int("epochs"), LR: c.Float64("lr"), Batch: c.Int("batch"), Seed: c.Uint64("seed")},
		Log:    os.Stderr,
	}
	if cfg.Teacher, err = endpointClient(c, "teacher"); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	bar := newProgressBar(os.Stderr)
	cfg.Progress = bar.update
	start := time.Now()
	var o *production.Outcome
	if deployDir != "" {
		logDir := c.String("log-dir")
		if logDir == "" {
			logDir = filepath.Join(deployDir, "logs")
		}
		o, cfg.Out, err = production.Round(ctx, deployDir, logDir, cfg)
	} else {
		o, err = production.Run(ctx, cfg)
	}
	bar.finish()
	if err != nil {
		if ctx.Err() != nil || production.IsStopped(err) {
			return fmt.Errorf("stopped before deciding anything; run the same command again to resume from %s", filepath.Join(cfg.Out, "lineage.jsonl"))
		}
		return err
	}
	fmt.Printf("\n%s: %s; deployed version %s (%s)\n", cfg.Out, o.Verdict, o.Version, time.Since(start).Round(time.Second))
	fmt.Printf("  deployed   %s %.4f on the held-out set\n", t.Metric, o.Deployed.HeldOut)
	if o.Chosen != nil {
		fmt.Printf("  candidate  %s: %.4f, %d examples of R broken\n", o.Candidate, o.Chosen.HeldOut, o.Chosen.Regressions)
	}
	for _, r := range o.Reasons {
		fmt.Printf("  - %s\n", r)
	}
	fmt.Printf("  report     %s\n", filepath.Join(cfg.Out, "report.md"))
	if o.Verdict == production.AwaitingApproval {
		fmt.Printf("  approve    pioneer approve %s\n", cfg.Out)
		if deployDir != "" {
			fmt.Printf("             then rerun this command: the approved version becomes the deployment's\n")
		}
	}
	if deployDir != "" && o.Verdict == production.Promoted {
		vs, err := versions.Open(deployDir, false)
		if err != nil {
			return err
		}
		cur, err := vs.Current()
		if err != nil {
			return err
		}
		fmt.Printf("  deployment %s now at %s (a pioneer serve --deployment following it swaps it in)\n", deployDir, cur)
	}
	return nil
}

func approveCommand() *cli.Command {
	return &cli.Command{
		Name:      "approve",
		Usage:     "promote the candidate a pioneer adapt --approve manual run left waiting",
		ArgsUsage: "RUN_DIR",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("usage: pioneer approve RUN_DIR")
			}
			v, err := production.Approve(c.Args().First())
			if err != nil {
				return err
			}
			fmt.Printf("approved: version %s is deployed\n", v)
			return nil
		},
	}
}

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "deploy an earlier version of a production run's adapter or model",
		ArgsUsage: "[--to vN] RUN_DIR",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "to", Usage: "version to deploy (default: the one before the current)"}},
		Action: func(c *cli.Context) error {
			// The flag parser stops at the first argument; accept --to after RUN_DIR too.
			to, args := c.String("to"), c.Args().Slice()
			if len(args) == 3 && (args[1] == "--to" || args[1] == "-to") {
				to, args = args[2], args[:1]
			}
			if len(args) != 1 {
				return fmt.Errorf("usage: pioneer rollback [--to vN] RUN_DIR")
			}
			v, err := production.Rollback(args[0], to)
			if err != nil {
				return err
			}
			fmt.Printf("rolled back: version %s is deployed (%s)\n", v, filepath.Join(args[0], "versions", v))
			return nil
		},
	}
}
