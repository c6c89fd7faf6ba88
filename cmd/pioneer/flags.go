package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/agent/teacher"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/redact"
	"github.com/pioneer-ai/pioneer/model"
)

// Every numeric flag is checked before any work starts: a value out of its range is an
// error naming the flag, never replaced by a default. A flag whose help says "0: ..."
// accepts 0 for that meaning; the others do not.

// intRange is an integer flag's allowed range.
type intRange struct {
	name   string
	lo, hi int
}

// checkInts checks integer flags against their ranges.
func checkInts(c *cli.Context, rs ...intRange) error {
	for _, r := range rs {
		v := c.Int(r.name)
		if v < r.lo || v > r.hi {
			return fmt.Errorf("--%s must be between %d and %d, got %d", r.name, r.lo, r.hi, v)
		}
	}
	return nil
}

// floatRange is a float flag's allowed range; open makes the lower bound exclusive.
type floatRange struct {
	name   string
	lo, hi float64
	open   bool
}

// checkFloats checks float flags against their ranges (NaN and infinities refused).
func checkFloats(c *cli.Context, rs ...floatRange) error {
	for _, r := range rs {
		v := c.Float64(r.name)
		low := v < r.lo || (r.open && v == r.lo)
		if math.IsNaN(v) || math.IsInf(v, 0) || low || v > r.hi {
			bound := "at least"
			if r.open {
				bound = "above"
			}
			return fmt.Errorf("--%s must be %s %g and at most %g, got %v", r.name, bound, r.lo, r.hi, v)
		}
	}
	return nil
}

// Bounds of resource flags: past them a value is a typo, not a job.
const (
	maxBatch     = 4096
	maxEpochs    = 1000
	maxSteps     = 100_000_000
	maxSeqLen    = 1 << 20
	maxExamples  = 100_000_000
	maxNewTokens = 1 << 20
)

// setThreads applies --threads (0: libtorch's default), bounded by a few per CPU.
func setThreads(c *cli.Context) error {
	if err := checkInts(c, intRange{"threads", 0, 4 * runtime.NumCPU()}); err != nil {
		return err
	}
	if n := c.Int("threads"); n > 0 {
		torch.SetNumThreads(n)
	}
	return nil
}

// deviceFlag and threadsFlag are --device and --threads, as every command that runs a
// model has them.
func deviceFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "device", Value: "auto", Usage: "cpu, cuda, cuda:N or auto"}
}

func threadsFlag() *cli.IntFlag {
	return &cli.IntFlag{Name: "threads", Usage: "CPU threads for libtorch (0: libtorch's default)"}
}

// checkResume refuses --resume where --out holds no checkpoint to continue from.
func checkResume(c *cli.Context) error {
	if !c.Bool("resume") {
		return nil
	}
	step, err := training.LatestStep(c.String("out"))
	if err != nil {
		return fmt.Errorf("--resume: %w", err)
	}
	if step == 0 {
		return fmt.Errorf("--resume: %s holds no checkpoint to continue from; run without --resume to start", c.String("out"))
	}
	return nil
}

// device applies --threads and reads --device.
func device(c *cli.Context) (torch.Device, error) {
	if err := setThreads(c); err != nil {
		return torch.Device{}, err
	}
	return torch.ParseDevice(c.String("device"))
}

// openOptions reads --device and --dtype (and applies --threads).
func openOptions(c *cli.Context) (model.OpenOptions, error) {
	var o model.OpenOptions
	var err error
	if o.Device, err = device(c); err != nil {
		return o, err
	}
	if c.IsSet("dtype") || c.String("dtype") != "" {
		if o.DType, err = torch.ParseDType(c.String("dtype")); err != nil {
			return o, err
		}
	}
	return o, nil
}

// openModel opens --model (a folder or a bundled model's name) with its tokenizer.
func openModel(c *cli.Context) (*model.Pretrained, error) {
	o, err := openOptions(c)
	if err != nil {
		return nil, err
	}
	return model.Open(c.String("model"), o)
}

// quantizedFlag switches decoding to quantized weights (generate, serve).
var quantizedFlag = &cli.BoolFlag{Name: "quantized", Usage: "decode from quantized copies of the weights, blocks of 32 with a scale and offset each: 4 bits where that holds a weight exactly (a Q4_1, Q4_0 or Q4_K GGUF file's projections), 8 bits otherwise (a Q8_0 file's weights exactly); activations are quantized by block too, as llama.cpp does; prompts are read with the float32 weights; float32 models on the CPU only"}

// useQuantized gives p's model quantized weights when --quantized is set, and says so on
// standard error.
func useQuantized(c *cli.Context, p *model.Pretrained) error {
	if !c.Bool("quantized") {
		return nil
	}
	sum, err := model.Quantize(p.LM)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "quantized: %d projections in 4 bits, %d in 8 (%.0f MB)", sum.Bits4, sum.Bits8, float64(sum.Bytes)/1e6)
	if sum.Skipped > 0 {
		fmt.Fprintf(os.Stderr, ", %d left in float32 (rows not a multiple of 32 long)", sum.Skipped)
	}
	fmt.Fprintln(os.Stderr)
	return nil
}

// modelUsage says what --model takes, for every command that opens a model.
const modelUsage = "model: a Hugging Face folder (config.json, *.safetensors, tokenizer.json), a GGUF file, " +
	"pioneer-nano (bundled) or smollm2-135m-instruct (installed by scripts/fetch-smollm2.sh)"

// urlFlag and modelFlag name an OpenAI-compatible endpoint for a role (teacher,
// planner): --ROLE-url and --ROLE-model.
func urlFlag(role, what string) cli.Flag {
	return &cli.StringFlag{Name: role + "-url", Usage: "OpenAI-compatible endpoint (…/v1) that " + what + " (OPENAI_API_KEY, when set, is sent as its key)"}
}

func modelFlag(role string) cli.Flag {
	return &cli.StringFlag{Name: role + "-model", Usage: "the " + role + "'s model name"}
}

// redactFlag adds the user's own patterns of personal data to take out of prompts.
var redactFlag = &cli.StringSliceFlag{Name: "redact-pattern", Usage: "NAME=REGEXP: personal data to take out of what is sent to an endpoint, besides e-mail addresses, card and phone numbers (always); repeatable"}

// endpointClient is the client of role's endpoint, nil when --ROLE-url is not given.
func endpointClient(c *cli.Context, role string) (*teacher.Client, error) {
	u := c.String(role + "-url")
	if u == "" {
		return nil, nil
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return nil, fmt.Errorf("--%s-url must be an http:// or https:// URL, got %q", role, u)
	}
	pats, err := redact.ParsePatterns(c.StringSlice("redact-pattern"))
	if err != nil {
		return nil, err
	}
	red, err := redact.New(pats)
	if err != nil {
		return nil, err
	}
	return &teacher.Client{URL: u, Model: c.String(role + "-model"), APIKey: os.Getenv("OPENAI_API_KEY"), Redactor: red}, nil
}
