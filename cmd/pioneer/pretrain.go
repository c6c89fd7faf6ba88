package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/format"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/model/llama"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

func pretrainCommand() *cli.Command {
	return &cli.Command{
		Name:  "pretrain",
		Usage: "train a Llama-style model from scratch on a text file",
		Description: `Trains a decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU) on next-token
prediction. Without --data it uses the embedded Tiny Shakespeare corpus. Without
--tokenizer the vocabulary is the 256 bytes; with it, the text is encoded by that
Hugging Face tokenizer.json and the tokenizer files beside it are copied into the
model folder. The held-out text is --heldout-data, or else the last --heldout
fraction of the text. The run folder gets metrics.jsonl, checkpoints/ (resumable with
--resume), best/ (the weights with the lowest held-out loss) and the final model as a
Hugging Face folder (config.json, model.safetensors).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "UTF-8 text file to train on (default: embedded Tiny Shakespeare)"},
			&cli.StringFlag{Name: "heldout-data", Usage: "UTF-8 text file for the held-out evaluation (default: the end of --data)"},
			&cli.StringFlag{Name: "tokenizer", Usage: "Hugging Face tokenizer.json to encode the text with (default: bytes)"},
			&cli.StringFlag{Name: "out", Value: "runs/pretrain", Usage: "run folder"},
			&cli.IntFlag{Name: "steps", Value: 300, Usage: "optimizer steps"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "sequences per step"},
			&cli.IntFlag{Name: "seq", Value: 128, Usage: "tokens per sequence (also the model's max_position_embeddings)"},
			&cli.Float64Flag{Name: "lr", Value: 3e-3, Usage: "peak learning rate"},
			&cli.IntFlag{Name: "warmup", Value: 30, Usage: "linear warmup steps"},
			&cli.Float64Flag{Name: "min-lr-ratio", Value: 0.1, Usage: "final learning rate as a fraction of the peak (cosine decay)"},
			&cli.Float64Flag{Name: "weight-decay", Value: 0.01, Usage: "AdamW decoupled weight decay"},
			&cli.Float64Flag{Name: "grad-clip", Value: 1, Usage: "global gradient-norm limit (0: off)"},
			&cli.IntFlag{Name: "hidden", Value: 128, Usage: "hidden size"},
			&cli.IntFlag{Name: "layers", Value: 4, Usage: "decoder layers"},
			&cli.IntFlag{Name: "heads", Value: 4, Usage: "attention heads"},
			&cli.IntFlag{Name: "kv-heads", Value: 2, Usage: "key/value heads (grouped-query attention)"},
			&cli.IntFlag{Name: "intermediate", Value: 384, Usage: "MLP size"},
			&cli.Float64Flag{Name: "heldout", Value: 0.1, Usage: "fraction of the text held out for evaluation"},
			&cli.IntFlag{Name: "eval-every", Value: 50, Usage: "steps between held-out evaluations"},
			&cli.IntFlag{Name: "eval-tokens", Value: 65536, Usage: "held-out tokens per evaluation (at most the held-out text)"},
			&cli.IntFlag{Name: "checkpoint-every", Value: 100, Usage: "steps between checkpoints"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed for initialisation and batch sampling"},
			deviceFlag(),
			&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "parameter dtype: float32 or bfloat16"},
			threadsFlag(),
			&cli.IntFlag{Name: "workers", Usage: "CPU: threads that share out each batch's rows, each running single-threaded kernels (a resume must use the same); 0: one per libtorch thread; 1: none"},
			&cli.BoolFlag{Name: "resume", Usage: "continue from the run folder's latest checkpoint"},
			&cli.IntFlag{Name: "sample", Value: 300, Usage: "tokens to sample from the trained model at the end (0: none)"},
			&cli.StringFlag{Name: "prompt", Value: "ROMEO:\n", Usage: "text the sample continues"},
			&cli.Float64Flag{Name: "temperature", Value: 0.8, Usage: "sampling temperature (0: greedy)"},
		},
		Action: runPretrain,
	}
}

func runPretrain(c *cli.Context) error {
	err := checkInts(c, intRange{"steps", 1, maxSteps}, intRange{"batch", 1, maxBatch}, intRange{"seq", 2, maxSeqLen},
		intRange{"warmup", 0, maxSteps}, intRange{"hidden", 1, 1 << 16}, intRange{"layers", 1, 1024}, intRange{"heads", 1, 1024},
		intRange{"kv-heads", 1, 1024}, intRange{"intermediate", 1, 1 << 18}, intRange{"eval-every", 1, maxSteps},
		intRange{"eval-tokens", 1, 1 << 40}, intRange{"checkpoint-every", 1, maxSteps}, intRange{"workers", 0, training.MaxWorkers},
		intRange{"sample", 0, maxNewTokens})
	if err != nil {
		return err
	}
	if err := checkFloats(c, floatRange{"lr", 0, 1, true}, floatRange{"min-lr-ratio", 0, 1, false}, floatRange{"weight-decay", 0, 10, false},
		floatRange{"grad-clip", 0, 1e6, false}, floatRange{"temperature", 0, 100, false}); err != nil {
		return err
	}
	if err := checkResume(c); err != nil {
		return err
	}
	dev, err := device(c)
	if err != nil {
		return err
	}
	dtype, err := torch.ParseDType(c.String("dtype"))
	if err != nil {
		return err
	}
	text, source := data.TinyShakespeare, "embedded Tiny Shakespeare"
	if p := c.String("data"); p != "" {
		if text, err = os.ReadFile(p); err != nil {
			return err
		}
		source = p
	}
	frac := c.Float64("heldout")
	if frac < 0 || frac >= 1 {
		return fmt.Errorf("--heldout must be in [0, 1), got %v", frac)
	}
	vocab, err := newVocabulary(c.String("tokenizer"))
	if err != nil {
		return err
	}
	defer vocab.close()
	tokens, err := vocab.encode(text)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	var train, heldout []int32
	if p := c.String("heldout-data"); p != "" {
		held, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if heldout, err = vocab.encode(held); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		train = tokens
	} else {
		split := len(tokens) - int(float64(len(tokens))*frac)
		train, heldout = tokens[:split], tokens[split:]
	}
	if len(train) <= c.Int("seq") {
		return fmt.Errorf("%s: %d training tokens, fewer than one sequence of --seq %d", source, len(train), c.Int("seq"))
	}

	cfg := llama.Config{
		VocabSize: vocab.size, HiddenSize: c.Int("hidden"), IntermediateSize: c.Int("intermediate"),
		NumHiddenLayers: c.Int("layers"), NumAttentionHeads: c.Int("heads"), NumKeyValueHeads: c.Int("kv-heads"),
		MaxPositionEmbeddings: c.Int("seq"), RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: true,
	}
	if vocab.bos >= 0 {
		cfg.BosTokenID = &vocab.bos
	}
	if vocab.eos >= 0 {
		cfg.EosTokenID = &vocab.eos
	}
	model, err := llama.New(cfg, dev, dtype, c.Uint64("seed"))
	if err != nil {
		return err
	}
	defer model.Close()

	pc := training.PretrainConfig{BatchSize: c.Int("batch"), SeqLen: c.Int("seq"), TrainConfig: training.TrainConfig{
		Steps:       c.Int("steps"),
		Schedule:    training.Schedule{Peak: c.Float64("lr"), Warmup: c.Int("warmup"), MinRatio: c.Float64("min-lr-ratio")},
		WeightDecay: c.Float64("weight-decay"), GradClip: c.Float64("grad-clip"), Seed: c.Uint64("seed"),
		EvalEvery: c.Int("eval-every"), CheckpointEvery: c.Int("checkpoint-every"),
		OutDir: c.String("out"), Resume: c.Bool("resume"), Workers: c.Int("workers"),
	}, EvalTokens: c.Int("eval-tokens")}
	fmt.Fprintf(os.Stderr, "pioneer pretrain: libtorch %s on %s (%s), %d threads\n", torch.Version(), dev, dtype, torch.NumThreads())
	fmt.Fprintf(os.Stderr, "  data     %s: %s train / %s held-out tokens (%s)\n", source, format.Commas(int64(len(train))), format.Commas(int64(len(heldout))), vocab.name)
	fmt.Fprintf(os.Stderr, "  model    llama, %d layers, hidden %d, heads %d/%d, mlp %d, vocab %d: %s parameters\n",
		cfg.NumHiddenLayers, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.NumKeyValueHeads, cfg.IntermediateSize, cfg.VocabSize, format.Commas(model.Config.ParamCount()))
	fmt.Fprintf(os.Stderr, "  training %d steps x %d x %d tokens, AdamW lr %g (warmup %d, cosine to %g), wd %g, clip %g, seed %d\n",
		pc.Steps, pc.BatchSize, pc.SeqLen, pc.Schedule.Peak, pc.Schedule.Warmup, pc.Schedule.Peak*pc.Schedule.MinRatio,
		pc.WeightDecay, pc.GradClip, pc.Seed)
	fmt.Fprintf(os.Stderr, "  run      %s\n", pc.OutDir)

	res, err := runWithProgress(pc.OutDir, func(ctx context.Context, report func(training.Progress)) (*training.TrainResult, error) {
		return training.Pretrain(ctx, training.Full{Model: model}, train, heldout, pc, report)
	})
	if err != nil {
		return err
	}
	if err := vocab.install(pc.OutDir); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(pc.OutDir, "best", "config.json")); err == nil {
		if err := vocab.install(filepath.Join(pc.OutDir, "best")); err != nil {
			return err
		}
	}
	unit := "token"
	if vocab.tok == nil {
		unit = "byte"
	}
	fmt.Printf("\npretraining done in %s (%s tokens, %.0f tokens/s)\n", res.Wall.Round(time.Second), format.Commas(res.Tokens), res.TokensPerSec)
	fmt.Printf("  training loss  %.3f -> %.3f (nats per %s; uniform guessing is %.3f)\n", res.FirstLoss, res.FinalLoss, unit, math.Log(float64(vocab.size)))
	fmt.Printf("  held-out loss  %.3f, perplexity %.2f per %s (%.2f bits per %s)\n", res.EvalLoss, res.Perplexity, unit, res.EvalLoss/math.Ln2, unit)
	fmt.Printf("  model          %s (config.json + model.safetensors, Hugging Face layout)\n", pc.OutDir)
	fmt.Printf("  curve          %s (data: metrics.jsonl)\n", filepath.Join(pc.OutDir, "curve.png"))
	if n := c.Int("sample"); n > 0 {
		prompt := c.String("prompt")
		if prompt == "" {
			prompt = "\n"
		}
		ids, err := vocab.encode([]byte(prompt))
		if err != nil {
			return fmt.Errorf("--prompt: %w", err)
		}
		out, err := infer.Sample(model, ids, n, pc.SeqLen, c.Float64("temperature"), pc.Seed)
		if err != nil {
			return err
		}
		fmt.Printf("\nsample (temperature %g):\n%s%s\n", c.Float64("temperature"), prompt, vocab.decode(out))
	}
	return nil
}

// vocabulary is pretrain's text <-> ids mapping: the 256 bytes, or a tokenizer.json.
type vocabulary struct {
	tok      *tokenizer.Tokenizer
	dir      string // the tokenizer's folder (its other files are copied with it)
	name     string
	size     int
	bos, eos int
}

func newVocabulary(path string) (*vocabulary, error) {
	if path == "" {
		return &vocabulary{name: "bytes", size: 256, bos: -1, eos: -1}, nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "tokenizer.json")
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		return nil, err
	}
	v := &vocabulary{tok: tok, dir: filepath.Dir(path), name: path, size: tok.VocabSize(), bos: -1, eos: -1}
	// The end-of-text token separates documents; tokenizer_config.json names it.
	if b, err := os.ReadFile(filepath.Join(v.dir, "tokenizer_config.json")); err == nil {
		var tc struct {
			Bos any `json:"bos_token"`
			Eos any `json:"eos_token"`
		}
		if err := json.Unmarshal(b, &tc); err != nil {
			tok.Close()
			return nil, fmt.Errorf("%s: %w", filepath.Join(v.dir, "tokenizer_config.json"), err)
		}
		v.bos, v.eos = v.single(tc.Bos), v.single(tc.Eos)
	}
	return v, nil
}

// single is the id of a special token written as a string (or {"content": ...}); -1 when
// absent or not one token.
func (v *vocabulary) single(tokenField any) int {
	var text string
	switch t := tokenField.(type) {
	case string:
		text = t
	case map[string]any:
		text, _ = t["content"].(string)
	}
	if text == "" {
		return -1
	}
	if ids, err := v.tok.Encode(text, false); err == nil && len(ids) == 1 {
		return ids[0]
	}
	return -1
}

func (v *vocabulary) encode(text []byte) ([]int32, error) {
	if v.tok == nil {
		out := make([]int32, len(text))
		for i, b := range text {
			out[i] = int32(b)
		}
		return out, nil
	}
	ids, err := v.tok.Encode(string(text), false)
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out, nil
}

func (v *vocabulary) decode(ids []int32) string {
	if v.tok == nil {
		b := make([]byte, len(ids))
		for i, t := range ids {
			b[i] = byte(t)
		}
		return strings.ToValidUTF8(string(b), "?")
	}
	out := make([]int, len(ids))
	for i, t := range ids {
		out[i] = int(t)
	}
	return v.tok.Decode(out, false)
}

// install copies the tokenizer's files into a model folder and writes its
// generation_config.json.
func (v *vocabulary) install(dir string) error {
	if v.tok == nil {
		return nil
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		b, err := os.ReadFile(filepath.Join(v.dir, f))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && f != "tokenizer.json" {
				continue
			}
			return err
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, f), b); err != nil {
			return err
		}
	}
	gen := map[string]any{"_from_model_config": true}
	if v.bos >= 0 {
		gen["bos_token_id"] = v.bos
	}
	if v.eos >= 0 {
		gen["eos_token_id"] = v.eos
		gen["pad_token_id"] = v.eos
	}
	b, err := json.MarshalIndent(gen, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, "generation_config.json"), append(b, '\n'))
}

func (v *vocabulary) close() {
	if v.tok != nil {
		v.tok.Close()
	}
}
