package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/internal/plot"
)

// combine merges the results of every scenario the harness has finished for a seed and
// base model into one result file with the count of scenarios the agent improved or
// preserved, and draws its plot (one panel per scenario: deployed, naive and agent per
// stage) beside it.
func combine(out string, seed uint64, h *harness, path string) error {
	files, err := filepath.Glob(filepath.Join(out, "*", fmt.Sprintf("seed%d", seed), h.workName(), "result.json"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no scenario of seed %d has a harness result under %s", seed, out)
	}
	slices.Sort(files)
	type scenarioRun struct {
		name string
		r    *bench.Result
	}
	var found []scenarioRun
	for _, f := range files {
		r, err := bench.ReadResult(f)
		if err != nil {
			return err
		}
		found = append(found, scenarioRun{strings.TrimPrefix(r.Benchmark, "adaptft_"), r})
	}
	has := func(n string) bool {
		return slices.ContainsFunc(found, func(s scenarioRun) bool { return s.name == n })
	}
	// The scenarios run on another machine (their run folders are not here) are kept
	// from the result file this one replaces.
	if _, err := os.Stat(path); err == nil {
		old, err := bench.ReadResult(path)
		if err != nil {
			return err
		}
		for _, n := range scenarioNames() {
			if has(n) {
				continue
			}
			if r := restoreScenario(old, n); r != nil {
				if !strings.Contains(r.Method, "rerun") {
					r.Method += fmt.Sprintf(" (Kept from the earlier %s: not rerun in this combination.)", filepath.Base(path))
				}
				found = append(found, scenarioRun{n, r})
			}
		}
	}
	order := scenarioNames()
	slices.SortStableFunc(found, func(a, b scenarioRun) int { return slices.Index(order, a.name) - slices.Index(order, b.name) })
	names, runs := make([]string, len(found)), make([]*bench.Result, len(found))
	for i, f := range found {
		names[i], runs[i] = f.name, f.r
	}
	var missing []string
	for _, n := range scenarioNames() {
		if !slices.Contains(names, n) {
			missing = append(missing, n)
		}
	}
	cmd := fmt.Sprintf("go run ./bench/adaptft -all -seed %d", seed)
	if len(missing) > 0 { // the scenarios run, each by its own command
		var cmds []string
		for _, r := range runs {
			cmds = append(cmds, r.Command)
		}
		cmd = strings.Join(cmds, " && ")
	} else if suffix := bench.ResultSuffix(h.Model); suffix != "" {
		cmd += " -model " + h.Model
	}
	method := fmt.Sprintf("AdaptFT-Bench, seed %d, base model %s: the scenarios %s, each run by `go run ./bench/adaptft -scenario NAME` (the per-scenario methods follow).", seed, h.Model, strings.Join(names, ", "))
	if len(missing) > 0 {
		method += " Not run: " + strings.Join(missing, ", ") + "."
	}
	res := bench.NewResult("adaptft"+bench.ResultSuffix(h.Model), cmd, method)
	commits := map[string]bool{}
	ok := 0.0
	var panels []plot.Panel
	for i, r := range runs {
		res.Method += " " + names[i] + " (commit " + r.Commit + "): " + r.Method
		commits[r.Commit] = true
		res.Figures = append(res.Figures, r.Figures...)
		p := plot.Panel{Title: names[i], XLabel: "stage (poison 0/15/25/40 %)"}
		series := map[string]*plot.Series{}
		for _, kind := range []struct {
			name string
			c    color.RGBA
		}{{"deployed", color.RGBA{120, 120, 120, 255}}, {"naive", color.RGBA{200, 40, 40, 255}}, {"agent", color.RGBA{30, 90, 200, 255}}} {
			series[kind.name] = &plot.Series{Name: kind.name, Color: kind.c}
		}
		for _, f := range r.Figures {
			if f.Name == names[i]+"_improve_or_preserve" {
				ok += f.Pioneer
			}
			rest, found := strings.CutPrefix(f.Name, names[i]+"_stage")
			if !found {
				continue
			}
			k, which, _ := strings.Cut(rest, "_")
			stage, err := strconv.Atoi(k)
			if s := series[strings.TrimSuffix(which, "_metric")]; err == nil && s != nil {
				s.X, s.Y = append(s.X, float64(stage)), append(s.Y, f.Pioneer)
			}
		}
		for _, k := range []string{"deployed", "naive", "agent"} {
			p.Series = append(p.Series, *series[k])
		}
		panels = append(panels, p)
	}
	res.Add("improve_or_preserve_scenarios", "scenarios", ok, nil, "", true)
	res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("of the %d scenarios run (%s): the agent's last stage at or above the first deployment", len(runs), strings.Join(names, ", "))
	if len(commits) == 1 {
		res.Commit = runs[0].Commit
	}
	res.Table(os.Stdout)
	if err := res.Write(path); err != nil {
		return err
	}
	png := strings.TrimSuffix(path, ".json") + ".png"
	if err := plot.Grid(png, 2, panels); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s and %s\n", path, png)
	return nil
}

// restoreScenario takes one scenario's result back out of a combined result: its
// figures (named "<name>_..."), the part of the method combine wrote for it
// (" <name> (commit C): ...", up to the next scenario's part) and its command; nil when
// the combined result holds none of its figures.
func restoreScenario(combined *bench.Result, name string) *bench.Result {
	r := &bench.Result{Benchmark: "adaptft_" + name, Date: combined.Date, Machine: combined.Machine}
	for _, f := range combined.Figures {
		if strings.HasPrefix(f.Name, name+"_") {
			r.Figures = append(r.Figures, f)
		}
	}
	if len(r.Figures) == 0 {
		return nil
	}
	marker := " " + name + " (commit "
	if i := strings.Index(combined.Method, marker); i >= 0 {
		rest := combined.Method[i+len(marker):]
		commit, text, _ := strings.Cut(rest, "): ")
		end := len(text)
		for _, other := range scenarioNames() {
			if j := strings.Index(text, " "+other+" (commit "); j >= 0 && j < end {
				end = j
			}
		}
		r.Commit, r.Method = commit, text[:end]
	}
	for _, c := range strings.Split(combined.Command, " && ") {
		if strings.Contains(c+" ", "-scenario "+name+" ") {
			r.Command = c
		}
	}
	return r
}
