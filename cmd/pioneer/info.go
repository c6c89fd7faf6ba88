package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pioneer-ai/pioneer/engine/torch/safetensors"
	"github.com/pioneer-ai/pioneer/internal/format"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/gguf"
	"github.com/pioneer-ai/pioneer/model/tokenizer"
	"github.com/urfave/cli/v2"
)

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "describe a model (Hugging Face folder or GGUF file) without loading its weights",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: modelUsage},
			&cli.IntFlag{Name: "context", Value: 2048, Usage: "tokens per sequence for the KV-cache estimate"},
		},
		Action: func(c *cli.Context) error {
			dir, err := model.Resolve(c.String("model"))
			if err != nil {
				return err
			}
			info, err := model.Inspect(dir)
			if err != nil {
				return err
			}
			files, err := model.WeightFiles(dir)
			if err != nil {
				return err
			}
			var stored int64
			dtypes := map[string]int64{}
			kind := "safetensors"
			for _, f := range files {
				if filepath.Ext(f) == ".gguf" {
					kind = "GGUF"
					n, types, err := ggufContents(f)
					if err != nil {
						return err
					}
					stored += n
					for t, k := range types {
						dtypes[t] += k
					}
					continue
				}
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
			fmt.Printf("model         %s\n", c.String("model"))
			if dir != c.String("model") {
				fmt.Printf("read from     %s\n", dir)
			}
			fmt.Printf("architecture  %s (model_type %s)\n", info.Architecture, info.ModelType)
			fmt.Printf("parameters    %s (config); %s stored in %d %s file(s), elements by type %v\n", format.Commas(info.Params), format.Commas(stored), len(files), kind, dtypes)
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

// ggufContents counts a GGUF file's stored elements, in all and by tensor type.
func ggufContents(path string) (int64, map[string]int64, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	n, byType := f.Elements()
	types := map[string]int64{}
	for t, k := range byType {
		types[t.String()] = k
	}
	return n, types, nil
}
