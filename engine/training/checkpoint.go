package training

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/internal/settings"
)

// checkpointFormat is the version of a checkpoint's state.json. Version 1 has no
// "format" field and no settings; such checkpoints are refused (their settings cannot be
// checked).
const checkpointFormat = 2

// trainState is a checkpoint's state.json: where the run is and what decided its result.
type trainState struct {
	Format   int     `json:"format"`
	Step     int     `json:"step"`
	Tokens   int64   `json:"tokens"`
	Seed     uint64  `json:"seed"`
	BestEval float64 `json:"best_eval_loss"`
	BestStep int     `json:"best_step"`
	// FirstLoss, Recent (the last 10 training losses) and EvalLoss let a resumed run
	// report what the uninterrupted one would; Stopped records an early stop.
	FirstLoss maybe     `json:"first_loss"`
	Recent    []float64 `json:"recent_losses"`
	EvalLoss  maybe     `json:"eval_loss"`
	Stopped   bool      `json:"stopped_early,omitempty"`
	// Settings are the settings and data fingerprints that decide the run's result
	// (TrainConfig.settings): a resume with any other value is refused.
	Settings map[string]string `json:"settings"`
}

// maybe is a float64 that may be NaN (not measured yet), written as null.
type maybe float64

func (m maybe) MarshalJSON() ([]byte, error) { return json.Marshal(finite(float64(m))) }

func (m *maybe) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*m = maybe(math.NaN())
		return nil
	}
	var v float64
	err := json.Unmarshal(b, &v)
	*m = maybe(v)
	return err
}

// A checkpoint is a folder OutDir/checkpoints/step-NNNNNNN holding the trainable
// weights as the LM saves them (LM.Save: a usable adapter or model folder), the
// optimizer's moments and step with any generator states (optimizer.safetensors) and
// state.json; OutDir/checkpoints/latest names the newest.

// checkpoint writes OutDir/checkpoints/step-NNNNNNN and then points
// OutDir/checkpoints/latest at it with an atomic rename, so a crash at any moment leaves
// the previous checkpoint usable. Older checkpoints beyond the last two are removed.
func checkpoint(outDir string, lm LM, opt *AdamW, st trainState) error {
	root := filepath.Join(outDir, "checkpoints")
	name := fmt.Sprintf("step-%07d", st.Step)
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := lm.Save(dir); err != nil {
		return fmt.Errorf("checkpoint %s: weights: %w", name, err)
	}
	tensors, meta, err := opt.StateTensors(lm.Names())
	if err != nil {
		return err
	}
	if r, ok := lm.(Randomized); ok { // generator states ride along with the moments
		rs := torch.NewScope()
		defer rs.Close()
		for i, g := range r.Generators() {
			tensors[fmt.Sprintf("rng.%d", i)] = g.State(rs)
		}
		if err := rs.Err(); err != nil {
			return fmt.Errorf("checkpoint %s: generator state: %w", name, err)
		}
	}
	if err := torch.Save(filepath.Join(dir, "optimizer.safetensors"), tensors, meta); err != nil {
		return fmt.Errorf("checkpoint %s: optimizer: %w", name, err)
	}
	st.Format = checkpointFormat
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint %s: state: %w", name, err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "state.json"), append(b, '\n')); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(root, "latest"), []byte(name+"\n")); err != nil {
		return err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	var old []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "step-") && e.Name() != name {
			old = append(old, e.Name())
		}
	}
	sort.Strings(old)
	for len(old) > 1 {
		if err := os.RemoveAll(filepath.Join(root, old[0])); err != nil {
			return err
		}
		old = old[1:]
	}
	return nil
}

// latestState reads the state of OutDir's latest checkpoint; ok is false when there is
// none.
func latestState(outDir string) (st trainState, dir string, ok bool, err error) {
	root := filepath.Join(outDir, "checkpoints")
	b, err := os.ReadFile(filepath.Join(root, "latest"))
	if errors.Is(err, os.ErrNotExist) {
		return st, "", false, nil
	}
	if err != nil {
		return st, "", false, err
	}
	name := strings.TrimSpace(string(b))
	if !strings.HasPrefix(name, "step-") || strings.ContainsAny(name, `/\`) {
		return st, "", false, fmt.Errorf("%s names %q, not a checkpoint folder", filepath.Join(root, "latest"), name)
	}
	dir = filepath.Join(root, name)
	path := filepath.Join(dir, "state.json")
	sb, err := os.ReadFile(path)
	if err != nil {
		return st, "", false, err
	}
	if err := json.Unmarshal(sb, &st); err != nil {
		return st, "", false, fmt.Errorf("%s: %w", path, err)
	}
	if st.Format != checkpointFormat {
		return st, "", false, fmt.Errorf("%s: checkpoint format %d, this version of Pioneer reads format %d; start the run afresh in another folder",
			path, st.Format, checkpointFormat)
	}
	return st, dir, true, nil
}

// LatestStep is the step of OutDir's latest checkpoint (0 when there is none).
func LatestStep(outDir string) (int, error) {
	st, _, _, err := latestState(outDir)
	return st.Step, err
}

// mismatch names the first setting (in sorted order) whose value differs between a
// checkpoint and this run, "" when none does.
func mismatch(saved, now map[string]string) string {
	d, found := settings.FirstDifference(saved, now)
	switch {
	case !found:
		return ""
	case !d.InWas:
		return fmt.Sprintf("the checkpoint records no %s; this run has %s=%s", d.Key, d.Key, d.Now)
	case !d.InNow:
		return fmt.Sprintf("the checkpoint was trained with %s=%s; this run sets no %s", d.Key, d.Was, d.Key)
	}
	return fmt.Sprintf("the checkpoint was trained with %s=%s, this run has %s=%s", d.Key, d.Was, d.Key, d.Now)
}

// restore loads the latest checkpoint into lm and opt after checking that it was made
// by a run with these settings; it reports false when there is none.
func restore(outDir string, lm LM, opt *AdamW, settings map[string]string, st *trainState) (bool, error) {
	saved, dir, ok, err := latestState(outDir)
	if err != nil || !ok {
		return false, err
	}
	if why := mismatch(saved.Settings, settings); why != "" {
		return false, fmt.Errorf("%s is another run's: %s (resume with the same settings, or use another folder)", dir, why)
	}
	*st = saved
	if err := lm.Restore(dir); err != nil {
		return false, fmt.Errorf("%s: %w", dir, err)
	}
	s := torch.NewScope()
	defer s.Close()
	ot, meta, err := s.Load(filepath.Join(dir, "optimizer.safetensors"), torch.CPU)
	if err != nil {
		return false, err
	}
	if r, ok := lm.(Randomized); ok {
		for i, g := range r.Generators() {
			state := ot[fmt.Sprintf("rng.%d", i)]
			if state == nil {
				return false, fmt.Errorf("%s: generator state rng.%d missing", dir, i)
			}
			if err := g.SetState(state); err != nil {
				return false, fmt.Errorf("%s: generator %d: %w", dir, i, err)
			}
		}
	}
	return true, opt.LoadState(lm.Names(), ot, meta)
}

// Randomized is implemented by models whose training draws random numbers (dropout):
// their generators' states are checkpointed so a resumed run draws what an uninterrupted
// one would.
type Randomized interface {
	Generators() []*torch.Generator
}
