package main

import (
	"fmt"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/urfave/cli/v2"
)

// exportCommand merges an adapter into its base model and writes a model folder.
func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "merge a LoRA adapter into its base model (or convert a model's dtype) and write a Hugging Face model folder",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: modelUsage},
			&cli.StringFlag{Name: "adapter", Usage: "PEFT adapter folder to merge (none: the model is written as it is, in --dtype)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "folder for the merged model"},
			&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "dtype of the written weights"},
		},
		Action: func(c *cli.Context) error {
			dtype, err := torch.ParseDType(c.String("dtype"))
			if err != nil {
				return err
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
