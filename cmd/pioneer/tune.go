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
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/tune"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/torch"
)

func tuneCommand() *cli.Command {
	return &cli.Command{
		Name:  "tune",
		Usage: "fine-tune a model on a task and report its metric on the test split before and after",
		Description: `The default is Pioneer's main job on its embedded defaults: a LoRA adapter for the
embedded base model pioneer-nano on the bundled CLINC150 intent task (make demo caps
the examples so that it finishes in a few minutes on 2 CPU cores). --task is a
bundled task (` + fmt.Sprint(task.Bundled()) + `) or a task.yaml (see agent/task); --model a
Hugging Face folder or a bundled model. The run folder gets the adapter (adapter/; with
--full a model folder, model/), every prediction before and after (before.json,
after.json), result.json and report.md.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "task", Value: "clinc150", Usage: "bundled task name or task.yaml"},
			&cli.StringFlag{Name: "model", Value: data.NanoModel, Usage: modelUsage},
			&cli.StringFlag{Name: "out", Value: "runs/tune", Usage: "run folder"},
			&cli.IntFlag{Name: "train-examples", Usage: "training examples to use, balanced across labels (0: all)"},
			&cli.IntFlag{Name: "eval-examples", Usage: "test examples to evaluate before and after (0: the whole test split)"},
			&cli.IntFlag{Name: "epochs", Value: 3, Usage: "passes over the training examples"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "sequences per step"},
			&cli.Float64Flag{Name: "lr", Usage: "peak learning rate (cosine schedule); 0: 5e-3 for LoRA, 1e-3 with --full"},
			&cli.IntFlag{Name: "lora-r", Value: 16, Usage: "LoRA rank (alpha = 2 x rank)"},
			&cli.BoolFlag{Name: "full", Usage: "fine-tune every weight instead of LoRA"},
			&cli.BoolFlag{Name: "eval-metric", Usage: "compute the task metric (accuracy, entity F1, ...) on the validation examples at every evaluation during training; the best adapter (or model) by it goes to adapter/best (model/best with --full)"},
			&cli.BoolFlag{Name: "random-init", Usage: "start from random weights instead of the model's (a from-scratch baseline)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed for sampling, adapter initialisation and data order"},
			deviceFlag(),
			threadsFlag(),
		},
		Action: runTune,
	}
}

func runTune(c *cli.Context) error {
	if err := checkInts(c, intRange{"epochs", 1, maxEpochs}, intRange{"batch", 1, maxBatch}, intRange{"lora-r", 1, 1 << 16},
		intRange{"train-examples", 0, maxExamples}, intRange{"eval-examples", 0, maxExamples}); err != nil {
		return err
	}
	if err := checkFloats(c, floatRange{"lr", 0, 1, false}); err != nil { // 0: the strategy's default
		return err
	}
	dev, err := device(c)
	if err != nil {
		return err
	}
	t, err := task.Load(c.String("task"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	bar := newProgressBar(os.Stderr)
	lastTick := time.Time{}
	fmt.Fprintf(os.Stderr, "pioneer tune: libtorch %s, %d threads\n", torch.Version(), torch.NumThreads())
	res, err := tune.Run(ctx, tune.Config{
		Model: c.String("model"), Task: t, Out: c.String("out"), Device: dev,
		TrainExamples: c.Int("train-examples"), EvalExamples: c.Int("eval-examples"),
		Recipe: finetune.Recipe{Epochs: c.Int("epochs"), Batch: c.Int("batch"), LR: c.Float64("lr"), Rank: c.Int("lora-r"),
			Full: c.Bool("full"), Seed: c.Uint64("seed")},
		RandomInit: c.Bool("random-init"), EvalMetric: c.Bool("eval-metric"), Log: os.Stderr, Progress: bar.update,
		EvalTick: func(stage string, done, total int) {
			if done == total || time.Since(lastTick) > 5*time.Second {
				fmt.Fprintf(os.Stderr, "  evaluating (%s): %d/%d\n", stage, done, total)
				lastTick = time.Now()
			}
		},
	})
	bar.finish()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted; the training checkpoint is in %s", filepath.Join(c.String("out"), finetune.OutputDir(c.Bool("full")), "checkpoints"))
		}
		return err
	}
	fmt.Printf("\n%s on %s: %s %.1f%% -> %.1f%% (%d test examples), in %s\n", filepath.Base(c.String("model")), t.Name,
		res.Metric, 100*res.Before, 100*res.After, res.EvalN, res.Wall.Round(time.Second))
	for _, e := range res.Examples {
		fmt.Printf("  %q: expected %s; before %s, after %s\n", e.Text, e.Gold, e.Before, e.After)
	}
	example := "..."
	if len(res.Examples) > 0 {
		example = res.Examples[0].Text
	}
	use := fmt.Sprintf("pioneer generate --model %s --adapter %s", c.String("model"), res.Adapter)
	if c.Bool("full") {
		fmt.Printf("  model    %s (a Hugging Face model folder)\n", res.Adapter)
		use = "pioneer generate --model " + res.Adapter
	} else {
		fmt.Printf("  adapter  %s (PEFT format)\n", res.Adapter)
	}
	fmt.Printf("  report   %s (mistakes, every prediction in before.json / after.json)\n", filepath.Join(c.String("out"), "report.md"))
	fmt.Printf("  use it   %s --prompt %q --max-new-tokens 16\n", use, t.PromptText(example))
	return nil
}
