package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/pioneer-ai/pioneer/agent/production"
	"github.com/pioneer-ai/pioneer/bench/judge"
	"github.com/pioneer-ai/pioneer/engine/training"
)

// triageFigures runs the agent on the deployment's log up to its first curriculum (it
// is stopped when the first candidate starts training) and prints what triage and the
// curriculum did with the poisoned lines.
func triageFigures(cfg production.Config, planted map[string]bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Progress = func(training.Progress) { cancel() }
	_, err := production.Run(ctx, cfg)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	a, err := judge.Admitted(cfg.Out, planted)
	if err != nil {
		return err
	}
	fmt.Printf("poison planted %d: %d passed triage, %d reached the first curriculum; triage turned away %d of %d genuine failures\n",
		len(planted), a.PassedTriage, a.Admitted, a.FalseAlarms, a.Genuine)
	return nil
}
