// Package bench holds Pioneer's benchmarks and the one result format they share
// (docs/DESIGN.md §7): a JSON file per benchmark under bench/results/, printed as a table too.
// Every figure with a reference is measured against it in the same run on the same
// machine.
package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// Figure is one measured quantity.
type Figure struct {
	Name           string   `json:"name"`
	Unit           string   `json:"unit"`
	Pioneer        float64  `json:"pioneer"`
	Reference      *float64 `json:"reference"`
	ReferenceName  string   `json:"reference_name,omitempty"`
	HigherIsBetter bool     `json:"higher_is_better"`
	Speedup        *float64 `json:"speedup"`
	Note           string   `json:"note,omitempty"`
}

// Result is one benchmark file.
type Result struct {
	Benchmark string   `json:"benchmark"`
	Command   string   `json:"command"`
	Commit    string   `json:"commit"`
	Date      string   `json:"date"`
	Machine   string   `json:"machine"`
	Method    string   `json:"method,omitempty"` // repetitions, warm-up, what a median is over
	Figures   []Figure `json:"figures"`
}

// NewResult starts a result for benchmark, filling the commit, date and machine.
func NewResult(benchmark, command, method string) *Result {
	return &Result{
		Benchmark: benchmark, Command: command, Method: method,
		Commit: Commit(), Date: time.Now().UTC().Format(time.RFC3339), Machine: Machine(),
	}
}

// Add appends a figure; with a reference it computes the speedup (how many times better
// Pioneer is: pioneer/reference when higher is better, reference/pioneer otherwise).
func (r *Result) Add(name, unit string, pioneer float64, reference *float64, refName string, higherIsBetter bool) {
	f := Figure{Name: name, Unit: unit, Pioneer: pioneer, Reference: reference, HigherIsBetter: higherIsBetter}
	if reference != nil {
		f.ReferenceName = refName
		var s float64
		if higherIsBetter {
			s = pioneer / *reference
		} else {
			s = *reference / pioneer
		}
		if math.IsInf(s, 0) || math.IsNaN(s) { // a zero on one side: no finite ratio
			f.Note = fmt.Sprintf("no ratio: pioneer %g, reference %g", pioneer, *reference)
		} else {
			f.Speedup = &s
		}
	}
	r.Figures = append(r.Figures, f)
}

// Write saves the result as indented JSON.
func (r *Result) Write(path string) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // methods and notes say "->" and "<task>": kept readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, b.Bytes())
}

// Table writes the figures as an aligned text table.
func (r *Result) Table(w io.Writer) {
	fmt.Fprintf(w, "%s — %s — %s\n", r.Benchmark, r.Machine, r.Commit)
	fmt.Fprintf(w, "%-36s %-10s %14s %14s %9s\n", "figure", "unit", "pioneer", "reference", "speedup")
	for _, f := range r.Figures {
		ref, sp := "-", "-"
		if f.Reference != nil {
			ref = fmt.Sprintf("%.4g", *f.Reference)
		}
		if f.Speedup != nil {
			sp = fmt.Sprintf("%.2fx", *f.Speedup)
		}
		fmt.Fprintf(w, "%-36s %-10s %14.4g %14s %9s\n", f.Name, f.Unit, f.Pioneer, ref, sp)
	}
	if len(r.Figures) > 0 && r.Figures[0].ReferenceName != "" {
		fmt.Fprintf(w, "reference: %s\n", r.Figures[0].ReferenceName)
	}
}

// ReferencePython returns python when set, else the interpreter of the reference
// environment scripts/reference-env.sh sets up (creating it on first use).
func ReferencePython(python string) (string, error) {
	if python != "" {
		return python, nil
	}
	b, err := exec.Command("bash", "scripts/reference-env.sh").Output()
	if err != nil {
		return "", fmt.Errorf("setting up the Python reference (scripts/reference-env.sh): %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// RunPython runs a reference script: it writes spec as JSON to a temporary file, runs
// `python script args... SPECFILE` (stderr passes through) and decodes the JSON the script
// prints into out.
func RunPython(python, script string, args []string, spec, out any) error {
	f, err := os.CreateTemp("", "pioneer-bench-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := json.NewEncoder(f).Encode(spec); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	cmd := exec.Command(python, append(append([]string{script}, args...), f.Name())...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %w", script, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: output: %w", script, err)
	}
	return nil
}

// Median of v (v is sorted in place).
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Commit is the current git commit, with "-dirty" when tracked files other than
// benchmark results have changes.
func Commit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results").Output()
	if err == nil && len(st) > 0 {
		c += "-dirty"
	}
	return c
}

// Machine describes this machine: cores, memory and GPU (when nvidia-smi names one).
func Machine() string {
	mem := "? GiB"
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var kb int64
			if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); n == 1 {
				mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
			}
		}
		f.Close()
	}
	gpu := "no GPU"
	if out, err := exec.Command("nvidia-smi", "--query-gpu=name", "--format=csv,noheader").Output(); err == nil {
		if name := strings.TrimSpace(strings.Split(string(out), "\n")[0]); name != "" {
			gpu = name
		}
	}
	return fmt.Sprintf("%d cores, %s, %s", runtime.NumCPU(), mem, gpu)
}

// ReadResult reads a result file that Result.Write wrote.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// MergeFile is Merge with the earlier result read from file (a -merge flag's value).
func (r *Result) MergeFile(file string) error {
	old, err := ReadResult(file)
	if err != nil {
		return fmt.Errorf("-merge: %w", err)
	}
	return r.Merge(old, file)
}

// Merge keeps the figures of an earlier result of the same benchmark (read from file) that
// r does not measure, for a run that measured only what the earlier one lacked or redid
// some of it: r's figures replace the earlier ones of the same name where they stood, the
// others are kept as they were measured, r's new ones follow the figure they followed in
// r. The method says which figures came from where.
func (r *Result) Merge(old *Result, file string) error {
	if old.Benchmark != r.Benchmark {
		return fmt.Errorf("merge %s: benchmark %q, not %q", file, old.Benchmark, r.Benchmark)
	}
	fresh := map[string]int{}
	for i, f := range r.Figures {
		fresh[f.Name] = i
	}
	used := make([]bool, len(r.Figures))
	merged := make([]Figure, 0, len(old.Figures)+len(r.Figures))
	kept := 0
	for _, f := range old.Figures {
		if i, ok := fresh[f.Name]; ok {
			merged, used[i] = append(merged, r.Figures[i]), true
			continue
		}
		merged = append(merged, f)
		kept++
	}
	for i, f := range r.Figures {
		if used[i] {
			continue
		}
		at := len(merged)
		if i > 0 {
			for j, g := range merged {
				if g.Name == r.Figures[i-1].Name {
					at = j + 1
				}
			}
		}
		merged = append(merged[:at], append([]Figure{f}, merged[at:]...)...)
	}
	r.Figures = merged
	r.Method += fmt.Sprintf(" Merged with the earlier result %s (command `%s`, commit %s, %s): %d of its figures, the ones this run did not measure, "+
		"are kept as that run measured them; %d figures are this run's. The earlier run's method: %s",
		file, old.Command, old.Commit, old.Date, kept, len(r.Figures)-kept, old.Method)
	return nil
}
