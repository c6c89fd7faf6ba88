// Command pioneer adapts small language models to tasks and keeps them improving.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

func main() {
	if err := torch.SpinWorkers(); err != nil {
		fmt.Fprintln(os.Stderr, "pioneer: warning:", err)
	}
	if err := newApp().Run(descriptionLast(os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "pioneer:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "pioneer",
		Usage: "adapt small language models to real tasks, on libtorch, from Go",
		// A --prompt or --stop value keeps its commas.
		DisableSliceFlagSeparator: true,
		Commands: []*cli.Command{
			tuneCommand(),
			planCommand(),
			startCommand(),
			adaptCommand(),
			approveCommand(),
			rollbackCommand(),
			pretrainCommand(),
			trainCommand(),
			evalCommand(),
			exportCommand(),
			generateCommand(),
			serveCommand(),
			labelCommand(),
			infoCommand(),
			{
				Name:  "version",
				Usage: "print the libtorch version and the devices Pioneer can use",
				Action: func(c *cli.Context) error {
					fmt.Printf("pioneer (libtorch %s)\ncpu: %d threads\n%s\n", torch.Version(), torch.NumThreads(), torch.CUDAStatus())
					return nil
				},
			},
		},
	}
}

// descriptionLast moves the description of `pioneer plan|start "DESCRIPTION" --flags ...` after
// the flags, where the command-line parser looks for arguments (it stops reading flags
// at the first argument).
func descriptionLast(args []string) []string {
	if len(args) < 4 || args[1] != "plan" && args[1] != "start" || strings.HasPrefix(args[2], "-") {
		return args
	}
	out := append(append([]string{}, args[:2]...), args[3:]...)
	return append(out, args[2])
}
