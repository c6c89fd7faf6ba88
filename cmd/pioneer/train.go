package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/sft"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/format"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/chat"
)

// trainFlags are pioneer train's settings; every one can also come from --config (YAML,
// same names), and a flag given on the command line wins.
func trainFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "YAML file whose keys are these flags' names"},
		altsrc.NewStringFlag(&cli.StringFlag{Name: "model", Usage: modelUsage}),
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
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "label", Usage: "a label of a classification task (repeatable); answers write it as the --eval completions write labels (with or without their leading space)"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "entity-type", Usage: "an entity type of an extraction task (repeatable); completions list entities as \"TYPE: span; TYPE: span\" or \"none\""}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "checkpoint-every", Value: 100, Usage: "steps between checkpoints"}),
		altsrc.NewUint64Flag(&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed for adapter initialisation and data order"}),
		altsrc.NewStringFlag(deviceFlag()),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "weight dtype: float32 or bfloat16"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "autocast", Usage: "mixed precision for the forward pass: bfloat16 or float16 (GPU); empty: off"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "workers", Usage: "CPU: threads that share out each batch's rows, each running single-threaded kernels (a resume must use the same); 0: one per libtorch thread for LoRA without dropout and --full; 1: none"}),
		altsrc.NewIntFlag(threadsFlag()),
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

// encodeExamples reads and tokenizes a JSONL file of training records for a model.
func encodeExamples(path string, p *model.Pretrained, maxLen int, truncate, skipBad bool) ([]training.Sequence, error) {
	records, skipped, err := sft.Read(path, skipBad)
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		fmt.Fprintf(os.Stderr, "%s: skipped %v\n", path, s)
	}
	var tpl *chat.Template
	for _, r := range records {
		if len(r.Messages) > 0 {
			if tpl, err = p.ChatTemplate(); err != nil {
				return nil, fmt.Errorf("%s: chat records need the model's chat template: %w", path, err)
			}
			break
		}
	}
	out := make([]training.Sequence, 0, len(records))
	for _, r := range records {
		seq, err := sft.Tokenize(r, p.Tokenizer, sft.TokenizeOptions{Template: tpl, EOS: p.FirstEOS(), MaxLen: maxLen, Truncate: truncate})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, seq)
	}
	return out, nil
}

// checkTrainFlags refuses out-of-range settings before anything is loaded.
func checkTrainFlags(c *cli.Context) error {
	for _, req := range []string{"model", "data", "out"} {
		if c.String(req) == "" {
			return fmt.Errorf("--%s is required (on the command line or in --config)", req)
		}
	}
	err := checkInts(c, intRange{"lora-r", 1, 1 << 16}, intRange{"epochs", 1, maxEpochs}, intRange{"steps", 0, maxSteps},
		intRange{"batch", 1, maxBatch}, intRange{"grad-accum", 1, 1 << 16}, intRange{"warmup", 0, maxSteps},
		intRange{"max-len", 2, maxSeqLen}, intRange{"eval-every", 1, maxSteps}, intRange{"patience", 0, maxSteps},
		intRange{"checkpoint-every", 1, maxSteps}, intRange{"workers", 0, training.MaxWorkers})
	if err != nil {
		return err
	}
	if err := checkFloats(c, floatRange{"lora-alpha", 0, 1e6, true}, floatRange{"lora-dropout", 0, 0.99, false},
		floatRange{"lr", 0, 1, true}, floatRange{"min-lr-ratio", 0, 1, false}, floatRange{"weight-decay", 0, 10, false},
		floatRange{"grad-clip", 0, 1e6, false}); err != nil {
		return err
	}
	return checkResume(c)
}

func runTrain(c *cli.Context) error {
	if err := checkTrainFlags(c); err != nil {
		return err
	}
	p, err := openModel(c)
	if err != nil {
		return err
	}
	defer p.Close()
	maxLen := min(c.Int("max-len"), p.LM.Info().MaxPositions)
	train, err := encodeExamples(c.String("data"), p, maxLen, c.Bool("truncate"), c.Bool("skip-bad-lines"))
	if err != nil {
		return err
	}
	var eval []training.Sequence
	if path := c.String("eval"); path != "" {
		if eval, err = encodeExamples(path, p, maxLen, c.Bool("truncate"), c.Bool("skip-bad-lines")); err != nil {
			return err
		}
	}
	var lm training.LM = training.Full{Model: p.LM}
	what, strategy := "every weight", "full"
	if !c.Bool("full") {
		set, err := lora.Attach(p.LM, lora.Config{
			R: c.Int("lora-r"), Alpha: c.Float64("lora-alpha"), Dropout: c.Float64("lora-dropout"), UseRSLoRA: c.Bool("rslora"),
			TargetModules: lora.Targets{Names: strings.Split(c.String("lora-targets"), ",")}, BaseModel: p.Dir,
		}, c.Uint64("seed"))
		if err != nil {
			return err
		}
		defer set.Close()
		lm = lora.Trainer{Model: p.LM, Set: set}
		what = set.Summary()
		cfg, err := json.Marshal(set.Config)
		if err != nil {
			return err
		}
		strategy = string(cfg)
	}
	cfg := training.FineTuneConfig{BatchSize: c.Int("batch"), Epochs: c.Int("epochs"), PadID: p.Pad, TrainConfig: training.TrainConfig{
		Steps:       c.Int("steps"),
		GradAccum:   c.Int("grad-accum"),
		Schedule:    training.Schedule{Peak: c.Float64("lr"), Warmup: c.Int("warmup"), MinRatio: c.Float64("min-lr-ratio"), Kind: c.String("schedule")},
		WeightDecay: c.Float64("weight-decay"), GradClip: c.Float64("grad-clip"), Seed: c.Uint64("seed"),
		EvalEvery: c.Int("eval-every"), Patience: c.Int("patience"), CheckpointEvery: c.Int("checkpoint-every"),
		OutDir: c.String("out"), Resume: c.Bool("resume"), Workers: c.Int("workers"),
		Identity: map[string]string{"model": p.Dir, "strategy": strategy, "max_len": fmt.Sprint(maxLen), "metric": c.String("metric")},
	}}
	if metric := c.String("metric"); metric != "" {
		if len(eval) == 0 {
			return fmt.Errorf("--metric needs --eval examples")
		}
		prompts, targets, refs := promptsAndTargets(eval, p)
		t, err := metricTask(c, metric, targets)
		if err != nil {
			return err
		}
		cfg.StopOn = metric
		cfg.Metrics = func() (map[string]float64, error) {
			outs, err := t.Predict(context.Background(), p.LM, p.Tokenizer, prompts, task.EvalOptions{Batch: c.Int("batch"), MaxNewTokens: 64, EOS: p.EOS, PadID: p.Pad, MultiLine: true})
			if err != nil {
				return nil, err
			}
			res, err := t.Score(outs, refs(t))
			if err != nil {
				return nil, err
			}
			return map[string]float64{metric: res.Value}, nil
		}
	}
	if a := c.String("autocast"); a != "" {
		if cfg.Autocast, err = torch.ParseDType(a); err != nil {
			return err
		}
	}
	if !c.Bool("resume") { // a resumed run keeps the settings it was started with
		if err := writeResolvedConfig(c, cfg.OutDir); err != nil {
			return err
		}
	}
	info := p.LM.Info()
	fmt.Fprintf(os.Stderr, "pioneer train: %s (%s, %s parameters) on %s, libtorch %s\n", p.Name, info.Architecture, format.Commas(info.Params), p.LM.Device(), torch.Version())
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
		if err := model.CopyCompanionFiles(p.Dir, cfg.OutDir); err != nil {
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
		fmt.Printf("  adapter        %s (PEFT format); use: pioneer eval --model %s --adapter %s --data test.jsonl\n", cfg.OutDir, p.Name, cfg.OutDir)
	}
	return nil
}

// metricTask is the task whose metric --metric names, over the completions of training
// records: accuracy over the --label set (answers constrained to it, each label written
// as the target completions write labels), entity F1 over the --entity-type set, or
// exact match / ROUGE-L of free completions.
func metricTask(c *cli.Context, metric string, targets []string) (*task.Task, error) {
	switch metric {
	case "accuracy":
		if len(c.StringSlice("label")) == 0 {
			return nil, fmt.Errorf("--metric accuracy needs the label set (--label, repeated)")
		}
		t, err := task.New("--label", task.Classification, c.StringSlice("label"), nil, metric)
		if err != nil {
			return nil, err
		}
		t.Output = labelOutput(targets, t.Labels)
		return t, nil
	case "entity_f1":
		if len(c.StringSlice("entity-type")) == 0 {
			return nil, fmt.Errorf("--metric entity_f1 needs the entity types (--entity-type, repeated)")
		}
		return task.New("--entity-type", task.Extraction, nil, c.StringSlice("entity-type"), metric)
	case "exact_match", "rouge_l":
		return task.New("completions", task.Generation, nil, nil, metric)
	}
	return nil, fmt.Errorf("unknown --metric %q (exact_match, rouge_l, accuracy or entity_f1)", metric)
}

// promptsAndTargets splits tokenized records into their prompts and, for a task, the
// references its Score reads: the target completion (without the end token) as the
// output, the label it names, or the entities it lists. Records without a prompt ({"text"}
// ones) are left out.
func promptsAndTargets(seqs []training.Sequence, p *model.Pretrained) ([][]int, []string, func(*task.Task) []task.Example) {
	var prompts [][]int
	var targets []string
	for _, s := range seqs {
		k := 0
		for k < len(s.Labels) && s.Labels[k] == -100 {
			k++
		}
		if k == 0 {
			continue
		}
		target := s.IDs[k:]
		if n := len(target); n > 0 && slices.Contains(p.EOS, target[n-1]) {
			target = target[:n-1]
		}
		prompts = append(prompts, s.IDs[:k])
		targets = append(targets, p.Tokenizer.Decode(target, true))
	}
	return prompts, targets, func(t *task.Task) []task.Example {
		refs := make([]task.Example, len(targets))
		for i, target := range targets {
			ref, why := t.ReadAnswer(target)
			if why != "" && t.Constrained() { // a target that names a label up to spacing and case
				if l, ok := t.LabelLike(target); ok {
					ref.Label = l
				}
			}
			ref.ID, ref.Output = fmt.Sprint(i+1), target
			refs[i] = ref
		}
		return refs
	}
}

// labelOutput is how the target completions write a label, as a task's output template:
// the text around the label that every completion naming one shares (" {label}" for the
// completions " time" and " timezone", whichever way --label spells the labels), so that
// the constrained answers score each label as training taught it. Completions that name
// no label are passed over; "{label}", the label alone, when nothing is shared.
func labelOutput(targets, labels []string) string {
	type around struct{ before, after string }
	common := map[around]bool(nil) // the framings every completion so far allows
	for _, target := range targets {
		here := map[around]bool{}
		for _, l := range labels {
			for _, spelled := range []string{l, strings.TrimSpace(l)} {
				if i := strings.Index(target, spelled); spelled != "" && i >= 0 {
					here[around{target[:i], target[i+len(spelled):]}] = true
				}
			}
		}
		if len(here) == 0 {
			continue
		}
		if common == nil {
			common = here
			continue
		}
		for a := range common {
			if !here[a] {
				delete(common, a)
			}
		}
	}
	best, found := around{}, false
	for a := range common { // the tightest framing: "time" in " timezone" frames as " {label}zone"
		if !found || len(a.before)+len(a.after) < len(best.before)+len(best.after) ||
			len(a.before)+len(a.after) == len(best.before)+len(best.after) && a.before+"|"+a.after < best.before+"|"+best.after {
			best, found = a, true
		}
	}
	return best.before + "{label}" + best.after
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
	return fsutil.WriteFileAtomic(filepath.Join(out, "config.yaml"), b)
}
