package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/gguf"
	"github.com/urfave/cli/v2"
)

var exportTypes = func() string {
	var names []string
	for _, t := range gguf.ExportTypes() {
		names = append(names, strings.ToLower(t.String()))
	}
	return strings.Join(names, ", ")
}()

// exportCommand writes a model (an adapter merged in, or not) as a Hugging Face folder or
// a GGUF file, or an adapter alone as a GGUF adapter.
func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "merge a LoRA adapter into its base model (or convert a model) and write a Hugging Face folder or a GGUF file; or write an adapter as a GGUF adapter",
		Description: "--format hf (default) writes a Hugging Face folder in --dtype. --format gguf writes one GGUF file\n" +
			"(llama.cpp, ollama: FROM ./model.gguf) with its matrices as --type f32, f16, bf16, q8_0, q5_1,\n" +
			"q5_0, q4_1, q4_0 or q4_k (each block as llama.cpp's reference quantizer encodes it; with the 4- and 5-bit types\n" +
			"the output head is q8_0, and q4_k rows that are not whole 256-value blocks are q5_0), the\n" +
			"tokenizer and chat template in its metadata. --format gguf-lora writes --adapter alone as a GGUF\n" +
			"LoRA adapter (llama.cpp --lora, ollama ADAPTER) for --model.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: modelUsage},
			&cli.StringFlag{Name: "adapter", Usage: "PEFT adapter folder to merge (none: the model is written as it is)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "folder (hf) or file (gguf, gguf-lora) to write"},
			&cli.StringFlag{Name: "format", Value: "hf", Usage: "hf, gguf or gguf-lora"},
			&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "hf: dtype of the written weights"},
			&cli.StringFlag{Name: "type", Value: "f16", Usage: "gguf: tensor type of the matrices: " + exportTypes},
		},
		Action: func(c *cli.Context) error {
			format := c.String("format")
			var qtype gguf.Type
			switch format {
			case "hf", "gguf-lora":
			case "gguf":
				var err error
				if qtype, err = gguf.ParseType(c.String("type")); err != nil || !slices.Contains(gguf.ExportTypes(), qtype) {
					return fmt.Errorf("--type %q: want %s", c.String("type"), exportTypes)
				}
			default:
				return fmt.Errorf("--format %q: want hf, gguf or gguf-lora", format)
			}
			dtype := torch.Float32
			if format == "hf" {
				var err error
				if dtype, err = torch.ParseDType(c.String("dtype")); err != nil {
					return err
				}
			}
			dir, err := model.Resolve(c.String("model"))
			if err != nil {
				return err
			}
			m, err := model.Load(dir, torch.CPU, dtype)
			if err != nil {
				return err
			}
			defer m.Close()
			out := c.String("out")
			var set *lora.Set
			if a := c.String("adapter"); a != "" {
				if set, err = lora.Load(a, m); err != nil {
					return err
				}
				defer set.Close()
			}
			if format == "gguf-lora" {
				if set == nil {
					return fmt.Errorf("--format gguf-lora needs --adapter")
				}
				if err := set.ExportGGUF(dir, out); err != nil {
					return err
				}
				fmt.Printf("wrote %d adapted projections of %s as the GGUF adapter %s\n", len(set.Adapters), c.String("adapter"), out)
				return nil
			}
			merged := 0
			if set != nil {
				if err := set.Merge(); err != nil {
					return err
				}
				merged = len(set.Adapters)
			}
			what := fmt.Sprintf("%s (%s)", c.String("model"), dtype)
			switch format {
			case "gguf":
				if err := model.ExportGGUF(m, dir, out, qtype); err != nil {
					return err
				}
				what = fmt.Sprintf("%s as GGUF (%s matrices)", c.String("model"), qtype)
			default:
				if err := m.Save(out); err != nil {
					return err
				}
				if err := model.CopyCompanionFiles(dir, out); err != nil {
					return err
				}
			}
			if merged > 0 {
				fmt.Printf("merged %d adapted projections into %s: %s\n", merged, what, out)
			} else {
				fmt.Printf("wrote %s: %s\n", what, out)
			}
			return nil
		},
	}
}
