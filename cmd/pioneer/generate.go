package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all" // every architecture
	"github.com/pioneer-ai/pioneer/model/chat"
)

func modelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "model", Required: true, Usage: modelUsage},
		deviceFlag(),
		&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "compute dtype: float32, bfloat16 or float16"},
		threadsFlag(),
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
		Flags: append(modelFlags(), quantizedFlag,
			&cli.StringFlag{Name: "adapter", Usage: "PEFT adapter folder to apply (a pioneer train or tune result)"},
			&cli.StringSliceFlag{Name: "prompt", Usage: "a prompt (repeatable)"},
			&cli.StringFlag{Name: "input", Usage: `JSONL file with one {"prompt": "..."} per line`},
			&cli.StringFlag{Name: "output", Usage: "write JSONL here instead of standard output"},
			&cli.IntFlag{Name: "max-new-tokens", Value: 64, Usage: "tokens to generate at most per prompt"},
			&cli.Float64Flag{Name: "temperature", Value: 0, Usage: "0: greedy; > 0: sample"},
			&cli.IntFlag{Name: "top-k", Usage: "sample among the K most likely tokens (0: off)"},
			&cli.Float64Flag{Name: "top-p", Usage: "sample within probability mass P (0: off)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "sampling seed (request k of the input samples with seed+k, whatever --batch is)"},
			&cli.StringSliceFlag{Name: "stop", Usage: "stop string (repeatable)"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "prompts per batch"},
			&cli.BoolFlag{Name: "no-special-tokens", Usage: "do not add the tokenizer's special tokens (BOS) to plain prompts"},
			&cli.BoolFlag{Name: "chat", Usage: "treat each --prompt as a user message and apply the chat template"},
			&cli.StringFlag{Name: "system", Usage: "system message for --chat prompts"},
		),
		Action: runGenerate,
	}
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
func encode(c *cli.Context, p *model.Pretrained, reqs []request) ([][]int, error) {
	var tpl *chat.Template
	out := make([][]int, len(reqs))
	for i, r := range reqs {
		if len(r.Messages) == 0 {
			ids, err := p.Tokenizer.Encode(r.Prompt, !c.Bool("no-special-tokens"))
			if err != nil {
				return nil, fmt.Errorf("prompt %d: %w", i+1, err)
			}
			out[i] = ids
			continue
		}
		if tpl == nil {
			var err error
			if tpl, err = p.ChatTemplate(); err != nil {
				return nil, err
			}
		}
		text, err := tpl.Render(r.Messages, chat.Options{AddGenerationPrompt: true})
		if err != nil {
			return nil, fmt.Errorf("prompt %d: %w", i+1, err)
		}
		if out[i], err = p.Tokenizer.Encode(text, false); err != nil {
			return nil, fmt.Errorf("prompt %d: %w", i+1, err)
		}
	}
	return out, nil
}

func runGenerate(c *cli.Context) error {
	if err := checkInts(c, intRange{"batch", 1, maxBatch}, intRange{"max-new-tokens", 1, maxNewTokens}, intRange{"top-k", 0, 1 << 30}); err != nil {
		return err
	}
	if err := checkFloats(c, floatRange{"temperature", 0, 100, false}, floatRange{"top-p", 0, 1, false}); err != nil {
		return err
	}
	reqs, err := readPrompts(c)
	if err != nil {
		return err
	}
	batch := c.Int("batch")
	p, err := openModel(c)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := useQuantized(c, p); err != nil {
		return err
	}
	if a := c.String("adapter"); a != "" {
		set, err := lora.Load(a, p.LM)
		if err != nil {
			return err
		}
		defer set.Close()
	}
	var w io.Writer = os.Stdout
	if path := c.String("output"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	opts := infer.GenerateOptions{
		MaxNewTokens: c.Int("max-new-tokens"), Temperature: c.Float64("temperature"), TopK: c.Int("top-k"),
		TopP: c.Float64("top-p"), Seed: c.Uint64("seed"), StopTokens: p.EOS,
		StopStrings: c.StringSlice("stop"), PadID: p.Pad,
		Decode: func(ids []int) string { return p.Tokenizer.Decode(ids, true) },
	}
	all, err := encode(c, p, reqs)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	start, total := time.Now(), 0
	for i := 0; i < len(reqs); i += batch {
		chunk := reqs[i:min(i+batch, len(reqs))]
		opts.Seed = c.Uint64("seed") + uint64(i) // request k samples with seed+k, whatever the batch size
		out, err := infer.Generate(p.LM, all[i:i+len(chunk)], opts)
		if err != nil {
			return err
		}
		for j, o := range out {
			total += len(o.Tokens)
			text := p.Tokenizer.Decode(o.Tokens, true)
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
