package production

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/model"
)

// Versions are the deployed adapter's (or fine-tuned model's) versions kept in RUN_DIR/versions: v0 is the
// adapter the run started from, v1... what the gate promoted. RUN_DIR/versions/CURRENT
// names the deployed one; rollback points it at an earlier one. Versions are never
// deleted.
type Versions struct{ dir string }

// VersionMeta is versions/vN/meta.json.
type VersionMeta struct {
	Version   string       `json:"version"`
	Created   time.Time    `json:"created"`
	Source    string       `json:"source"`
	Candidate string       `json:"candidate,omitempty"`
	Recipe    agent.Recipe `json:"recipe,omitempty"`
	Scores    *Scores      `json:"scores,omitempty"`
	Note      string       `json:"note,omitempty"`
}

// OpenVersions opens a run's version store (creating the folder).
func OpenVersions(runDir string) (*Versions, error) {
	v := &Versions{dir: filepath.Join(runDir, "versions")}
	return v, os.MkdirAll(v.dir, 0o755)
}

// Current is the deployed version ("" before v0 exists).
func (v *Versions) Current() string {
	b, err := os.ReadFile(filepath.Join(v.dir, "CURRENT"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Dir is a version's folder: a PEFT adapter, or (for fully fine-tuned deployments) a
// model folder.
func (v *Versions) Dir(name string) string { return filepath.Join(v.dir, name) }

// List names the versions, oldest first.
func (v *Versions) List() []string {
	entries, _ := os.ReadDir(v.dir)
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "v") {
			if _, err := strconv.Atoi(e.Name()[1:]); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i][1:])
		b, _ := strconv.Atoi(out[j][1:])
		return a < b
	})
	return out
}

// Add copies a deployable folder (a PEFT adapter, or a fine-tuned model) in as the next
// version and makes it current.
func (v *Versions) Add(adapterDir string, meta VersionMeta) (string, error) {
	name := fmt.Sprintf("v%d", len(v.List()))
	dst := v.Dir(name)
	tmp := dst + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	files, err := deployable(adapterDir)
	if err != nil {
		return "", fmt.Errorf("version %s: %w", name, err)
	}
	for _, f := range files {
		if err := copyFile(filepath.Join(adapterDir, f), filepath.Join(tmp, f)); err != nil {
			return "", fmt.Errorf("version %s: %w", name, err)
		}
	}
	meta.Version, meta.Created = name, time.Now().UTC()
	if err := writeJSON(filepath.Join(tmp, "meta.json"), meta); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", err
	}
	return name, v.SetCurrent(name)
}

// SetCurrent deploys a version.
func (v *Versions) SetCurrent(name string) error {
	if _, err := deployable(v.Dir(name)); err != nil {
		return fmt.Errorf("no version %s in %s (have %s)", name, v.dir, strings.Join(v.List(), ", "))
	}
	return fsutil.WriteFileAtomic(filepath.Join(v.dir, "CURRENT"), []byte(name+"\n"))
}

// EvalSet is the evaluation set a version was promoted on (nil for v0: the task's
// validation examples stand in).
func (v *Versions) EvalSet(name string) ([]task.Example, error) {
	var exs []task.Example
	err := readJSON(filepath.Join(v.Dir(name), "eval_set.json"), &exs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return exs, err
}

// SetEvalSet records a version's evaluation set (the next candidates' ratchet).
func (v *Versions) SetEvalSet(name string, exs []task.Example) error {
	return writeJSON(filepath.Join(v.Dir(name), "eval_set.json"), exs)
}

// Pending is a candidate that passed the gate under manual approval (RUN_DIR/pending.json).
type Pending struct {
	Adapter string         `json:"adapter"`
	Meta    VersionMeta    `json:"meta"`
	EvalSet []task.Example `json:"eval_set"`
}

// Approve promotes the candidate a manual-approval run left pending.
func Approve(runDir string) (string, error) {
	var p Pending
	path := filepath.Join(runDir, "pending.json")
	if err := readJSON(path, &p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s: %w", runDir, errNoPending)
		}
		return "", err
	}
	vs, err := OpenVersions(runDir)
	if err != nil {
		return "", err
	}
	p.Meta.Note += "; approved by hand"
	name, err := vs.Add(p.Adapter, p.Meta)
	if err != nil {
		return "", err
	}
	if err := vs.SetEvalSet(name, p.EvalSet); err != nil {
		return "", err
	}
	lin, err := OpenLineage(filepath.Join(runDir, "lineage.jsonl"))
	if err != nil {
		return "", err
	}
	defer lin.Close()
	if err := lin.Append("approved/"+name, "approved", map[string]string{"candidate": p.Meta.Candidate, "version": name}); err != nil {
		return "", err
	}
	if err := os.Remove(path); err != nil {
		return "", err
	}
	return name, WriteReport(runDir)
}

// Rollback deploys an earlier version (to ""; the one before the current).
func Rollback(runDir, to string) (string, error) {
	vs, err := OpenVersions(runDir)
	if err != nil {
		return "", err
	}
	cur, list := vs.Current(), vs.List()
	if to == "" {
		for i, v := range list {
			if v == cur && i > 0 {
				to = list[i-1]
			}
		}
		if to == "" {
			return "", fmt.Errorf("%s: version %s has no earlier version to roll back to", runDir, cur)
		}
	}
	if err := vs.SetCurrent(to); err != nil {
		return "", err
	}
	lin, err := OpenLineage(filepath.Join(runDir, "lineage.jsonl"))
	if err != nil {
		return "", err
	}
	defer lin.Close()
	key := fmt.Sprintf("rollback/%s->%s/%d", cur, to, len(lin.Events()))
	if err := lin.Append(key, "rollback", map[string]string{"from": cur, "to": to}); err != nil {
		return "", err
	}
	return to, WriteReport(runDir)
}

// deployable lists the files that make dir a deployment: a PEFT adapter's config and
// weights, or a model folder's config, weights (shards and index included) and
// companion files (tokenizer, generation defaults).
func deployable(dir string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, "adapter_config.json")); err == nil {
		return []string{"adapter_config.json", "adapter_model.safetensors"}, nil
	}
	if !model.IsModelDir(dir) {
		return nil, fmt.Errorf("%s is neither a PEFT adapter (adapter_config.json) nor a model folder (config.json and safetensors weights)", dir)
	}
	files := []string{"config.json"}
	weights, err := filepath.Glob(filepath.Join(dir, "model*.safetensors*"))
	if err != nil {
		return nil, err
	}
	for _, w := range weights {
		files = append(files, filepath.Base(w))
	}
	for _, f := range model.CompanionFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			files = append(files, f)
		}
	}
	return files, nil
}

// isFullModel reports whether a deployment folder is a fine-tuned model rather than an
// adapter (an error when it is neither).
func isFullModel(dir string) (bool, error) {
	if _, err := deployable(dir); err != nil {
		return false, err
	}
	_, err := os.Stat(filepath.Join(dir, "adapter_config.json"))
	return err != nil, nil
}

// copyFile copies a file (streamed: model weights can be large) and syncs it.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
