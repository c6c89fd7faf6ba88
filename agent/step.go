package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pioneer-ai/pioneer/internal/settings"
)

// Format is the version of a run folder's layout and lineage records that this Pioneer
// writes; a run started by another format is refused rather than misread.
const Format = 1

// Settings are what decides a run's result, as it was started: each setting's value as
// text (a file's fingerprint for its content). A rerun must have the same.
type Settings map[string]string

// startRecord is the lineage record of a run's start.
type startRecord struct {
	Format   int      `json:"format"`
	Settings Settings `json:"settings"`
	// Info is what reports show of the run; it does not decide whether a rerun resumes.
	Info any `json:"info,omitempty"`
}

// ErrOtherRun is returned (wrapped) when a run folder holds a run started with other
// settings.
var ErrOtherRun = errors.New("the run folder holds another run")

// Start records a run's settings in its lineage the first time; when the lineage already
// holds a start (a rerun of a killed or finished command), the settings must be the same
// or it is refused, naming the first that differs.
func (r *Run) Start(s Settings, info any) error {
	var prev startRecord
	ok, err := r.Lineage.Get("start", &prev)
	if err != nil {
		return err
	}
	if !ok {
		return r.Lineage.Append("start", "start", startRecord{Format: Format, Settings: s, Info: info})
	}
	if prev.Format != Format {
		return fmt.Errorf("%w: %s was started by lineage format %d, this Pioneer writes format %d; use another run folder",
			ErrOtherRun, r.Dir, prev.Format, Format)
	}
	if why := differs(prev.Settings, s); why != "" {
		return fmt.Errorf("%w: %s was started with %s; give the same settings to resume it, or use another run folder", ErrOtherRun, r.Dir, why)
	}
	return nil
}

// differs names the first setting (in sorted order) that differs, "" if none does.
func differs(was, now Settings) string {
	d, found := settings.FirstDifference(was, now)
	switch {
	case !found:
		return ""
	case !d.InWas:
		return fmt.Sprintf("no %s (now %s=%q)", d.Key, d.Key, d.Now)
	case !d.InNow:
		return fmt.Sprintf("%s=%q (now none)", d.Key, d.Was)
	}
	return fmt.Sprintf("%s=%q, not %q", d.Key, d.Was, d.Now)
}

// Step runs one stage of a run: when the lineage holds key, the stage is not run again
// and its recorded result is returned; otherwise f runs and its result is recorded under
// key (a step of kind step). A stop request (ctx) is honoured before f starts.
func Step[T any](ctx context.Context, r *Run, key, step string, f func() (T, error)) (T, error) {
	var out T
	ok, err := r.Lineage.Get(key, &out)
	if err != nil || ok {
		return out, err
	}
	if err := Stopped(ctx); err != nil {
		return out, err
	}
	if out, err = f(); err != nil {
		return out, err
	}
	return out, r.Lineage.Append(key, step, out)
}

// ErrStopped is returned (wrapped) when a run stops at a stop request: its state is as a
// kill between two steps would leave it, and running the same command again resumes it.
var ErrStopped = errors.New("stopped on request")

// Stopped is nil while ctx runs, and otherwise an error wrapping ErrStopped and the
// context's error.
func Stopped(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w (%w)", ErrStopped, err)
	}
	return nil
}

// Budget bounds a search: wall time since Start and training tokens (0: no bound). It is
// checked before a step starts, so the last step may overrun it.
type Budget struct {
	Wall   time.Duration
	Tokens int64
	start  time.Time
	used   int64
}

// NewBudget starts a budget's clock.
func NewBudget(wall time.Duration, tokens int64) *Budget {
	return &Budget{Wall: wall, Tokens: tokens, start: time.Now()}
}

// Use counts training tokens spent.
func (b *Budget) Use(tokens int64) { b.used += tokens }

// WallLeft is the wall time left, and whether there is a wall-time bound at all.
func (b *Budget) WallLeft() (time.Duration, bool) {
	if b.Wall <= 0 {
		return 0, false
	}
	return b.Wall - time.Since(b.start), true
}

// Spent says which budget is used up ("" if none).
func (b *Budget) Spent() string {
	switch {
	case b.Wall > 0 && time.Since(b.start) > b.Wall:
		return fmt.Sprintf("wall-time budget of %s spent", b.Wall)
	case b.Tokens > 0 && b.used >= b.Tokens:
		return fmt.Sprintf("token budget of %d spent (%d training tokens)", b.Tokens, b.used)
	}
	return ""
}
