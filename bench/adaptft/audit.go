package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/triage"
	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/bench/judge"
)

// auditCounts is triage's score on one scenario's seen lines against its truth file.
type auditCounts struct {
	Poisoned, Caught   map[string]int // per poison kind: lines, lines triage called poison
	Clean, FalseAlarms int            // lines with no poison, and those triage called poison
	Alarms             map[string]int // the kinds triage gave its false alarms
}

// auditTriage runs production mode's triage, its text checks alone (no model: no
// spelling judged by a language model, no second look by the deployed model), on every
// seen line of a generated scenario as if it were a logged failure, against the
// labelled data triage has in production mode (the agent's pool and the parent data),
// and counts against truth.jsonl what it calls poison.
func auditTriage(dir string) (*auditCounts, error) {
	t, err := task.Load(filepath.Join(dir, "task"))
	if err != nil {
		return nil, err
	}
	pool, err := t.Split("train")
	if err != nil {
		return nil, err
	}
	parent, _, err := t.ReadFile(filepath.Join(dir, "parent.jsonl"))
	if err != nil {
		return nil, err
	}
	truth, err := judge.ReadJSONL[truthRecord](filepath.Join(dir, "truth.jsonl"))
	if err != nil {
		return nil, err
	}
	byID := map[string]truthRecord{}
	for _, r := range truth {
		byID[r.ID] = r
	}
	tr := triage.New(t, append(append([]task.Example(nil), pool...), parent...))
	c := &auditCounts{Poisoned: map[string]int{}, Caught: map[string]int{}, Alarms: map[string]int{}}
	for k := range poisonRates {
		logs, err := judge.ReadJSONL[logRecord](filepath.Join(dir, fmt.Sprintf("stage%d", k), "logs.jsonl"))
		if err != nil {
			return nil, err
		}
		exs, _ := examples(t, logs)
		for _, ex := range exs {
			rec, ok := byID[ex.ID]
			if !ok {
				return nil, fmt.Errorf("%s: line %s is not in truth.jsonl", dir, ex.ID)
			}
			v := tr.Triage(triage.Answered(t, ex))
			poison := v.Class == triage.Poison
			if rec.Poison != "" {
				c.Poisoned[rec.Poison]++
				if poison {
					c.Caught[rec.Poison]++
				}
				continue
			}
			c.Clean++
			if poison {
				c.FalseAlarms++
				c.Alarms[string(v.Kind)]++
			}
		}
	}
	return c, nil
}

// triageAudit audits triage on every named scenario (generated first if need be) and
// writes the shares caught per poison kind and the false alarms to result.
func triageAudit(names []string, dataDir, out string, seed uint64, result string) error {
	res := bench.NewResult("adaptft_triage", fmt.Sprintf("go run ./bench/adaptft -triage-audit -seed %d -scenario|-all", seed),
		fmt.Sprintf("Production mode's triage (agent/triage), its text checks only (no language model judging spelling, no second look by "+
			"the deployed model), on every seen line of AdaptFT-Bench seed %d as if each were a logged failure, against the labelled data "+
			"triage has in production mode (the agent's pool and the parent data; not the traffic, which needs a deployment). "+
			"<scenario>_triage_<poison kind>_caught = the share of the lines with that poison that triage calls poison; "+
			"<scenario>_triage_false_alarms = the share of the lines without poison (clean or fixable) that it calls poison. "+
			"No model is run: a few seconds a scenario.", seed))
	var allPoisoned, allCaught, allClean, allAlarms int
	for _, n := range names {
		_, dir, err := run(n, dataDir, out, seed)
		if err != nil {
			return err
		}
		c, err := auditTriage(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		kinds := make([]string, 0, len(c.Poisoned))
		for k := range c.Poisoned {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			res.Add(fmt.Sprintf("%s_triage_%s_caught", n, k), "share", share(c.Caught[k], c.Poisoned[k]), nil, "", true)
			res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("%d of %d", c.Caught[k], c.Poisoned[k])
			allPoisoned += c.Poisoned[k]
			allCaught += c.Caught[k]
		}
		res.Add(n+"_triage_false_alarms", "share", share(c.FalseAlarms, c.Clean), nil, "", false)
		res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("%d of %d lines without poison called poison%s", c.FalseAlarms, c.Clean, alarmKinds(c.Alarms))
		allClean += c.Clean
		allAlarms += c.FalseAlarms
	}
	res.Add("triage_poison_caught", "share", share(allCaught, allPoisoned), nil, "", true)
	res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("%d of %d poisoned seen lines, scenarios %s", allCaught, allPoisoned, strings.Join(names, ", "))
	res.Add("triage_false_alarms", "share", share(allAlarms, allClean), nil, "", false)
	res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("%d of %d seen lines without poison", allAlarms, allClean)
	res.Table(os.Stdout)
	if result == "" {
		result = "bench/results/adaptft_triage.json"
	}
	if err := res.Write(result); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", result)
	return nil
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func alarmKinds(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var ks []string
	for k, n := range m {
		ks = append(ks, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(ks)
	return " (" + strings.Join(ks, ", ") + ")"
}
