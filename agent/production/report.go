package production

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"image/color"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/lineage"
	"github.com/pioneer-ai/pioneer/agent/search"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
	"github.com/pioneer-ai/pioneer/internal/plot"
)

// writeReport renders a run folder's lineage and results as report.md and report.html
// (with metric.png: the held-out metric of every candidate per iteration against the
// deployed model's).
func writeReport(run *agent.Run) error {
	runDir, lin := run.Dir, run.Lineage
	var o Outcome
	if err := readOptional(filepath.Join(runDir, "outcome.json"), &o); err != nil {
		return err
	}
	var diag Diagnosis
	if err := readOptional(filepath.Join(runDir, "diagnosis.json"), &diag); err != nil {
		return err
	}
	var base baseline
	if _, err := lin.Get("baseline", &base); err != nil {
		return err
	}
	vs, err := versions.Open(runDir, false)
	if err != nil {
		return err
	}
	cur, err := vs.Current()
	if err != nil && !errors.Is(err, versions.ErrNoCurrent) {
		return err
	}
	list, err := vs.List()
	if err != nil {
		return err
	}

	var cands []candidate
	var iterations []string
	for _, e := range lin.Events() {
		if e.Step == "gate" {
			var c candidate
			if err := json.Unmarshal(e.Data, &c); err != nil {
				return fmt.Errorf("%s: line %d: %w", lin.Path(), e.Seq, err)
			}
			cands = append(cands, c)
		}
		if e.Step == "curriculum" {
			iterations = append(iterations, string(e.Data))
		}
	}

	var md strings.Builder
	fmt.Fprintf(&md, "# Production run: %s\n\n", filepath.Base(runDir))
	fmt.Fprintf(&md, "**Verdict: %s.** Deployed version now: `%s` (versions: %s).\n\n", orDash(string(o.Verdict)), orDash(cur), strings.Join(list, ", "))
	if o.Candidate != "" {
		fmt.Fprintf(&md, "Chosen candidate: `%s`.\n\n", o.Candidate)
	}
	for _, r := range o.Reasons {
		fmt.Fprintf(&md, "- %s\n", r)
	}
	if len(o.Reasons) > 0 {
		md.WriteString("\n")
	}
	md.WriteString("## Triage\n\n")
	fmt.Fprintf(&md, "%d log lines: %d quarantined (did not parse or fit the task; `quarantine.jsonl`), %d clean, %d fixable, %d poison (never trained on). Per line: `triage.jsonl`.\n\n",
		o.Triage.Read, o.Triage.Quarantined, o.Triage.Clean, o.Triage.Fixable, o.Triage.Poison)
	if len(o.Triage.Kinds) > 0 {
		md.WriteString("| class: kind | lines |\n|---|---|\n")
		for _, k := range slices.Sorted(maps.Keys(o.Triage.Kinds)) {
			fmt.Fprintf(&md, "| %s | %d |\n", strings.TrimSuffix(k, ":"), o.Triage.Kinds[k])
		}
		md.WriteString("\n")
	}
	md.WriteString("## Diagnosis\n\n")
	if len(diag.Patterns) == 0 {
		md.WriteString("No patterns.\n\n")
	} else {
		md.WriteString("| pattern | failures | fresh probes wrong | confirmed |\n|---|---|---|---|\n")
		for _, p := range diag.Patterns {
			if len(p.Failures) < 2 && !p.Confirmed {
				continue
			}
			fmt.Fprintf(&md, "| %s | %d | %d / %d | %v |\n", p.ID, len(p.Failures), p.ProbeErrors, p.Probes, p.Confirmed)
		}
		md.WriteString("\n(Patterns with a single failure and no confirmation are left out of this table; `diagnosis.json` has all.)\n\n")
	}
	md.WriteString("## Candidates and the gate\n\n")
	fmt.Fprintf(&md, "Deployed: held-out %s %.4f on %d examples; R = %d examples (%s); previous-version set %.4f.\n\n",
		metricName(lin), base.Deployed.HeldOut, len(base.HeldOut), len(base.R), base.RNote, base.Deployed.Previous)
	if len(cands) > 0 {
		md.WriteString("| candidate | training examples | held-out | held-back failures | R broken | previous set | verdict |\n|---|---|---|---|---|---|---|\n")
		for _, c := range cands {
			fmt.Fprintf(&md, "| %s | %d | %.4f | %.4f | %d | %.4f | %s |\n", c.Name, c.Train, c.Scores.HeldOut, c.Scores.Failures,
				c.Scores.Regressions, c.Scores.Previous, c.Verdict)
		}
		var graph struct {
			Nodes []search.Node[pipeline] `json:"nodes"`
		}
		if ok, err := lin.Get("search", &graph); err != nil {
			return err
		} else if ok && len(graph.Nodes) > 0 {
			md.WriteString("\n### Monte-Carlo graph search\n\nEach candidate is one change away from the one it was reached from; reward = held-out gain over the deployed model, less 0.01 per example of R broken beyond ε and any shortfall on the previous version's set.\n\n")
			md.WriteString("| candidate | reached from | change | similar per failure | gold copies | R replayed | epochs | lr | rank | reward |\n|---|---|---|---|---|---|---|---|---|---|\n")
			for _, n := range graph.Nodes {
				rank := "-" // every weight trained
				if n.P.Rank > 0 {
					rank = fmt.Sprint(n.P.Rank)
				}
				fmt.Fprintf(&md, "| search/%s | %s | %s | %d | %d | %v | %d | %g | %s | %+.4f |\n", n.Name, orDash(n.Parent), orDash(n.Move),
					n.P.Similar, n.P.GoldX, n.P.ReplayR, n.P.Epochs, n.P.LR, rank, n.Reward)
			}
		}
		md.WriteString("\n![metric per candidate](metric.png)\n\n")
		if err := metricPlot(filepath.Join(runDir, "metric.png"), base.Deployed.HeldOut, cands); err != nil {
			return err
		}
	}
	for _, it := range iterations {
		fmt.Fprintf(&md, "- curriculum: `%s`\n", it)
	}
	// Confusion before / after and regressions, from the saved predictions.
	var before, after task.Result
	if err := readOptional(filepath.Join(runDir, "deployed_heldout.json"), &before); err != nil {
		return err
	}
	if o.Candidate != "" {
		if err := readOptional(filepath.Join(runDir, filepath.FromSlash(o.Candidate), "heldout.json"), &after); err != nil {
			return err
		}
		if len(before.Confusion)+len(after.Confusion) > 0 {
			md.WriteString("\n## Confusions on the held-out set, before → after\n\n| gold → predicted | deployed | chosen |\n|---|---|---|\n")
			seen := map[string]bool{}
			for _, p := range append(before.TopConfusions(12), after.TopConfusions(6)...) {
				k := p.Gold + " → " + p.Predicted
				if seen[k] {
					continue
				}
				seen[k] = true
				fmt.Fprintf(&md, "| %s | %d | %d |\n", k, before.Confusion[p.Gold][p.Predicted], after.Confusion[p.Gold][p.Predicted])
			}
		}
	}
	if o.Chosen != nil && len(o.Chosen.Broken) > 0 {
		fmt.Fprintf(&md, "\n## Regressions of the chosen candidate (%d examples of R)\n\n", len(o.Chosen.Broken))
		byID := map[string]task.Example{}
		for _, ex := range base.R {
			byID[ex.ID] = ex
		}
		for _, id := range o.Chosen.Broken {
			fmt.Fprintf(&md, "- `%s`: %s\n", id, byID[id].Text)
		}
	}
	md.WriteString("\n## Lineage\n\n")
	for _, e := range lin.Events() {
		fmt.Fprintf(&md, "%d. %s `%s` %s\n", e.Seq, e.Time.Format("15:04:05"), e.Step, e.Key)
	}
	fmt.Fprintf(&md, "\nEvery step in full: `lineage.jsonl`. Roll back: `pioneer rollback [--to vN] %s`.\n", runDir)
	if err := fsutil.WriteFileAtomic(filepath.Join(runDir, "report.md"), []byte(md.String())); err != nil {
		return err
	}
	return writeHTML(runDir, md.String())
}

func metricName(lin *lineage.Log) string {
	var start struct {
		Info struct {
			Task string `json:"task"`
		} `json:"info"`
	}
	if _, err := lin.Get("start", &start); err != nil {
		return "metric"
	}
	return orDash(start.Info.Task) + " metric"
}

// readOptional decodes a JSON file of the run folder into v; a file that is not there
// (yet) leaves v as it is.
func readOptional(path string, v any) error {
	_, err := fsutil.ReadJSON(path, v)
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func metricPlot(path string, deployed float64, cands []candidate) error {
	byRecipe := map[string]*plot.Series{}
	var names []string
	colors := []color.RGBA{{200, 60, 40, 255}, {30, 130, 60, 255}, {140, 60, 160, 255}, {200, 140, 20, 255}}
	maxX := 1.0
	xLabel := "iteration"
	for _, c := range cands {
		parts := strings.SplitN(c.Name, "/", 2)
		var x float64
		series := parts[1]
		if parts[0] == "search" { // Monte-Carlo search: candidates in order of evaluation
			fmt.Sscanf(parts[1], "n%g", &x)
			x++
			series, xLabel = "searched", "candidate, in order of evaluation"
		} else {
			fmt.Sscanf(parts[0], "iter%g", &x)
		}
		maxX = max(maxX, x)
		s := byRecipe[series]
		if s == nil {
			name := "candidate " + series
			if series == "searched" {
				name = "searched candidates"
			}
			s = &plot.Series{Name: name, Color: colors[len(names)%len(colors)]}
			byRecipe[series] = s
			names = append(names, series)
		}
		s.X, s.Y = append(s.X, x), append(s.Y, c.Scores.HeldOut)
	}
	series := []plot.Series{{Name: "deployed", X: []float64{1, maxX}, Y: []float64{deployed, deployed}, Color: color.RGBA{30, 90, 200, 255}}}
	sort.Strings(names)
	for _, n := range names {
		series = append(series, *byRecipe[n])
	}
	return plot.Lines(path, "held-out metric", xLabel, series)
}

// writeHTML renders the Markdown report as a plain HTML page with the plot inlined.
func writeHTML(runDir, md string) error {
	var b strings.Builder
	b.WriteString("<!doctype html><meta charset=utf-8><title>Pioneer production run</title>\n<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>\n")
	inTable := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(line, "|"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			if strings.HasPrefix(strings.TrimSpace(cells[0]), "---") {
				continue
			}
			if !inTable {
				b.WriteString("<table>\n")
				inTable = true
			}
			b.WriteString("<tr>")
			for _, c := range cells {
				b.WriteString("<td>" + inline(strings.TrimSpace(c)) + "</td>")
			}
			b.WriteString("</tr>\n")
			continue
		case inTable:
			b.WriteString("</table>\n")
			inTable = false
		}
		switch {
		case strings.HasPrefix(line, "# "):
			b.WriteString("<h1>" + inline(line[2:]) + "</h1>\n")
		case strings.HasPrefix(line, "## "):
			b.WriteString("<h2>" + inline(line[3:]) + "</h2>\n")
		case strings.HasPrefix(line, "!["):
			if png, err := os.ReadFile(filepath.Join(runDir, "metric.png")); err == nil {
				b.WriteString(`<img alt="metric per iteration" src="data:image/png;base64,` + base64.StdEncoding.EncodeToString(png) + `">` + "\n")
			}
		case line == "":
		default:
			b.WriteString("<p>" + inline(line) + "</p>\n")
		}
	}
	if inTable {
		b.WriteString("</table>\n")
	}
	return fsutil.WriteFileAtomic(filepath.Join(runDir, "report.html"), []byte(b.String()))
}

func inline(s string) string {
	s = html.EscapeString(s)
	for _, m := range []struct{ mark, open, close string }{{"**", "<b>", "</b>"}, {"`", "<code>", "</code>"}} {
		for strings.Count(s, m.mark) >= 2 {
			s = strings.Replace(s, m.mark, m.open, 1)
			s = strings.Replace(s, m.mark, m.close, 1)
		}
	}
	return s
}
