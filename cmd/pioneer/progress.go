package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/format"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/internal/plot"
)

// runWithProgress runs a training loop with a progress bar, turns Ctrl-C and SIGTERM into
// a checkpoint and a resume hint, and writes result.json to the run folder.
func runWithProgress(out string, train func(context.Context, func(training.Progress)) (*training.TrainResult, error)) (*training.TrainResult, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bar := newProgressBar(os.Stderr)
	res, err := train(ctx, bar.update)
	bar.finish()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted; checkpoint saved, continue with --resume --out %s", out)
		}
		return nil, err
	}
	if res.ResumedFrom >= res.Steps && res.Steps > 0 {
		fmt.Fprintf(os.Stderr, "%s had already finished (step %d of %d); its result.json stands\n", out, res.ResumedFrom, res.Steps)
		if _, err := os.Stat(filepath.Join(out, "result.json")); err == nil {
			return res, nil
		}
	}
	if err := plot.TrainingCurve(out); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	return res, fsutil.WriteFileAtomic(filepath.Join(out, "result.json"), append(b, '\n'))
}

// progressBar draws one updating line on a terminal, or a line every few percent
// otherwise (logs, CI).
type progressBar struct {
	f        *os.File
	tty      bool
	lastLine time.Time
	lastPct  int
	drawn    bool
}

func newProgressBar(f *os.File) *progressBar {
	st, err := f.Stat()
	return &progressBar{f: f, tty: err == nil && st.Mode()&os.ModeCharDevice != 0, lastPct: -1}
}

func (p *progressBar) update(pr training.Progress) {
	pct := 100 * pr.Step / pr.Steps
	const width = 24
	filled := width * pr.Step / pr.Steps
	line := fmt.Sprintf("[%s%s] %3d%% step %d/%d loss %.3f lr %.2e %s tok/s ETA %s",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), pct, pr.Step, pr.Steps, pr.Loss, pr.LR,
		format.Commas(int64(pr.TokensPerSec)), pr.ETA.Round(time.Second))
	if !math.IsNaN(pr.EvalLoss) {
		line += fmt.Sprintf(" | held-out %.3f", pr.EvalLoss)
	}
	if pr.Skipped {
		line += " | skipped (non-finite loss)"
	}
	if p.tty {
		fmt.Fprintf(p.f, "\r\033[K%s", line)
		p.drawn = true
		if !math.IsNaN(pr.EvalLoss) {
			fmt.Fprintln(p.f)
		}
		return
	}
	if pct/5 != p.lastPct/5 || !math.IsNaN(pr.EvalLoss) || time.Since(p.lastLine) > 30*time.Second || pr.Step == pr.Steps {
		fmt.Fprintln(p.f, line)
		p.lastPct, p.lastLine = pct, time.Now()
	}
}

func (p *progressBar) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.f)
	}
}
