package production

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/triage"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
)

// inputs is what the open stage gives every later stage: the models and the data.
type inputs struct {
	cfg  Config
	t    *task.Task
	base *model.Pretrained // the base model; its LM is swapped for whole models
	// full: the deployment is a model fine-tuned in every weight (candidates are too).
	full   bool
	pool   []task.Example // the task's training split: fresh examples to draw on
	val    []task.Example // the validation examples of the held-out set
	parent []task.Example // the deployed model's training data
	// traffic: examples the deployed model got right (they define R), nil without;
	// trafficBad counts its lines that did not parse or fit the task (left out).
	traffic    []task.Example
	trafficBad int
	// failures are the log's usable lines, quarantined the others.
	failures    []triage.Failure
	quarantined []triage.Quarantined
	vs          *versions.Store
	eopts       task.EvalOptions
	budget      *agent.Budget
}

// open loads the base model and the data, and checks the deployment: it must load onto
// the base model (an adapter of its shape, or a fine-tune of its architecture and size)
// before anything of it is copied or recorded.
func open(cfg Config) (*inputs, error) {
	in := &inputs{cfg: cfg, t: cfg.Task, budget: agent.NewBudget(cfg.WallTime, cfg.TokenBudget)}
	kind, _, err := versions.Inspect(cfg.Deployed)
	if err != nil {
		return nil, fmt.Errorf("deployed: %w", err)
	}
	in.full = kind == versions.Model
	in.cfg.Recipe.Full = in.full
	in.cfg.Recipe.Defaults()
	if in.base, err = model.Open(cfg.Base, model.OpenOptions{Device: cfg.Device}); err != nil {
		return nil, err
	}
	if len(in.base.EOS) == 0 {
		in.close()
		return nil, fmt.Errorf("%s: no end-of-sequence token", in.base.Dir)
	}
	in.eopts = task.EvalOptions{Batch: 32, EOS: in.base.EOS, PadID: in.base.Pad}
	if err := in.deployable(cfg.Deployed); err != nil {
		in.close()
		return nil, fmt.Errorf("deployed %s: %w", cfg.Deployed, err)
	}
	if err := in.readData(); err != nil {
		in.close()
		return nil, err
	}
	return in, nil
}

func (in *inputs) close() {
	if in.base != nil {
		in.base.Close()
	}
}

// deployable checks that a folder deploys onto the base model: an adapter loads onto it,
// a model has its architecture and size. It is the version store's Check too.
func (in *inputs) deployable(dir string) error {
	if in.full {
		return in.fineTuneOf(dir)
	}
	set, err := lora.LoadDetached(dir, in.base.LM)
	if err != nil {
		return err
	}
	set.Close()
	return nil
}

// fineTuneOf checks that the model in dir has the base model's architecture and size.
func (in *inputs) fineTuneOf(dir string) error {
	a, err := model.Inspect(in.base.Dir)
	if err != nil {
		return err
	}
	b, err := model.Inspect(dir)
	if err != nil {
		return err
	}
	if a.Architecture != b.Architecture || a.Params != b.Params || a.VocabSize != b.VocabSize {
		return fmt.Errorf("%s (%s, %d parameters, vocabulary %d) is not a fine-tune of the base model %s (%s, %d parameters, vocabulary %d)",
			dir, b.Architecture, b.Params, b.VocabSize, in.cfg.Base, a.Architecture, a.Params, a.VocabSize)
	}
	return nil
}

// swap loads the weights of dir (the base, or a fully fine-tuned version) in place of
// the model's current ones.
func (in *inputs) swap(dir string) error {
	if dir != in.base.Dir {
		if err := in.fineTuneOf(dir); err != nil {
			return err
		}
	}
	return in.base.LoadWeights(dir, in.cfg.Device)
}

// readData reads the failure log, the pool, the held-out validation examples and the
// optional files.
func (in *inputs) readData() error {
	t := in.t
	var err error
	if in.failures, in.quarantined, err = triage.ReadFailures(t, in.cfg.Failures, in.cfg.Limits); err != nil {
		return fmt.Errorf("failure log: %w", err)
	}
	if in.pool, err = t.Split("train"); err != nil {
		return err
	}
	val, err := t.Split("validation")
	if err != nil {
		return err
	}
	in.val = t.Sample(val, in.cfg.HeldOut, in.cfg.Seed+11)
	read := func(path, what string) ([]task.Example, error) {
		if path == "" {
			return nil, nil
		}
		exs, bad, err := t.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if len(bad) > 0 {
			return nil, fmt.Errorf("%s %s: %v", what, path, bad[0])
		}
		return exs, nil
	}
	if in.parent, err = read(in.cfg.ParentData, "parent data"); err != nil {
		return err
	}
	if in.cfg.Traffic != "" {
		var bad []jsonl.LineError
		if in.traffic, bad, err = t.ReadFile(in.cfg.Traffic); err != nil {
			return fmt.Errorf("traffic: %w", err)
		}
		in.trafficBad = len(bad)
		for _, b := range bad {
			fmt.Fprintf(in.cfg.Log, "traffic  %s:%d left out: %s\n", in.cfg.Traffic, b.Line, b.Reason)
		}
	}
	return nil
}

// settings are what decides a run's result: a rerun with any other is refused
// (agent.Run.Start). Files are fingerprinted by content.
func (in *inputs) settings() (agent.Settings, error) {
	c := in.cfg
	s := agent.Settings{"search": c.Search, "epsilon": strconv.Itoa(c.Epsilon), "iterations": strconv.Itoa(c.Iterations),
		"manual": strconv.FormatBool(c.Manual), "seed": strconv.FormatUint(c.Seed, 10), "heldout": strconv.Itoa(c.HeldOut),
		"probes": strconv.Itoa(c.Probes), "min_probe": strconv.FormatFloat(c.MinProbe, 'g', -1, 64), "device": c.Device.String(),
		"wall_time": c.WallTime.String(), "token_budget": strconv.FormatInt(c.TokenBudget, 10)}
	r, err := json.Marshal(c.Recipe)
	if err != nil {
		return nil, err
	}
	s["recipe"] = string(r)
	if c.Teacher != nil {
		s["teacher"] = c.Teacher.URL + " " + c.Teacher.Model
	}
	if s["task"], err = in.t.Fingerprint(); err != nil {
		return nil, err
	}
	if s["base"], err = baseSum(in.base.Dir); err != nil {
		return nil, fmt.Errorf("base model: %w", err)
	}
	if s["deployed"], err = folderSum(c.Deployed); err != nil {
		return nil, fmt.Errorf("deployed: %w", err)
	}
	for key, path := range map[string]string{"failures": c.Failures, "traffic": c.Traffic, "parent_data": c.ParentData} {
		if path == "" {
			s[key] = "none"
			continue
		}
		if s[key], err = fileSum(path); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	return s, nil
}

// fileSum is the start of the SHA-256 of a file's content.
func fileSum(path string) (string, error) {
	sum, err := versions.FileSum(path)
	if err != nil {
		return "", err
	}
	return sum[:16], nil
}

// folderSum fingerprints a deployable folder (an adapter, a model) by its files' contents.
// baseSum fingerprints the base model's folder: a GGUF file's companion folder (config,
// tokenizer and a link to the file, model.Open's) by those files and the GGUF file the
// link names; a Hugging Face folder as folderSum does.
func baseSum(dir string) (string, error) {
	weights := filepath.Join(dir, model.GGUFWeights)
	if _, err := os.Lstat(weights); err != nil {
		return folderSum(dir)
	}
	if !model.IsGGUF(weights) {
		return "", fmt.Errorf("%s is not a GGUF file", weights)
	}
	h := sha256.New()
	for _, f := range append([]string{model.GGUFWeights, "config.json"}, model.CompanionFiles...) {
		p := filepath.Join(dir, f)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) && f != model.GGUFWeights {
			continue
		}
		sum, err := versions.FileSum(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s\n", f, sum)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func folderSum(dir string) (string, error) {
	sums, err := versions.FileSums(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range slices.Sorted(maps.Keys(sums)) {
		fmt.Fprintf(h, "%s %s\n", f, sums[f])
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
