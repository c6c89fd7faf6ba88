package versions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/torch/safetensors"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
)

// Inspect says what a deployable folder is (Adapter or Model) and lists the files that
// make it one, after checking them: a PEFT adapter's adapter_config.json parses and its
// adapter_model.safetensors is complete and holds lora_A/lora_B pairs of one rank per
// module; a model folder's config.json names an architecture and each of its safetensors
// files (one, or the shards its index lists) is complete. Files that are symbolic links
// are refused. The training set (TrainingSetFile) is listed too where the folder has one.
func Inspect(dir string) (kind string, files []string, err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return "", nil, err
	}
	if !st.IsDir() {
		return "", nil, fmt.Errorf("%s is not a folder", dir)
	}
	switch {
	case exists(filepath.Join(dir, lora.ConfigFile)):
		kind = Adapter
		files, err = inspectAdapter(dir)
	case exists(filepath.Join(dir, "config.json")):
		kind = Model
		files, err = inspectModel(dir)
	default:
		return "", nil, fmt.Errorf("%s is neither a PEFT adapter (adapter_config.json) nor a model folder (config.json and safetensors weights)", dir)
	}
	if err != nil {
		return "", nil, err
	}
	if ts := filepath.Join(dir, TrainingSetFile); exists(ts) {
		if err := regular(ts); err != nil {
			return "", nil, err
		}
		files = append(files, TrainingSetFile)
	}
	return kind, files, nil
}

// TrainingSetFile is the optional file of a deployable folder that holds the examples
// it was trained on (task format, one JSON object per line); a version keeps it.
const TrainingSetFile = "train.jsonl"

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func regular(path string) error {
	if err := fsutil.NotSymlink(path); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

func inspectAdapter(dir string) ([]string, error) {
	cfgPath, weights := filepath.Join(dir, lora.ConfigFile), filepath.Join(dir, lora.WeightsFile)
	for _, p := range []string{cfgPath, weights} {
		if err := regular(p); err != nil {
			return nil, fmt.Errorf("adapter %s: %w", dir, err)
		}
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	if _, err := lora.ParseConfig(b); err != nil {
		return nil, fmt.Errorf("adapter %s: %s: %w", dir, cfgPath, err)
	}
	f, err := safetensors.Open(weights)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", dir, err)
	}
	defer f.Close()
	type pair struct{ a, b []int64 }
	mods := map[string]*pair{}
	for _, t := range f.Header().Tensors {
		mod, which, ok := loraName(t.Name)
		if !ok {
			return nil, fmt.Errorf("adapter %s: %s holds %q, not a lora_A or lora_B weight", dir, weights, t.Name)
		}
		if len(t.Shape) != 2 {
			return nil, fmt.Errorf("adapter %s: %s has shape %v, not a matrix", dir, t.Name, t.Shape)
		}
		p := mods[mod]
		if p == nil {
			p = &pair{}
			mods[mod] = p
		}
		if which == "A" {
			p.a = t.Shape
		} else {
			p.b = t.Shape
		}
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("adapter %s: %s holds no weights", dir, weights)
	}
	names := make([]string, 0, len(mods))
	for m := range mods {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		p := mods[m]
		switch {
		case p.a == nil || p.b == nil:
			return nil, fmt.Errorf("adapter %s: %s has only one of lora_A and lora_B", dir, m)
		case p.a[0] != p.b[1]:
			return nil, fmt.Errorf("adapter %s: %s: lora_A %v and lora_B %v disagree on the rank", dir, m, p.a, p.b)
		}
	}
	return []string{lora.ConfigFile, lora.WeightsFile}, nil
}

// loraName splits a PEFT tensor name "base_model.model.<module>.lora_A.weight".
func loraName(name string) (module, which string, ok bool) {
	rest, ok := strings.CutPrefix(name, "base_model.model.")
	if !ok {
		return "", "", false
	}
	for _, w := range []string{"A", "B"} {
		if m, ok := strings.CutSuffix(rest, ".lora_"+w+".weight"); ok && m != "" {
			return m, w, true
		}
	}
	return "", "", false
}

func inspectModel(dir string) ([]string, error) {
	if err := regular(filepath.Join(dir, "config.json")); err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	if _, err := model.Architecture(dir); err != nil {
		return nil, err
	}
	files := []string{"config.json"}
	var shards []string
	index := filepath.Join(dir, "model.safetensors.index.json")
	switch {
	case exists(filepath.Join(dir, "model.safetensors")):
		shards = []string{"model.safetensors"}
	case exists(index):
		if err := regular(index); err != nil {
			return nil, fmt.Errorf("model %s: %w", dir, err)
		}
		b, err := os.ReadFile(index)
		if err != nil {
			return nil, err
		}
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("model %s: %s: %w", dir, index, err)
		}
		seen := map[string]bool{}
		for _, f := range idx.WeightMap {
			if !seen[f] {
				if f != filepath.Base(f) {
					return nil, fmt.Errorf("model %s: %s names a shard outside the folder (%q)", dir, index, f)
				}
				seen[f] = true
				shards = append(shards, f)
			}
		}
		sort.Strings(shards)
		files = append(files, "model.safetensors.index.json")
	default:
		return nil, fmt.Errorf("model %s has no model.safetensors or model.safetensors.index.json", dir)
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("model %s: no weight files", dir)
	}
	for _, sh := range shards {
		p := filepath.Join(dir, sh)
		if err := regular(p); err != nil {
			return nil, fmt.Errorf("model %s: %w", dir, err)
		}
		f, err := safetensors.Open(p)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", dir, err)
		}
		f.Close()
		files = append(files, sh)
	}
	for _, c := range model.CompanionFiles {
		p := filepath.Join(dir, c)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := regular(p); err != nil {
			return nil, fmt.Errorf("model %s: %w", dir, err)
		}
		files = append(files, c)
	}
	return files, nil
}
