package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/serve"
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
		},
		Action: func(c *cli.Context) error {
			t, err := task.Load(c.String("task"))
			if err != nil {
				return err
			}
			wrong, right, unknown, err := serve.Label(c.String("log-dir"))
			if err != nil {
				return err
			}
			var failures, traffic []byte
			nFail, nRight, other, unread := 0, 0, 0, 0
			for _, l := range wrong {
				text, ok := t.TextOf(l.Input)
				if !ok {
					other++
					continue
				}
				line, err := json.Marshal(map[string]string{"id": l.ID, "input": text, "output": answerText(t, l.Output), "expected": l.Expected})
				if err != nil {
					return err
				}
				failures = append(append(failures, line...), '\n')
				nFail++
			}
			for _, l := range right {
				text, ok := t.TextOf(l.Input)
				if !ok {
					other++
					continue
				}
				ex := task.Example{ID: l.ID, Text: text}
				label, entities, ok := t.ParseOutput(l.Output)
				if !ok {
					unread++ // marked right, but not in the task's answer format
					continue
				}
				switch t.Type {
				case task.Classification:
					ex.Label = label
				case task.Extraction:
					ex.Entities = entities
				default:
					ex.Output = answerText(t, l.Output)
				}
				line, err := json.Marshal(ex)
				if err != nil {
					return err
				}
				traffic = append(append(traffic, line...), '\n')
				nRight++
			}
			if err := fsutil.WriteFileAtomic(c.String("failures"), failures); err != nil {
				return err
			}
			if err := fsutil.WriteFileAtomic(c.String("traffic"), traffic); err != nil {
				return err
			}
			fmt.Printf("%d failures -> %s, %d right answers -> %s; left out: %d not this task's prompt, %d right answers not in its format, %d verdicts on unknown ids\n",
				nFail, c.String("failures"), nRight, c.String("traffic"), other, unread, unknown)
			return nil
		},
	}
}

// answerField is the output template's field for a task type.
var answerField = map[task.Type]string{task.Classification: "{label}", task.Extraction: "{entities}", task.Generation: "{output}"}

// answerText is a completion with the task's output template taken off (" {label}":
// the leading space).
func answerText(t *task.Task, completion string) string {
	prefix, suffix, _ := strings.Cut(t.Output, answerField[t.Type])
	s := strings.TrimPrefix(completion, prefix)
	if suffix != "" {
		s, _, _ = strings.Cut(s, suffix)
	}
	return strings.TrimSpace(s)
}
