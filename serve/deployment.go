package serve

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/lora"
)

// deployment is a production run folder served under one model id: its current version
// (versions/CURRENT), followed as promotions, approvals and rollbacks change it.
type deployment struct {
	store   *versions.Store
	dir     string
	index   int    // the adapter's index in Server.sets
	version string // the version served now
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

// openDeployment reads the run folder's current version, verified against its sums.
func openDeployment(dir string) (*deployment, string, error) {
	vs, err := versions.Open(dir, false)
	if err != nil {
		return nil, "", fmt.Errorf("serve: deployment %s: %w", dir, err)
	}
	cur, err := vs.Current()
	if err != nil {
		return nil, "", fmt.Errorf("serve: deployment %s: %w", dir, err)
	}
	if cur == "" {
		return nil, "", fmt.Errorf("serve: deployment %s holds no version", dir)
	}
	path, err := adapterOf(vs, cur)
	if err != nil {
		return nil, "", err
	}
	return &deployment{store: vs, dir: dir, version: cur, swaps: make(chan string, 1), stop: make(chan struct{}), stopped: make(chan struct{})}, path, nil
}

// adapterOf verifies a version and returns its folder; a version that is a whole model
// (fine-tuned in every weight) cannot be swapped in under a running base model.
func adapterOf(vs *versions.Store, v string) (string, error) {
	if err := vs.Verify(v); err != nil {
		return "", fmt.Errorf("serve: version %s: %w", v, err)
	}
	kind, _, err := versions.Inspect(vs.Dir(v))
	if err != nil {
		return "", err
	}
	if kind != versions.Adapter {
		return "", fmt.Errorf("serve: version %s is a %s, not an adapter: serve it with --model %s", v, kind, vs.Dir(v))
	}
	return vs.Dir(v), nil
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

// swap puts version v in place of the deployment's adapter, between batches (the
// batcher calls it): loaded and verified first, so that a bad version leaves the one
// being served in place.
func (s *Server) swap(v string) {
	d := s.deploy
	rec := swapRecord{Time: time.Now().UTC(), From: d.version, To: v}
	err := func() error {
		path, err := adapterOf(d.store, v)
		if err != nil {
			return err
		}
		set, err := lora.LoadDetached(path, s.cfg.Model.LM)
		if err != nil {
			return err
		}
		old := s.sets[d.index]
		s.mix.Close()
		s.sets[d.index] = set
		mix, err := lora.Mix(s.cfg.Model.LM, s.sets...)
		if err != nil { // put the old one back
			set.Close()
			s.sets[d.index] = old
			if mix, err2 := lora.Mix(s.cfg.Model.LM, s.sets...); err2 == nil {
				s.mix = mix
			}
			return err
		}
		s.mix = mix
		old.Close()
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

// versionOf is the deployment's version served now when model is the deployment's id,
// "" otherwise.
func (s *Server) versionOf(model string) string {
	if s.deploy == nil || model != s.cfg.DeploymentName {
		return ""
	}
	return s.Serving()
}
