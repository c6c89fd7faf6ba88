package serve

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
)

// deployment is a production run folder served under one model id: its current version
// (versions/CURRENT), followed as promotions, approvals and rollbacks change it.
type deployment struct {
	store   *versions.Store
	dir     string
	index   int            // its adapter's index in Server.sets (-1: none yet)
	full    model.CausalLM // the version served now when it is a whole model (nil: an adapter)
	version string         // the version served now
	swaps   chan string
	stop    chan struct{}
	stopped chan struct{}
}

// swapRecord is a line of deployment.jsonl: a version switch, or a failed one.
type swapRecord struct {
	Time  time.Time `json:"time"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	Error string    `json:"error,omitempty"`
}

// openDeployment reads the run folder's current version, verified against its sums, and
// returns its folder and kind (versions.Adapter or versions.Model).
func openDeployment(dir string) (*deployment, string, string, error) {
	vs, err := versions.Open(dir, false)
	if err != nil {
		return nil, "", "", fmt.Errorf("serve: deployment %s: %w", dir, err)
	}
	cur, err := vs.Current()
	if err != nil {
		return nil, "", "", fmt.Errorf("serve: deployment %s: %w", dir, err)
	}
	if cur == "" {
		return nil, "", "", fmt.Errorf("serve: deployment %s holds no version", dir)
	}
	path, kind, err := versionOf(vs, cur)
	if err != nil {
		return nil, "", "", err
	}
	return &deployment{store: vs, dir: dir, index: -1, version: cur, swaps: make(chan string, 1), stop: make(chan struct{}), stopped: make(chan struct{})}, path, kind, nil
}

// versionOf verifies a version and returns its folder and kind.
func versionOf(vs *versions.Store, v string) (string, string, error) {
	if err := vs.Verify(v); err != nil {
		return "", "", fmt.Errorf("serve: version %s: %w", v, err)
	}
	kind, _, err := versions.Inspect(vs.Dir(v))
	if err != nil {
		return "", "", err
	}
	return vs.Dir(v), kind, nil
}

// loadFull loads a version fine-tuned in every weight beside the base model (same
// device and precision); it must read the base model's tokens.
func (s *Server) loadFull(path string) (model.CausalLM, error) {
	b := s.cfg.Model.LM
	lm, err := model.Load(path, b.Device(), b.DType())
	if err != nil {
		return nil, err
	}
	if got, want := lm.Info().VocabSize, b.Info().VocabSize; got != want {
		lm.Close()
		return nil, fmt.Errorf("serve: %s has a vocabulary of %d, the base model %d: not fine-tuned from it", path, got, want)
	}
	if s.cfg.Quantized {
		if _, err := model.Quantize(lm); err != nil {
			lm.Close()
			return nil, fmt.Errorf("serve: %s: %w", path, err)
		}
	}
	return lm, nil
}

// watch polls CURRENT and hands a changed version to the batcher.
func (d *deployment) watch(every time.Duration) {
	defer close(d.stopped)
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := d.version
	for {
		select {
		case <-d.stop:
			return
		case <-tick.C:
			cur, err := d.store.Current()
			if err != nil || cur == "" || cur == last {
				continue
			}
			select {
			case d.swaps <- cur:
				last = cur
			default: // the batcher has not taken the last one yet: try again next tick
			}
		}
	}
}

// swap puts version v in place of the deployment's, between steps while none of its
// sequences decodes (the batcher calls it): loaded and verified first, so that a bad
// version leaves the one being served in place. An adapter takes the deployment's adapter
// slot (made on first need); a whole model replaces the deployment's own model.
func (s *Server) swap(v string) {
	d := s.deploy
	rec := swapRecord{Time: time.Now().UTC(), From: d.version, To: v}
	err := func() error {
		path, kind, err := versionOf(d.store, v)
		if err != nil {
			return err
		}
		if kind == versions.Model {
			lm, err := s.loadFull(path)
			if err != nil {
				return err
			}
			if d.full != nil {
				d.full.Close()
			}
			d.full, d.version = lm, v
			return nil
		}
		set, err := lora.LoadDetached(path, s.cfg.Model.LM)
		if err != nil {
			return err
		}
		sets := append([]*lora.Set(nil), s.sets...)
		index := d.index
		if index < 0 {
			index = len(sets)
			sets = append(sets, set)
		} else {
			sets[index] = set
		}
		// the old mixture goes first: a mixture puts back, on Close, what the projections
		// had when it was made
		if s.mix != nil {
			s.mix.Close()
			s.mix = nil
		}
		mix, err := lora.Mix(s.cfg.Model.LM, sets...)
		if err != nil { // the sets served until now, mixed again
			set.Close()
			if len(s.sets) > 0 {
				if old, err2 := lora.Mix(s.cfg.Model.LM, s.sets...); err2 == nil {
					s.mix = old
				}
			}
			return err
		}
		if d.index >= 0 {
			s.sets[d.index].Close()
		}
		s.sets, s.mix, d.index = sets, mix, index
		if d.full != nil {
			d.full.Close()
			d.full = nil
		}
		d.version = v
		return nil
	}()
	if err != nil {
		rec.Error = err.Error()
	}
	s.metrics.swap(err == nil)
	if s.cfg.LogDir != "" {
		b, _ := json.Marshal(rec)
		f, ferr := os.OpenFile(filepath.Join(s.cfg.LogDir, "deployment.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if ferr == nil {
			f.Write(append(b, '\n'))
			f.Sync()
			f.Close()
		}
	}
}

// Serving names the deployment's version served now ("" without a deployment).
func (s *Server) Serving() string {
	if s.deploy == nil {
		return ""
	}
	s.deployMu.Lock()
	defer s.deployMu.Unlock()
	return s.deploy.version
}

// servedVersion is the deployment's version served now when model is the deployment's id,
// "" otherwise.
func (s *Server) servedVersion(model string) string {
	if s.deploy == nil || model != s.cfg.DeploymentName {
		return ""
	}
	return s.Serving()
}
