package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/metrics"
	"github.com/pioneer-ai/pioneer/engine/sft"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/format"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/chat"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

// trainFlags are pioneer train's settings; every one can also come from --config (YAML,
// same names), and a flag given on the command line wins.
func trainFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "YAML file whose keys are these flags' names"},
		altsrc.NewStringFlag(&cli.StringFlag{Name: "model", Usage: "base model folder (Hugging Face layout)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "data", Usage: `training JSONL: {"prompt","completion"}, {"messages"} or {"text"}`}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "eval", Usage: "held-out JSONL in the same shapes (evaluation loss during training)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "out", Usage: "run folder"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "full", Usage: "fine-tune every weight instead of LoRA adapters"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "lora-r", Value: 16, Usage: "LoRA rank"}),
		altsrc.NewFloat64Flag(&cli.Float64Flag{Name: "lora-alpha", Value: 32, Usage: "LoRA alpha (scale = alpha/r)"}),
		altsrc.NewFloat64Flag(&cli.Float64Flag{Name: "lora-dropout", Value: 0, Usage: "LoRA dropout"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "lora-targets", Value: "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
			Usage: "comma-separated module names to adapt (GPT-2: c_attn,c_proj,c_fc)"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "rslora", Usage: "scale by alpha/sqrt(r)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "epochs", Value: 3, Usage: "passes over the data (when --steps is 0)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "steps", Usage: "optimizer steps (overrides --epochs)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "batch", Value: 8, Usage: "sequences per batch"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "grad-accum", Value: 1, Usage: "batches whose gradients add up to one optimizer step"}),
		altsrc.NewFloat64Flag(&cli.Float64Flag{Name: "lr", Value: 2e-4, Usage: "peak learning rate"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "warmup", Value: 10, Usage: "linear warmup steps"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "schedule", Value: "cosine", Usage: "cosine, linear or constant"}),
		altsrc.NewFloat64Flag(&cli.Float64Flag{Name: "min-lr-ratio", Value: 0.1, Usage: "final learning rate as a fraction of the peak"}),
		altsrc.NewFloat64Flag(&cli.Float64Flag{Name: "weight-decay", Value: 0, Usage: "AdamW decoupled weight decay"}),
		altsrc.NewFloat64Flag(&cli.Float64Flag{Name: "grad-clip", Value: 1, Usage: "global gradient-norm limit (0: off)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-len", Value: 1024, Usage: "longest sequence in tokens"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "truncate", Usage: "cut longer examples instead of refusing them"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "skip-bad-lines", Usage: "leave malformed JSONL lines out (reported) instead of stopping"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "eval-every", Value: 50, Usage: "steps between evaluations"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "patience", Usage: "stop after this many evaluations without improvement (0: never)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "metric", Usage: "task metric computed on --eval at every evaluation and used for the best model and early stopping: exact_match, rouge_l, accuracy (needs --label) or entity_f1 (needs --entity-type); empty: the evaluation loss"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "label", Usage: "a label of a classification task (repeatable), written as the completions write them"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "entity-type", Usage: "an entity type of an extraction task (repeatable); completions list entities as \"TYPE: span; TYPE: span\" or \"none\""}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "checkpoint-every", Value: 100, Usage: "steps between checkpoints"}),
		altsrc.NewUint64Flag(&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed for adapter initialisation and data order"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "device", Value: "auto", Usage: "cpu, cuda, cuda:N or auto"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "weight dtype: float32 or bfloat16"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "autocast", Usage: "mixed precision for the forward pass: bfloat16 or float16 (GPU); empty: off"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "workers", Usage: "CPU: threads that share out each batch's rows, each running single-threaded kernels (a resume must use the same); 0: one per libtorch thread for LoRA without dropout and --full; 1: none"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "resume", Usage: "continue from the run folder's latest checkpoint"}),
	}
}

func trainCommand() *cli.Command {
	flags := trainFlags()
	return &cli.Command{
		Name:  "train",
		Usage: "fine-tune a Hugging Face model (LoRA by default, or every weight) on JSONL examples",
		Description: `The loss is taken on completions only (the assistant's last reply for chat
examples, rendered with the model's chat template; every token for {"text"}). The run
folder gets metrics.jsonl, checkpoints/ (resumable with --resume), best/ (the weights
with the lowest evaluation loss), config.yaml (the resolved settings) and the result:
a PEFT adapter (adapter_config.json, adapter_model.safetensors) or, with --full, a
model folder.`,
		Flags:  flags,
		Before: altsrc.InitInputSourceWithContext(flags, altsrc.NewYamlSourceFromFlagFunc("config")),
		Action: runTrain,
	}
}

// encodeExamples reads and tokenizes a JSONL file for a model folder.
func encodeExamples(path string, tok *tokenizer.Tokenizer, dir string, eos, maxLen int, truncate, skipBad bool) ([]training.Sequence, error) {
	examples, skipped, err := sft.Read(path, skipBad)
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		fmt.Fprintf(os.Stderr, "%s: skipped %v\n", path, s)
	}
	var tpl *chat.Template
	for _, ex := range examples {
		if len(ex.Messages) > 0 {
			if tpl, err = chat.Load(filepath.Join(dir, "tokenizer_config.json")); err != nil {
				return nil, err
			}
			break
		}
	}
	out := make([]training.Sequence, 0, len(examples))
	for _, ex := range examples {
		seq, err := sft.Tokenize(ex, tok, sft.TokenizeOptions{Template: tpl, EOS: eos, MaxLen: maxLen, Truncate: truncate})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, seq)
	}
	return out, nil
}

func runTrain(c *cli.Context) error {
	for _, req := range []string{"model", "data", "out"} {
		if c.String(req) == "" {
			return fmt.Errorf("--%s is required (on the command line or in --config)", req)
		}
	}
	l, err := openModel(c, true)
	if err != nil {
		return err
	}
	defer l.Close()
	dir := c.String("model")
	eos := -1
	if len(l.gen.EosTokenIDs) > 0 {
		eos = l.gen.EosTokenIDs[0]
	}
	maxLen := min(c.Int("max-len"), l.m.Info().MaxPositions)
	train, err := encodeExamples(c.String("data"), l.tok, dir, eos, maxLen, c.Bool("truncate"), c.Bool("skip-bad-lines"))
	if err != nil {
		return err
	}
	var eval []training.Sequence
	if p := c.String("eval"); p != "" {
		if eval, err = encodeExamples(p, l.tok, dir, eos, maxLen, c.Bool("truncate"), c.Bool("skip-bad-lines")); err != nil {
			return err
		}
	}
	var lm training.LM = training.Full{Model: l.m}
	what := "every weight"
	if !c.Bool("full") {
		set, err := lora.Attach(l.m, lora.Config{
			R: c.Int("lora-r"), Alpha: c.Float64("lora-alpha"), Dropout: c.Float64("lora-dropout"), UseRSLoRA: c.Bool("rslora"),
			TargetModules: lora.Targets{Names: strings.Split(c.String("lora-targets"), ",")}, BaseModel: dir,
		}, c.Uint64("seed"))
		if err != nil {
			return err
		}
		defer set.Close()
		lm = lora.Trainer{Model: l.m, Set: set}
		var n int64
		for _, p := range set.Parameters() {
			n += p.Numel()
		}
		what = fmt.Sprintf("LoRA r=%d alpha=%g on %d projections (%s parameters)", c.Int("lora-r"), c.Float64("lora-alpha"), len(set.Adapters), format.Commas(n))
	}
	pad := l.gen.PadTokenID
	if pad < 0 {
		pad = max(eos, 0)
	}
	cfg := training.FineTuneConfig{BatchSize: c.Int("batch"), Epochs: c.Int("epochs"), PadID: pad, TrainConfig: training.TrainConfig{
		Steps:       c.Int("steps"),
		GradAccum:   c.Int("grad-accum"),
		Schedule:    training.Schedule{Peak: c.Float64("lr"), Warmup: c.Int("warmup"), MinRatio: c.Float64("min-lr-ratio"), Kind: c.String("schedule")},
		WeightDecay: c.Float64("weight-decay"), GradClip: c.Float64("grad-clip"), Seed: c.Uint64("seed"),
		EvalEvery: c.Int("eval-every"), Patience: c.Int("patience"), CheckpointEvery: c.Int("checkpoint-every"),
		OutDir: c.String("out"), Resume: c.Bool("resume"), Workers: c.Int("workers"),
	}}
	if metric := c.String("metric"); metric != "" {
		switch {
		case len(eval) == 0:
			return fmt.Errorf("--metric needs --eval examples")
		case metric == "accuracy" && len(c.StringSlice("label")) == 0:
			return fmt.Errorf("--metric accuracy needs the label set (--label, repeated)")
		case metric == "entity_f1" && len(c.StringSlice("entity-type")) == 0:
			return fmt.Errorf("--metric entity_f1 needs the entity types (--entity-type, repeated)")
		case metric != "exact_match" && metric != "rouge_l" && metric != "accuracy" && metric != "entity_f1":
			return fmt.Errorf("unknown --metric %q (exact_match, rouge_l, accuracy or entity_f1)", metric)
		}
		cfg.StopOn = metric
		cfg.Metrics = func() (map[string]float64, error) {
			ms, _, err := taskMetrics(l, eval, eos, c.StringSlice("label"), c.StringSlice("entity-type"), c.Int("batch"), 64)
			return ms, err
		}
	}
	if a := c.String("autocast"); a != "" {
		if cfg.Autocast, err = torch.ParseDType(a); err != nil {
			return err
		}
	}
	if err := writeResolvedConfig(c, cfg.OutDir); err != nil {
		return err
	}
	info := l.m.Info()
	fmt.Fprintf(os.Stderr, "pioneer train: %s (%s, %s parameters) on %s, libtorch %s\n", dir, info.Architecture, format.Commas(info.Params), l.m.Device(), torch.Version())
	fmt.Fprintf(os.Stderr, "  data     %s: %d examples; eval %d examples\n", c.String("data"), len(train), len(eval))
	fmt.Fprintf(os.Stderr, "  training %s; batch %d, lr %g (%s, warmup %d), seed %d\n", what, cfg.BatchSize, cfg.Schedule.Peak, c.String("schedule"), cfg.Schedule.Warmup, cfg.Seed)
	fmt.Fprintf(os.Stderr, "  run      %s (resolved settings in config.yaml)\n", cfg.OutDir)

	res, err := runWithProgress(cfg.OutDir, func(ctx context.Context, report func(training.Progress)) (*training.TrainResult, error) {
		return training.FineTune(ctx, lm, train, eval, cfg, report)
	})
	if err != nil {
		return err
	}
	if c.Bool("full") { // a usable model folder: the tokenizer files come along
		if err := model.CopyCompanionFiles(dir, cfg.OutDir); err != nil {
			return err
		}
	}
	fmt.Printf("\ntraining done in %s: %d steps, %s target tokens (%.0f tokens/s)\n", res.Wall.Round(time.Second), res.Steps, format.Commas(res.Tokens), res.TokensPerSec)
	fmt.Printf("  training loss  %.4f -> %.4f\n", res.FirstLoss, res.FinalLoss)
	switch {
	case cfg.StopOn != "": // the best score is the metric, negated
		fmt.Printf("  eval loss      %.4f; best %s %.4f at step %d\n", res.EvalLoss, cfg.StopOn, -res.BestEvalLoss, res.BestStep)
	case len(eval) > 0:
		fmt.Printf("  eval loss      %.4f (best %.4f at step %d)\n", res.EvalLoss, res.BestEvalLoss, res.BestStep)
	}
	if c.Bool("full") {
		fmt.Printf("  model          %s (Hugging Face folder)\n", cfg.OutDir)
	} else {
		fmt.Printf("  adapter        %s (PEFT format); use: pioneer eval --model %s --adapter %s --data test.jsonl\n", cfg.OutDir, dir, cfg.OutDir)
	}
	return nil
}

// writeResolvedConfig records every setting of this run as YAML in the run folder.
func writeResolvedConfig(c *cli.Context, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	m := map[string]any{}
	for _, f := range trainFlags() {
		name := f.Names()[0]
		if name == "config" {
			continue
		}
		m[name] = c.Value(name)
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "config.yaml"), b, 0o644)
}

// evalCommand scores a model, with or without an adapter, on a JSONL set.
func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "evaluate a model (optionally with a LoRA adapter) on JSONL examples: loss, exact match, ROUGE-L, label accuracy",
		Flags: append(modelFlags(),
			&cli.StringFlag{Name: "adapter", Usage: "PEFT adapter folder (a pioneer train run folder)"},
			&cli.StringFlag{Name: "data", Required: true, Usage: "JSONL examples in the training shapes"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "sequences per batch"},
			&cli.IntFlag{Name: "max-new-tokens", Value: 64, Usage: "tokens to generate for exact match and ROUGE-L"},
			&cli.StringSliceFlag{Name: "label", Usage: "a label of a classification task (repeatable): adds accuracy of answers constrained to the labels, written as the completions write them"},
			&cli.StringSliceFlag{Name: "entity-type", Usage: "an entity type of an extraction task (repeatable): adds entity-level precision, recall and F1; completions list entities as \"TYPE: span; TYPE: span\" or \"none\""},
		),
		Action: func(c *cli.Context) error {
			l, err := openModel(c, true)
			if err != nil {
				return err
			}
			defer l.Close()
			var lm training.LM = training.Full{Model: l.m}
			if a := c.String("adapter"); a != "" {
				set, err := lora.Load(a, l.m)
				if err != nil {
					return err
				}
				defer set.Close()
				lm = lora.Trainer{Model: l.m, Set: set}
			}
			dir := c.String("model")
			eos := -1
			if len(l.gen.EosTokenIDs) > 0 {
				eos = l.gen.EosTokenIDs[0]
			}
			seqs, err := encodeExamples(c.String("data"), l.tok, dir, eos, l.m.Info().MaxPositions, true, false)
			if err != nil {
				return err
			}
			loss, err := training.SequenceLoss(lm, seqs, c.Int("batch"), max(l.gen.PadTokenID, 0))
			if err != nil {
				return err
			}
			fmt.Printf("examples       %d\n", len(seqs))
			fmt.Printf("loss           %.4f per target token\n", loss)
			ms, n, err := taskMetrics(l, seqs, eos, c.StringSlice("label"), c.StringSlice("entity-type"), c.Int("batch"), c.Int("max-new-tokens"))
			if err != nil || n == 0 {
				return err
			}
			fmt.Printf("exact match    %.4f (%d prompts, greedy)\n", ms["exact_match"], n)
			fmt.Printf("ROUGE-L        %.4f\n", ms["rouge_l"])
			if acc, ok := ms["accuracy"]; ok {
				fmt.Printf("accuracy       %.4f (answers constrained to %d labels)\n", acc, len(c.StringSlice("label")))
			}
			if f1, ok := ms["entity_f1"]; ok {
				fmt.Printf("entity F1      %.4f (precision %.4f, recall %.4f; %d completions off the format)\n", f1, ms["entity_precision"], ms["entity_recall"], int(ms["entity_format_errors"]))
			}
			return nil
		},
	}
}

// taskMetrics scores greedy continuations of the examples' prompts against their targets
// (exact_match, rouge_l) and, given labels, the accuracy of answers constrained to them
// (accuracy). n is the number of examples with a prompt ({"text"} ones have none).
func taskMetrics(l *loaded, seqs []training.Sequence, eos int, labels, entityTypes []string, batch, maxNew int) (map[string]float64, int, error) {
	var prompts, want [][]int
	for _, s := range seqs {
		k := 0
		for k < len(s.Labels) && s.Labels[k] == -100 {
			k++
		}
		if k == 0 {
			continue
		}
		target := s.IDs[k:]
		if len(target) > 0 && target[len(target)-1] == eos {
			target = target[:len(target)-1]
		}
		prompts, want = append(prompts, s.IDs[:k]), append(want, target)
	}
	if len(prompts) == 0 {
		return nil, 0, nil
	}
	var got, ref []string
	for i := 0; i < len(prompts); i += batch {
		end := min(i+batch, len(prompts))
		out, err := infer.Generate(l.m, prompts[i:end], infer.GenerateOptions{
			MaxNewTokens: maxNew, StopTokens: l.gen.EosTokenIDs, PadID: max(l.gen.PadTokenID, 0)})
		if err != nil {
			return nil, 0, err
		}
		for j, o := range out {
			got = append(got, l.tok.Decode(o.Tokens, true))
			ref = append(ref, l.tok.Decode(want[i+j], true))
		}
	}
	ms := map[string]float64{}
	var err error
	if ms["exact_match"], err = metrics.ExactMatch(got, ref); err != nil {
		return nil, 0, err
	}
	if ms["rouge_l"], err = metrics.MeanRougeL(got, ref); err != nil {
		return nil, 0, err
	}
	if len(entityTypes) > 0 {
		if err := entityScores(ms, got, ref, entityTypes); err != nil {
			return nil, 0, err
		}
	}
	if len(labels) > 0 {
		ids := make([][]int, len(labels))
		for i, lab := range labels {
			var err error
			if ids[i], err = l.tok.Encode(lab, false); err != nil {
				return nil, 0, fmt.Errorf("label %q: %w", lab, err)
			}
		}
		cls, err := infer.Classify(l.m, prompts, ids, batch)
		if err != nil {
			return nil, 0, err
		}
		answers := make([]string, len(cls))
		norm := make([]string, len(ref))
		for i, cl := range cls {
			answers[i], norm[i] = metrics.Normalize(labels[cl.Label]), metrics.Normalize(ref[i])
		}
		if ms["accuracy"], err = metrics.Accuracy(answers, norm); err != nil {
			return nil, 0, err
		}
	}
	return ms, len(prompts), nil
}

// exportCommand merges an adapter into its base model and writes a model folder.
func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "merge a LoRA adapter into its base model (or convert a model's dtype) and write a Hugging Face model folder",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "base model folder"},
			&cli.StringFlag{Name: "adapter", Usage: "PEFT adapter folder to merge (none: the model is written as it is, in --dtype)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "folder for the merged model"},
			&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "dtype of the written weights"},
		},
		Action: func(c *cli.Context) error {
			dtype, err := torch.ParseDType(c.String("dtype"))
			if err != nil {
				return err
			}
			dir := c.String("model")
			m, err := model.Load(dir, torch.CPU, dtype)
			if err != nil {
				return err
			}
			defer m.Close()
			out := c.String("out")
			merged := 0
			if a := c.String("adapter"); a != "" {
				set, err := lora.Load(a, m)
				if err != nil {
					return err
				}
				defer set.Close()
				if err := set.Merge(); err != nil {
					return err
				}
				merged = len(set.Adapters)
			}
			if err := m.Save(out); err != nil {
				return err
			}
			if err := model.CopyCompanionFiles(dir, out); err != nil {
				return err
			}
			if merged > 0 {
				fmt.Printf("merged %d adapted projections of %s into %s (%s)\n", merged, dir, out, dtype)
			} else {
				fmt.Printf("wrote %s as %s (%s)\n", dir, out, dtype)
			}
			return nil
		},
	}
}

// entityScores adds entity-level micro precision, recall and F1 of the completions got
// against ref to ms (entity_precision, entity_recall, entity_f1), with the count of
// completions off the format (entity_format_errors). Completions list entities in
// agent/task's extraction format ("PER: Angela Merkel; LOC: Berlin", or "none"), typed
// by types; a completion off the format still scores the entities it does name.
func entityScores(ms map[string]float64, got, ref, types []string) error {
	ext := &task.Task{Type: task.Extraction, Output: "{entities}", EntityTypes: types}
	pred, gold := make([][]metrics.Entity, len(got)), make([][]metrics.Entity, len(ref))
	bad := 0
	for i := range got {
		var ok bool
		if _, pred[i], ok = ext.ParseOutput(got[i]); !ok {
			bad++
		}
	}
	for i := range ref {
		_, gold[i], _ = ext.ParseOutput(ref[i])
	}
	all, _, err := metrics.EntityF1(pred, gold)
	if err != nil {
		return err
	}
	ms["entity_f1"], ms["entity_precision"], ms["entity_recall"] = all.F1, all.Precision, all.Recall
	ms["entity_format_errors"] = float64(bad)
	return nil
}
