package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/lora"
)

// evalCommand scores a model, with or without an adapter, on a JSONL set.
func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "evaluate a model (optionally with a LoRA adapter) on JSONL examples: loss, exact match, ROUGE-L, label accuracy, entity F1",
		Flags: append(modelFlags(),
			&cli.StringFlag{Name: "adapter", Usage: "PEFT adapter folder (a pioneer train run folder)"},
			&cli.StringFlag{Name: "data", Required: true, Usage: "JSONL examples in the training shapes"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "sequences per batch"},
			&cli.IntFlag{Name: "max-new-tokens", Value: 64, Usage: "tokens to generate for exact match and ROUGE-L"},
			&cli.StringSliceFlag{Name: "label", Usage: "a label of a classification task (repeatable): adds accuracy of answers constrained to the labels, each written as the completions write labels (with or without their leading space)"},
			&cli.StringSliceFlag{Name: "entity-type", Usage: "an entity type of an extraction task (repeatable): adds entity-level precision, recall and F1; completions list entities as \"TYPE: span; TYPE: span\" or \"none\""},
		),
		Action: runEval,
	}
}

func runEval(c *cli.Context) error {
	if err := checkInts(c, intRange{"batch", 1, maxBatch}, intRange{"max-new-tokens", 1, maxNewTokens}); err != nil {
		return err
	}
	p, err := openModel(c)
	if err != nil {
		return err
	}
	defer p.Close()
	var lm training.LM = training.Full{Model: p.LM}
	if a := c.String("adapter"); a != "" {
		set, err := lora.Load(a, p.LM)
		if err != nil {
			return err
		}
		defer set.Close()
		lm = lora.Trainer{Model: p.LM, Set: set}
	}
	seqs, err := encodeExamples(c.String("data"), p, p.LM.Info().MaxPositions, true, false)
	if err != nil {
		return err
	}
	loss, err := training.SequenceLoss(lm, seqs, c.Int("batch"), p.Pad)
	if err != nil {
		return err
	}
	fmt.Printf("examples       %d\n", len(seqs))
	fmt.Printf("loss           %.4f per target token\n", loss)
	prompts, targets, refs := promptsAndTargets(seqs, p)
	if len(prompts) == 0 {
		return nil // {"text"} records only: no completions to score
	}
	o := task.EvalOptions{Batch: c.Int("batch"), MaxNewTokens: c.Int("max-new-tokens"), EOS: p.EOS, PadID: p.Pad, MultiLine: true}
	gen, err := task.New("completions", task.Generation, nil, nil, "exact_match")
	if err != nil {
		return err
	}
	outs, err := gen.Predict(context.Background(), p.LM, p.Tokenizer, prompts, o)
	if err != nil {
		return err
	}
	score := func(t *task.Task, outs []string) (*task.Result, error) { return t.Score(outs, refs(t)) }
	exact, err := score(gen, outs)
	if err != nil {
		return err
	}
	fmt.Printf("exact match    %.4f (%d prompts, greedy)\n", exact.Value, len(prompts))
	rouge, err := task.New("completions", task.Generation, nil, nil, "rouge_l")
	if err != nil {
		return err
	}
	res, err := score(rouge, outs)
	if err != nil {
		return err
	}
	fmt.Printf("ROUGE-L        %.4f\n", res.Value)
	if labels := c.StringSlice("label"); len(labels) > 0 {
		t, err := metricTask(c, "accuracy", targets)
		if err != nil {
			return err
		}
		answers, err := t.Predict(context.Background(), p.LM, p.Tokenizer, prompts, o)
		if err != nil {
			return err
		}
		res, err := score(t, answers)
		if err != nil {
			return err
		}
		fmt.Printf("accuracy       %.4f (answers constrained to %d labels)\n", res.Value, len(labels))
	}
	if len(c.StringSlice("entity-type")) > 0 {
		t, err := metricTask(c, "entity_f1", targets)
		if err != nil {
			return err
		}
		res, err := score(t, outs)
		if err != nil {
			return err
		}
		bad := 0
		for _, pr := range res.Predictions {
			if !pr.FormatOK {
				bad++
			}
		}
		fmt.Printf("entity F1      %.4f (precision %.4f, recall %.4f; %d completions off the format)\n", res.Entities.F1, res.Entities.Precision, res.Entities.Recall, bad)
	}
	return nil
}
