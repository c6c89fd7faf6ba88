// Package production is Pioneer's production mode: given a deployed adapter (or fully
// fine-tuned model) and a log of its labelled failures, it triages the log (poison never
// becomes training data), diagnoses systematic error patterns and confirms them on fresh
// probes, synthesises a targeted curriculum, retrains candidates from the base model, and
// promotes one only through a regression gate (docs/DESIGN.md §5 and §6).
//
// A run is a sequence of stages, each a function of the previous stages' typed results
// and each recorded in the run folder's lineage (agent.Step), so a killed run resumes
// where it stopped: open (models and data) → triage → baseline (the deployed model's
// scores and R) → diagnose (patterns confirmed on fresh probes) → search (curricula and
// candidates, each gated) → promote (a new version, made current in one transaction) or
// reject. The files are run.go (the sequence) and one file per stage.
package production

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/teacher"
	"github.com/pioneer-ai/pioneer/agent/triage"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
)

// Config configures Run. Zero values take the defaults noted; values out of range are
// errors (Validate), never replaced by a default.
type Config struct {
	// Base is the base model: a Hugging Face folder or a bundled model's name.
	Base string
	// Deployed is what is deployed: a PEFT adapter folder, or a model folder fine-tuned
	// from Base in every weight (candidates are then trained the same way).
	Deployed string
	Task     *task.Task
	Failures string // failure log (JSONL)
	// Traffic (optional): examples the deployed model got right, with their labels; they
	// define R, the set the new model must keep right. Without it R is the deployed
	// model's correct answers on the held-out set.
	Traffic string
	// ParentData (optional): the deployed adapter's training examples (task format). They
	// are replayed and are part of every candidate's training set (candidates are trained
	// from the base model on the parent's data plus the curriculum). Without it the
	// candidates learn from the curriculum and the pool examples it draws.
	ParentData string
	Out        string // run folder
	// Epsilon is how many examples of R may become wrong (an absolute count; 0: none).
	// DefaultEpsilon is the command's default.
	Epsilon    int
	Iterations int // the search's budget in rounds (2 candidates each); 0: 3
	// Search is how candidate pipelines are chosen: SearchGreedy ("" too) or SearchMCTS.
	Search   string
	WallTime time.Duration // 0: no bound
	// TokenBudget bounds the training tokens of all candidates together (0: no bound).
	// Like WallTime it is checked before a round (greedy) or a candidate (mcts) starts, so
	// the last one may overrun it.
	TokenBudget int64
	Manual      bool // stop before promotion and wait for Approve
	Device      torch.Device
	Recipe      finetune.Recipe // the base recipe; zero fields take finetune's defaults
	HeldOut     int             // validation examples in the held-out set; 0: 500
	Probes      int             // fresh probes per pattern; 0: 20
	MinProbe    float64         // probe error rate that confirms a pattern; 0: 0.2
	Teacher     *teacher.Client // optional: an OpenAI-compatible endpoint that adds examples
	Limits      triage.Limits   // bounds on reading the failure log
	Seed        uint64
	Log         io.Writer
	Progress    func(training.Progress)
}

// DefaultEpsilon is `pioneer adapt`'s default for Config.Epsilon (docs/DESIGN.md §5: ε = 2).
const DefaultEpsilon = 2

// Search strategies.
const (
	// SearchGreedy runs rounds of at least two candidates each and promotes the best
	// passing candidate of the first round that has one.
	SearchGreedy = "greedy"
	// SearchMCTS is a Monte-Carlo search over the graph of pipelines: each round walks
	// from the root recipe by UCT to a pipeline with an untried change, trains and gates
	// that change, and backs its reward up the path. Pipelines reached by two paths are
	// one node. The best passing candidate of the whole budget wins.
	SearchMCTS = "mcts"
)

// Bounds of a configuration.
const (
	MaxIterations = 1000
	maxHeldOut    = 1_000_000
)

// Validate says what is wrong with a configuration.
func (c *Config) Validate() error {
	switch {
	case c.Base == "":
		return fmt.Errorf("production: no base model")
	case c.Deployed == "":
		return fmt.Errorf("production: no deployed adapter or model")
	case c.Task == nil:
		return fmt.Errorf("production: no task")
	case c.Failures == "":
		return fmt.Errorf("production: no failure log")
	case c.Out == "":
		return fmt.Errorf("production: no run folder")
	case c.Epsilon < 0:
		return fmt.Errorf("production: epsilon must be 0 or more (examples of R that may break), got %d", c.Epsilon)
	case c.Iterations < 0 || c.Iterations > MaxIterations:
		return fmt.Errorf("production: iterations must be between 1 and %d (0: 3), got %d", MaxIterations, c.Iterations)
	case c.Search != "" && c.Search != SearchGreedy && c.Search != SearchMCTS:
		return fmt.Errorf("production: search %q: want %s or %s", c.Search, SearchGreedy, SearchMCTS)
	case c.WallTime < 0:
		return fmt.Errorf("production: wall time must not be negative, got %s", c.WallTime)
	case c.TokenBudget < 0:
		return fmt.Errorf("production: token budget must not be negative, got %d", c.TokenBudget)
	case c.HeldOut < 0 || c.HeldOut > maxHeldOut:
		return fmt.Errorf("production: held-out examples must be between 1 and %d (0: 500), got %d", maxHeldOut, c.HeldOut)
	case c.Probes < 0:
		return fmt.Errorf("production: probes must be positive (0: 20), got %d", c.Probes)
	case c.MinProbe < 0 || c.MinProbe > 1 || math.IsNaN(c.MinProbe):
		return fmt.Errorf("production: the probe error rate that confirms a pattern must be in (0, 1] (0: 0.2), got %v", c.MinProbe)
	}
	return c.Recipe.Validate()
}

func (c *Config) defaults() {
	if c.Iterations == 0 {
		c.Iterations = 3
	}
	if c.Search == "" {
		c.Search = SearchGreedy
	}
	if c.HeldOut == 0 {
		c.HeldOut = 500
	}
	if c.Probes == 0 {
		c.Probes = 20
	}
	if c.MinProbe == 0 {
		c.MinProbe = 0.2
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Decision is what a run decided.
type Decision string

// The decisions.
const (
	Promoted         Decision = "promoted"          // a candidate is the new current version
	AwaitingApproval Decision = "awaiting_approval" // a candidate passed; `pioneer approve` promotes it
	Rejected         Decision = "rejected"          // nothing passed; the deployed version stays
)

// Outcome is what a run decided; it is also RUN_DIR/outcome.json.
type Outcome struct {
	Verdict   Decision  `json:"verdict"`
	Version   string    `json:"version"` // the version deployed at the end
	Candidate string    `json:"candidate,omitempty"`
	Deployed  Scores    `json:"deployed"`
	Chosen    *Scores   `json:"chosen,omitempty"`
	Reasons   []string  `json:"reasons,omitempty"`
	Triage    Counts    `json:"triage"`
	Patterns  int       `json:"patterns_confirmed"`
	Wall      float64   `json:"wall_s"`
	Finished  time.Time `json:"finished"`
}

// Scores are a model's measurements in the gate.
type Scores struct {
	HeldOut     float64  `json:"heldout_metric"` // on V ∪ held-back failures
	Failures    float64  `json:"heldback_failures_metric"`
	Previous    float64  `json:"previous_eval_metric"` // on the previous version's evaluation set
	Regressions int      `json:"regressions"`          // examples of R now wrong
	Broken      []string `json:"broken,omitempty"`     // their ids
}

// Counts summarise triage.
type Counts struct {
	Read        int            `json:"read"`
	Quarantined int            `json:"quarantined"`
	Clean       int            `json:"clean"`
	Fixable     int            `json:"fixable"`
	Poison      int            `json:"poison"`
	Kinds       map[string]int `json:"kinds"` // "class:kind" -> lines
}
