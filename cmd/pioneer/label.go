package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/trafficlog"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// labelCommand turns a served deployment's logs and feedback into production mode's
// inputs: the failure log and the traffic it got right (R).
func labelCommand() *cli.Command {
	return &cli.Command{
		Name:  "label",
		Usage: "turn pioneer serve's traffic and feedback into a failure log and traffic for pioneer adapt",
		Description: `Reads --log-dir's traffic.jsonl (and rotated traffic-N.jsonl) and feedback.jsonl. Answers
marked wrong become failure-log lines {"id", "input", "output", "expected"}; answers
marked right become task examples (the traffic R). The input is recovered from the
task's prompt template; requests whose prompt is not the task's template filled with an
input are counted and left out.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-dir", Required: true, Usage: "pioneer serve's --log-dir"},
			&cli.StringFlag{Name: "task", Required: true, Usage: "the deployment's task (bundled name or task.yaml)"},
			&cli.StringFlag{Name: "failures", Required: true, Usage: "failure log to write (pioneer adapt --failures)"},
			&cli.StringFlag{Name: "traffic", Required: true, Usage: "traffic to write (pioneer adapt --traffic)"},
			&cli.StringFlag{Name: "version", Usage: "only the answers of this deployment version (pioneer serve --deployment records it)"},
		},
		Action: func(c *cli.Context) error {
			t, err := task.Load(c.String("task"))
			if err != nil {
				return err
			}
			wrong, right, unknown, err := trafficlog.Label(c.String("log-dir"), c.String("version"))
			if err != nil {
				return err
			}
			failures, traffic, sp, err := trafficlog.ForTask(t, wrong, right)
			if err != nil {
				return err
			}
			if err := fsutil.WriteFileAtomic(c.String("failures"), failures); err != nil {
				return err
			}
			if err := fsutil.WriteFileAtomic(c.String("traffic"), traffic); err != nil {
				return err
			}
			fmt.Printf("%d failures -> %s, %d right answers -> %s; left out: %d not this task's prompt, %d right answers not in its format, %d verdicts on unknown ids\n",
				sp.Failures, c.String("failures"), sp.Traffic, c.String("traffic"), sp.NotTask, sp.NotFormat, unknown)
			return nil
		},
	}
}
