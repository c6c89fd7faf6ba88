// Command reliability probes production mode the way an operator would: the pioneer
// binary killed at every step of a promotion, commands raced on one run folder, hostile
// failure logs, out-of-range flags, stop requests at every stage and from outside,
// resumes with other settings. Each probe is a real `pioneer` process; each check it
// makes is counted as tried, and as failed when the state it leaves is wrong. It writes
// bench/results/reliability.json (figures <probe>_tried and <probe>_failed) and prints a
// table.
//
//	go run ./bench/reliability              # about 15 minutes on 2 CPU cores
//	go run ./bench/reliability -trials 40   # more races
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/internal/deployfixture"
	_ "github.com/pioneer-ai/pioneer/model/all" // the model families the deployment fixture trains
)

func main() {
	trials := flag.Int("trials", 20, "races of two approvals, and of two rollbacks, at once")
	out := flag.String("out", "bench/results/reliability.json", "result file")
	work := flag.String("work", "", "folder for the binary, the deployment and the runs (default: a temporary folder, removed after)")
	flag.Parse()
	if err := run(*trials, *out, *work); err != nil {
		fmt.Fprintln(os.Stderr, "bench/reliability:", err)
		os.Exit(1)
	}
}

// probes holds what the probes share: the binary, the deployment and the tallies.
type probes struct {
	bin     string
	work    string
	adapt   []string // pioneer adapt's arguments but --out
	tallies []*tally
}

type tally struct {
	name          string
	tried, failed int
	notes         []string
}

// check counts one check of a probe: failed when ok is false, with why.
func (p *probes) check(probe string, ok bool, format string, a ...any) {
	var t *tally
	for _, x := range p.tallies {
		if x.name == probe {
			t = x
		}
	}
	if t == nil {
		t = &tally{name: probe}
		p.tallies = append(p.tallies, t)
	}
	t.tried++
	if !ok {
		t.failed++
		why := fmt.Sprintf(format, a...)
		t.notes = append(t.notes, why)
		fmt.Fprintf(os.Stderr, "FAILED %s: %s\n", probe, why)
	}
}

func run(trials int, out, work string) error {
	if work == "" {
		dir, err := os.MkdirTemp("", "pioneer-reliability-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	p := &probes{work: work, bin: filepath.Join(work, "pioneer")}
	fmt.Fprintln(os.Stderr, "== building the pioneer binary")
	if b, err := exec.Command("go", "build", "-o", p.bin, "./cmd/pioneer").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, b)
	}
	fmt.Fprintln(os.Stderr, "== a deployment: pioneer-nano fine-tuned thinly on a four-topic task")
	tk, err := deployfixture.Task(filepath.Join(work, "task"))
	if err != nil {
		return err
	}
	d, err := deployfixture.Deploy(tk, filepath.Join(work, "deployment"), false)
	if err != nil {
		return err
	}
	p.adapt = []string{"adapt", "--model", "pioneer-nano", "--adapter", d.Deployed, "--task", tk.Source(), "--failures", d.Failures,
		"--parent-data", d.Parent, "--iterations", "1", "--heldout", "32", "--probes", "8", "--epochs", "4", "--batch", "8",
		"--lr", "0.005", "--device", "cpu"}
	steps := []struct {
		name string
		f    func() error
	}{
		{"kills at every promotion step", p.kills},
		{"commands raced on one run folder", func() error { return p.races(trials) }},
		{"stop requests", p.signals},
		{"hostile failure logs", func() error { return p.hostile(d) }},
		{"out-of-range flags", p.flags},
		{"resumes with other settings", func() error { return p.resumes(d) }},
	}
	for _, s := range steps {
		fmt.Fprintf(os.Stderr, "== %s\n", s.name)
		if err := s.f(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	res := bench.NewResult("reliability", "go run ./bench/reliability"+map[bool]string{true: fmt.Sprintf(" -trials %d", trials)}[trials != 20],
		"Every check runs the pioneer binary built from this commit as its own process, on a deployment of pioneer-nano fine-tuned "+
			"thinly on a four-topic task (internal/deployfixture) with a failure log holding every kind of poison and malformed line. "+
			"<probe>_tried counts the checks made, <probe>_failed those whose outcome or leftover state was wrong; every _failed "+
			"should be 0. Kills are SIGKILL at internal/crash points (PIONEER_CRASH_AT), stop requests SIGTERM at points "+
			"(PIONEER_SIGNAL_AT) or SIGINT from outside after a delay.")
	for _, t := range p.tallies {
		res.Add(t.name+"_tried", "checks", float64(t.tried), nil, "", true)
		res.Add(t.name+"_failed", "checks", float64(t.failed), nil, "", false)
		if len(t.notes) > 0 {
			res.Figures[len(res.Figures)-1].Note = strings.Join(t.notes[:min(3, len(t.notes))], " | ")
		}
	}
	res.Table(os.Stdout)
	return res.Write(out)
}
