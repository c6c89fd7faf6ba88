package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/torch/safetensors"
	"github.com/pioneer-ai/pioneer/internal/format"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all" // every architecture
	"github.com/pioneer-ai/pioneer/model/chat"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
)

func modelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "model", Required: true, Usage: "Hugging Face model folder (config.json, *.safetensors, tokenizer.json), or a bundled model's name (pioneer-nano)"},
		&cli.StringFlag{Name: "device", Value: "auto", Usage: "cpu, cuda, cuda:N or auto"},
		&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "compute dtype: float32, bfloat16 or float16"},
		&cli.IntFlag{Name: "threads", Usage: "CPU threads for libtorch (0: libtorch's default)"},
	}
}

func generateCommand() *cli.Command {
	return &cli.Command{
		Name:  "generate",
		Usage: "continue prompts with a Hugging Face model (batched, KV cache)",
		Description: `Prompts come from --prompt (repeatable) or --input, a JSONL file whose lines are
{"prompt": "..."} or {"messages": [{"role": "user", "content": "..."}, ...]}. Messages,
and plain prompts under --chat, are rendered with the model's chat template
(tokenizer_config.json) with the generation prompt added. Results are JSON lines on
standard output (or --output): the prompt, the completion text, its tokens and why it
stopped. Generation stops at the model's end-of-sequence tokens
(generation_config.json), a --stop string or --max-new-tokens.`,
		Flags: append(modelFlags(),
			&cli.StringFlag{Name: "adapter", Usage: "PEFT adapter folder to apply (a pioneer train or tune result)"},
			&cli.StringSliceFlag{Name: "prompt", Usage: "a prompt (repeatable)"},
			&cli.StringFlag{Name: "input", Usage: `JSONL file with one {"prompt": "..."} per line`},
			&cli.StringFlag{Name: "output", Usage: "write JSONL here instead of standard output"},
			&cli.IntFlag{Name: "max-new-tokens", Value: 64, Usage: "tokens to generate at most per prompt"},
			&cli.Float64Flag{Name: "temperature", Value: 0, Usage: "0: greedy; > 0: sample"},
			&cli.IntFlag{Name: "top-k", Usage: "sample among the K most likely tokens (0: off)"},
			&cli.Float64Flag{Name: "top-p", Usage: "sample within probability mass P (0: off)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "sampling seed"},
			&cli.StringSliceFlag{Name: "stop", Usage: "stop string (repeatable)"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "prompts per batch"},
			&cli.BoolFlag{Name: "no-special-tokens", Usage: "do not add the tokenizer's special tokens (BOS) to plain prompts"},
			&cli.BoolFlag{Name: "chat", Usage: "treat each --prompt as a user message and apply the chat template"},
			&cli.StringFlag{Name: "system", Usage: "system message for --chat prompts"},
		),
		Action: runGenerate,
	}
}

// loaded is a model with its tokenizer and generation config.
type loaded struct {
	m   model.CausalLM
	tok *tokenizer.Tokenizer
	gen model.GenerationConfig
}

func (l *loaded) Close() {
	l.m.Close()
	if l.tok != nil {
		l.tok.Close()
	}
}

func openModel(c *cli.Context, needTokenizer bool) (*loaded, error) {
	if n := c.Int("threads"); n > 0 {
		torch.SetNumThreads(n)
	}
	dev, err := torch.ParseDevice(c.String("device"))
	if err != nil {
		return nil, err
	}
	dtype, err := torch.ParseDType(c.String("dtype"))
	if err != nil {
		return nil, err
	}
	dir, err := data.ResolveModel(c.String("model"))
	if err != nil {
		return nil, err
	}
	if err := c.Set("model", dir); err != nil { // later readers of --model see the folder
		return nil, err
	}
	l := &loaded{}
	if needTokenizer {
		if l.tok, err = tokenizer.Load(filepath.Join(dir, "tokenizer.json")); err != nil {
			return nil, err
		}
	}
	if l.m, err = model.Load(dir, dev, dtype); err != nil {
		if l.tok != nil {
			l.tok.Close()
		}
		return nil, err
	}
	if l.tok != nil && l.tok.VocabSize() > l.m.Info().VocabSize {
		err := fmt.Errorf("%s: tokenizer.json has %d tokens but the model's vocabulary is %d: they do not belong together",
			dir, l.tok.VocabSize(), l.m.Info().VocabSize)
		l.Close()
		return nil, err
	}
	if l.gen, err = model.ReadGenerationConfig(dir); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// request is one prompt: plain text, or a conversation for the chat template.
type request struct {
	Prompt   string         `json:"prompt,omitempty"`
	Messages []chat.Message `json:"messages,omitempty"`
}

func readPrompts(c *cli.Context) ([]request, error) {
	var reqs []request
	for _, p := range c.StringSlice("prompt") {
		r := request{Prompt: p}
		if c.Bool("chat") {
			if sys := c.String("system"); sys != "" {
				r.Messages = append(r.Messages, chat.Message{Role: "system", Content: sys})
			}
			r.Messages = append(r.Messages, chat.Message{Role: "user", Content: p})
		}
		reqs = append(reqs, r)
	}
	if p := c.String("input"); p != "" {
		err := jsonl.ReadFile(p, 0, func(l jsonl.Line) error {
			if l.TooLong {
				return fmt.Errorf("%s:%d: %s", p, l.N, l.TooLongReason(jsonl.DefaultMaxLine))
			}
			var rec struct {
				Prompt   *string        `json:"prompt"`
				Messages []chat.Message `json:"messages"`
			}
			if err := json.Unmarshal(l.Bytes, &rec); err != nil {
				return fmt.Errorf("%s:%d: %w", p, l.N, err)
			}
			switch {
			case len(rec.Messages) > 0:
				for i, m := range rec.Messages {
					if m.Role == "" {
						return fmt.Errorf("%s:%d: message %d has no role", p, l.N, i)
					}
				}
				reqs = append(reqs, request{Messages: rec.Messages})
			case rec.Prompt != nil:
				reqs = append(reqs, request{Prompt: *rec.Prompt})
			default:
				return fmt.Errorf(`%s:%d: neither "prompt" nor "messages"`, p, l.N)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("no prompts: give --prompt or --input")
	}
	return reqs, nil
}

// encode turns requests into token ids: conversations through the chat template (which
// writes its own special tokens), plain prompts with the tokenizer's special tokens unless
// told otherwise.
func encode(c *cli.Context, l *loaded, reqs []request) ([][]int, error) {
	var tpl *chat.Template
	out := make([][]int, len(reqs))
	for i, r := range reqs {
		if len(r.Messages) == 0 {
			ids, err := l.tok.Encode(r.Prompt, !c.Bool("no-special-tokens"))
			if err != nil {
				return nil, fmt.Errorf("prompt %d: %w", i+1, err)
			}
			out[i] = ids
			continue
		}
		if tpl == nil {
			var err error
			if tpl, err = chat.Load(filepath.Join(c.String("model"), "tokenizer_config.json")); err != nil {
				return nil, err
			}
		}
		text, err := tpl.Render(r.Messages, chat.Options{AddGenerationPrompt: true})
		if err != nil {
			return nil, fmt.Errorf("prompt %d: %w", i+1, err)
		}
		if out[i], err = l.tok.Encode(text, false); err != nil {
			return nil, fmt.Errorf("prompt %d: %w", i+1, err)
		}
	}
	return out, nil
}

func runGenerate(c *cli.Context) error {
	reqs, err := readPrompts(c)
	if err != nil {
		return err
	}
	batch := c.Int("batch")
	if batch <= 0 {
		return fmt.Errorf("--batch must be positive")
	}
	l, err := openModel(c, true)
	if err != nil {
		return err
	}
	defer l.Close()
	if a := c.String("adapter"); a != "" {
		set, err := lora.Load(a, l.m)
		if err != nil {
			return err
		}
		defer set.Close()
	}
	var w io.Writer = os.Stdout
	if p := c.String("output"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	pad := l.gen.PadTokenID
	if pad < 0 && len(l.gen.EosTokenIDs) > 0 {
		pad = l.gen.EosTokenIDs[0]
	}
	opts := infer.GenerateOptions{
		MaxNewTokens: c.Int("max-new-tokens"), Temperature: c.Float64("temperature"), TopK: c.Int("top-k"),
		TopP: c.Float64("top-p"), Seed: c.Uint64("seed"), StopTokens: l.gen.EosTokenIDs,
		StopStrings: c.StringSlice("stop"), PadID: max(pad, 0),
		Decode: func(ids []int) string { return l.tok.Decode(ids, true) },
	}
	all, err := encode(c, l, reqs)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	start, total := time.Now(), 0
	for i := 0; i < len(reqs); i += batch {
		chunk := reqs[i:min(i+batch, len(reqs))]
		out, err := infer.Generate(l.m, all[i:i+len(chunk)], opts)
		if err != nil {
			return err
		}
		for j, o := range out {
			total += len(o.Tokens)
			text := l.tok.Decode(o.Tokens, true)
			for _, ss := range opts.StopStrings { // cut at the stop string, as users expect
				if k := strings.Index(text, ss); ss != "" && k >= 0 {
					text = text[:k]
				}
			}
			rec := map[string]any{"completion": text, "tokens": o.Tokens, "stop_reason": o.Reason}
			if len(chunk[j].Messages) > 0 {
				rec["messages"] = chunk[j].Messages
			} else {
				rec["prompt"] = chunk[j].Prompt
			}
			if err := enc.Encode(rec); err != nil {
				return err
			}
		}
		fmt.Fprintf(os.Stderr, "generate: %d/%d prompts, %d tokens, %.1f tokens/s\n", min(i+batch, len(reqs)), len(reqs),
			total, float64(total)/time.Since(start).Seconds())
	}
	return nil
}

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "describe a Hugging Face model folder without loading its weights",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "model folder"},
			&cli.IntFlag{Name: "context", Value: 2048, Usage: "tokens per sequence for the KV-cache estimate"},
		},
		Action: func(c *cli.Context) error {
			dir := c.String("model")
			info, err := model.Inspect(dir)
			if err != nil {
				return err
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
			var stored int64
			dtypes := map[string]int64{}
			for _, f := range files {
				sf, err := safetensors.Open(f)
				if err != nil {
					return err
				}
				for _, ti := range sf.Header().Tensors {
					n := int64(1)
					for _, d := range ti.Shape {
						n *= d
					}
					stored += n
					dtypes[string(ti.DType)] += n
				}
				sf.Close()
			}
			fmt.Printf("model         %s\n", dir)
			fmt.Printf("architecture  %s (model_type %s)\n", info.Architecture, info.ModelType)
			fmt.Printf("parameters    %s (config); %s stored in %d safetensors file(s) %v\n", format.Commas(info.Params), format.Commas(stored), len(files), dtypes)
			fmt.Printf("shape         %d layers, hidden %d, heads %d (kv %d, head dim %d), vocabulary %d, %d positions\n",
				info.Layers, info.Hidden, info.Heads, info.KVHeads, info.HeadDim, info.VocabSize, info.MaxPositions)
			ctx := int64(c.Int("context"))
			kv := 2 * int64(info.Layers) * int64(info.KVHeads) * int64(info.HeadDim) // per token, elements
			for _, d := range []struct {
				name  string
				bytes int64
			}{{"float32", 4}, {"bfloat16", 2}} {
				fmt.Printf("memory %-8s weights %s, KV cache %s per sequence of %d tokens\n", d.name,
					mib(info.Params*d.bytes), mib(kv*ctx*d.bytes), ctx)
			}
			if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err == nil {
				tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
				if err != nil {
					return err
				}
				fmt.Printf("tokenizer     %d tokens\n", tok.VocabSize())
				tok.Close()
			}
			return nil
		},
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
