package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/agent/coldstart"
	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/data"
)

// startCommand is cold-start mode: a task description to a trained model, through the
// plan, the catalog's data, a frozen evaluation set and a search over candidates.
func startCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "cold-start: from a task description to a trained model (plan, data from local catalogs, frozen evaluation set, search)",
		ArgsUsage: `"DESCRIPTION"`,
		Description: `The run folder gets the task folder (task/: train, dev, the frozen evaluation set as its
test split), each candidate (iterN/NAME: adapter, its training data, its predictions),
outcome.json, and the best candidate as version v0 (versions/) when it beats the base
model. Rerunning the same command resumes a killed run.`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "catalog", Usage: "a folder of datasets; repeatable; the bundled tasks are always in"},
			&cli.StringFlag{Name: "examples", Usage: "a JSONL file of a few examples: they decide the type and labels, and join the data"},
			&cli.StringFlag{Name: "model", Value: data.NanoModel, Usage: modelUsage},
			&cli.StringFlag{Name: "out", Required: true, Usage: "run folder"},
			&cli.IntFlag{Name: "iterations", Value: 3, Usage: "rounds of two candidates at most (with --search mcts: 2 x iterations candidates)"},
			&cli.StringFlag{Name: "strategy", Value: coldstart.StrategySearch, Usage: "search (LoRA first; every weight tried in the second round), lora or full (every weight)"},
			&cli.StringFlag{Name: "search", Value: coldstart.SearchGreedy, Usage: "greedy (rounds of two candidates) or mcts (Monte-Carlo graph search over data size, epochs, learning rate, LoRA rank and, unless --strategy fixes it, LoRA or every weight)"},
			&cli.Float64Flag{Name: "target", Value: 0.96, Usage: "the frozen set's metric at which the search stops"},
			&cli.IntFlag{Name: "eval-size", Value: 200, Usage: "examples in the frozen evaluation set"},
			&cli.IntFlag{Name: "epochs", Value: 3, Usage: "the first candidates' passes over their data"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "sequences per step"},
			&cli.Float64Flag{Name: "lr", Usage: "the first candidates' peak learning rate (unset: the base model's usual one, for LoRA 5e-3 below 50M parameters and 1e-3 from there)"},
			&cli.IntFlag{Name: "lora-r", Value: 16, Usage: "LoRA rank (alpha = 2 x rank)"},
			&cli.DurationFlag{Name: "wall-time", Usage: "stop starting candidates after this long (0: no bound)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the evaluation set's draw and the training"},
			&cli.StringFlag{Name: "approve", Value: "auto", Usage: "auto: go on from the task to the search; manual: stop after writing the task folder, for a person to read and edit task/task.yaml, then rerun with auto"},
			urlFlag("planner", "proposes the task (type, labels or entity types, metric) as JSON; what fails or is invalid falls back to the built-in planner"),
			modelFlag("planner"),
			urlFlag("teacher", "writes seed examples where the catalogs have too few (or none) for a label"),
			modelFlag("teacher"),
			redactFlag,
			deviceFlag(),
			threadsFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := checkInts(c, intRange{"iterations", 1, 100}, intRange{"eval-size", 1, 100_000}, intRange{"epochs", 1, maxEpochs},
				intRange{"batch", 1, maxBatch}, intRange{"lora-r", 1, 1 << 16}); err != nil {
				return err
			}
			floats := []floatRange{{"target", 0, 1, true}}
			if c.IsSet("lr") { // unset, the base model's usual rate; given, a rate
				floats = append(floats, floatRange{"lr", 0, 1, true})
			}
			if err := checkFloats(c, floats...); err != nil {
				return err
			}
			if c.Duration("wall-time") < 0 {
				return fmt.Errorf("--wall-time must not be negative, got %s", c.Duration("wall-time"))
			}
			if a := c.String("approve"); a != "auto" && a != "manual" {
				return fmt.Errorf("--approve must be auto or manual, got %q", a)
			}
			if c.NArg() != 1 {
				return fmt.Errorf("start takes one argument, the task description in quotes (got %d)", c.NArg())
			}
			dev, err := device(c)
			if err != nil {
				return err
			}
			var examples []task.Example
			if f := c.String("examples"); f != "" {
				if examples, err = readExamples(f); err != nil {
					return err
				}
			}
			planner, err := endpointClient(c, "planner")
			if err != nil {
				return err
			}
			tc, err := endpointClient(c, "teacher")
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			bar := newProgressBar(os.Stderr)
			o, err := coldstart.Run(ctx, coldstart.Config{Planner: planner, Teacher: tc, Description: c.Args().First(), Examples: examples, Catalogs: c.StringSlice("catalog"),
				Base: c.String("model"), Out: c.String("out"), Device: dev, Iterations: c.Int("iterations"), Search: c.String("search"), Strategy: c.String("strategy"), Target: c.Float64("target"),
				EvalSize: c.Int("eval-size"), WallTime: c.Duration("wall-time"), Seed: c.Uint64("seed"), Log: os.Stderr, Progress: bar.update,
				Manual: c.String("approve") == "manual",
				Recipe: finetune.Recipe{Epochs: c.Int("epochs"), Batch: c.Int("batch"), LR: c.Float64("lr"), Rank: c.Int("lora-r"), Seed: c.Uint64("seed")}})
			bar.finish()
			if err != nil {
				return err
			}
			if o.Stopped == coldstart.AwaitingApproval {
				fmt.Printf("%s: the task is in %s; edit it if need be, then run the same command with --approve auto\n", o.Task, filepath.Join(c.String("out"), "task", "task.yaml"))
				return nil
			}
			if o.Best == nil {
				fmt.Printf("%s: no candidate was trained (%s)\n", o.Task, o.Stopped)
				return nil
			}
			of := fmt.Sprintf("best of %d candidates", len(o.Candidates))
			if len(o.Candidates) == 1 {
				of = "the one candidate"
			}
			fmt.Printf("%s: %s %.4f (base model) -> %.4f (%s, %s) on the frozen evaluation set; %s\n",
				o.Task, o.Metric, o.Baseline, o.Best.Metric, of, o.Best.Name, o.Stopped)
			if o.Version != "" {
				out := c.String("out")
				fmt.Printf("deployed as %s (%s); report %s\n", o.Version, filepath.Join(out, "versions", o.Version), filepath.Join(out, "report.md"))
				fmt.Printf("serve it (OpenAI-compatible; requests and feedback logged in %s):\n  pioneer serve --model %s --deployment %s\n",
					filepath.Join(out, "logs"), c.String("model"), out)
				fmt.Printf("then improve it from the feedback the server logged (a better version is swapped in):\n  pioneer adapt --model %s --deployment %s\n", c.String("model"), out)
				fmt.Printf("or from a file of labelled failures:\n  pioneer adapt --model %s --adapter %s --task %s --parent-data %s --failures FAILURES.jsonl --out %s-adapt\n",
					c.String("model"), filepath.Join(out, "versions", o.Version), filepath.Join(out, "task"), filepath.Join(out, o.Best.Dir, "train.jsonl"), out)
			} else {
				fmt.Println("no candidate beat the base model: nothing deployed")
			}
			return nil
		},
	}
}
