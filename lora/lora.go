// Package lora adds low-rank adapters (LoRA, Hu et al. 2021) to a model's projections and
// reads and writes them in Hugging Face PEFT's format (adapter_config.json and
// adapter_model.safetensors), so an adapter trained by either loads in the other.
//
// An adapter on a projection W adds scale · B·A·x, with A (r, in), B (out, r) and
// scale = alpha/r (or alpha/√r with rsLoRA). Module selection follows PEFT: a list of
// target names matches a module path equal to the name or ending in "."+name; a single
// string is a regular expression that must match the whole path. rank_pattern and
// alpha_pattern keys are regular expressions matched against the end of the path.
package lora

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// Config is the part of PEFT's LoraConfig Pioneer uses, with PEFT's JSON names.
type Config struct {
	R             int                `json:"r"`
	Alpha         float64            `json:"lora_alpha"`
	Dropout       float64            `json:"lora_dropout"`
	TargetModules Targets            `json:"target_modules"`
	UseRSLoRA     bool               `json:"use_rslora"`
	RankPattern   map[string]int     `json:"rank_pattern"`
	AlphaPattern  map[string]float64 `json:"alpha_pattern"`
	Bias          string             `json:"bias"`
	FanInFanOut   bool               `json:"fan_in_fan_out"`
	UseDoRA       bool               `json:"use_dora"`
	PeftType      string             `json:"peft_type"`
	TaskType      string             `json:"task_type"`
	BaseModel     string             `json:"base_model_name_or_path"`
	InferenceMode bool               `json:"inference_mode"`
	// patternOrder keeps rank/alpha pattern keys in file order: PEFT uses the first match.
	rankOrder, alphaOrder []string
}

// Targets is PEFT's target_modules: a list of names or one regular expression.
type Targets struct {
	Names []string
	Regex string
}

// MarshalJSON writes a list, or the regular expression as a string.
func (t Targets) MarshalJSON() ([]byte, error) {
	if t.Regex != "" {
		return json.Marshal(t.Regex)
	}
	return json.Marshal(t.Names)
}

// UnmarshalJSON reads a list or a string.
func (t *Targets) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &t.Regex)
	}
	return json.Unmarshal(b, &t.Names)
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	switch {
	case c.R <= 0:
		return fmt.Errorf("lora: r must be positive, got %d", c.R)
	case c.Alpha <= 0:
		return fmt.Errorf("lora: lora_alpha must be positive, got %v", c.Alpha)
	case c.Dropout < 0 || c.Dropout >= 1:
		return fmt.Errorf("lora: lora_dropout must be in [0, 1), got %v", c.Dropout)
	case len(c.TargetModules.Names) == 0 && c.TargetModules.Regex == "":
		return fmt.Errorf("lora: no target_modules")
	case c.Bias != "" && c.Bias != "none":
		return fmt.Errorf("lora: bias %q is not supported (only \"none\")", c.Bias)
	case c.UseDoRA:
		return fmt.Errorf("lora: DoRA adapters are not supported")
	case c.PeftType != "" && c.PeftType != "LORA":
		return fmt.Errorf("lora: peft_type %q is not LORA", c.PeftType)
	}
	if c.TargetModules.Regex != "" {
		if _, err := regexp.Compile(c.TargetModules.Regex); err != nil {
			return fmt.Errorf("lora: target_modules: %w", err)
		}
	}
	for k, r := range c.RankPattern {
		if r <= 0 {
			return fmt.Errorf("lora: rank_pattern %q: rank must be positive, got %d", k, r)
		}
	}
	return nil
}

// ParseConfig decodes adapter_config.json, keeping the order of the pattern keys.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, err
	}
	var raw struct {
		Rank  json.RawMessage `json:"rank_pattern"`
		Alpha json.RawMessage `json:"alpha_pattern"`
	}
	_ = json.Unmarshal(b, &raw)
	c.rankOrder = objectKeys(raw.Rank)
	c.alphaOrder = objectKeys(raw.Alpha)
	return c, c.Validate()
}

// objectKeys lists a JSON object's keys in document order.
func objectKeys(b json.RawMessage) []string {
	if len(b) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return keys
		}
	}
	return keys
}

// targets reports whether the module at path is adapted.
func (c *Config) targets(path string) bool {
	if c.TargetModules.Regex != "" {
		ok, _ := regexp.MatchString("^(?:"+c.TargetModules.Regex+")$", path)
		return ok
	}
	for _, n := range c.TargetModules.Names {
		if path == n || strings.HasSuffix(path, "."+n) {
			return true
		}
	}
	return false
}

// patternKey returns the first key (in order) whose pattern matches the end of path.
func patternKey(keys []string, path string) (string, bool) {
	for _, k := range keys {
		if ok, _ := regexp.MatchString("^(?:.*\\.)?(?:"+k+")$", path); ok {
			return k, true
		}
	}
	return "", false
}

func ordered[V any](m map[string]V, order []string) []string {
	if len(order) == len(m) {
		return order
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// rankAlpha returns the rank and alpha for the module at path.
func (c *Config) rankAlpha(path string) (int, float64) {
	r, a := c.R, c.Alpha
	if k, ok := patternKey(ordered(c.RankPattern, c.rankOrder), path); ok {
		r = c.RankPattern[k]
	}
	if k, ok := patternKey(ordered(c.AlphaPattern, c.alphaOrder), path); ok {
		a = c.AlphaPattern[k]
	}
	return r, a
}

// Scale is the factor applied to B·A for rank r and alpha a.
func (c *Config) Scale(r int, a float64) float64 {
	if c.UseRSLoRA {
		return a / math.Sqrt(float64(r))
	}
	return a / float64(r)
}

// Adapter is the LoRA term of one projection.
type Adapter struct {
	Path   string        // module path, e.g. "model.layers.0.self_attn.q_proj"
	A, B   *torch.Tensor // A (r, in), B (out, r)
	Scale  float64
	Rank   int
	linear *model.Linear
	set    *Set
}

// AddTo is y + scale · B·A·dropout(x), with the scale and the addition folded into the
// second matrix product (one GEMM instead of a GEMM, a scaling and an addition).
func (a *Adapter) AddTo(s *torch.Scope, x, y *torch.Tensor) *torch.Tensor {
	if p := a.set.Config.Dropout; p > 0 && a.set.Training && torch.GradEnabled() {
		x = s.Dropout(x, p, a.set.gen)
	}
	shape := y.Shape()
	h := s.Linear(x, a.A, nil) // (…, r)
	out := s.Addmm(s.Reshape(y, -1, shape[len(shape)-1]), s.Reshape(h, -1, int64(a.Rank)), s.Transpose(a.B, 0, 1), 1, a.Scale)
	return s.Reshape(out, shape...)
}

// Delta is scale · B·A·dropout(x).
func (a *Adapter) Delta(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	if p := a.set.Config.Dropout; p > 0 && a.set.Training && torch.GradEnabled() {
		x = s.Dropout(x, p, a.set.gen)
	}
	return s.MulScalar(s.Linear(s.Linear(x, a.A, nil), a.B, nil), a.Scale)
}
