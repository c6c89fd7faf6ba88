package production

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/pioneer-ai/pioneer/internal/crash"
	"github.com/pioneer-ai/pioneer/internal/fsutil"

	"github.com/pioneer-ai/pioneer/agent"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/triage"
	"github.com/pioneer-ai/pioneer/lora"
)

// triaged is what the triage stage gives the later ones.
type triaged struct {
	counts   Counts
	admitted []triage.Failure // clean and fixable lines
	// gold and variants are the training failures' examples: the cleaned line with its
	// expected answer, and the line as logged (fixable lines only). The other 30 % of the
	// admitted failures are held back for evaluation (hold).
	gold, variants map[string]Item
	hold           []task.Example
	tr             *triage.Triager
	// usable says whether a pool example is fresh: neither the parent's training data
	// nor a logged input.
	usable func(i int) bool
	// trafficPoison are the traffic lines triage calls poison: marked right, but not to
	// be trained on (never replayed).
	trafficPoison map[string]bool
}

// triageLog reads and triages the failure log: quarantine.jsonl gets the lines that
// cannot be used, triage.jsonl every verdict. The base model judges spelling
// corrections; the deployed model takes the second look at entity types.
func (in *inputs) triageLog(ctx context.Context, run *agent.Run) (*triaged, error) {
	cfg := in.cfg
	failures, quarantined := in.failures, in.quarantined
	if err := fsutil.WriteJSONL(run.Path("quarantine.jsonl"), quarantined); err != nil {
		return nil, err
	}
	// Triage compares the log with every labelled example at hand: the pool, the
	// parent's training data and the traffic the deployed model got right, less the
	// traffic's own poison (triaged first), which is evidence of nothing. Only the task's
	// own data vouch for injection-like phrases (Triager.VouchWith): on AdaptFT-Bench's
	// Banking77, injections in the traffic and in the parent data (a version's training
	// set, fed by the previous stage's log) let 17 injected and jailbroken log lines of
	// the same words through at stages 2 and 3.
	trafficPoison, err := in.triageTraffic(ctx, run)
	if err != nil {
		return nil, err
	}
	reference := append(append([]task.Example(nil), in.pool...), in.parent...)
	for _, ex := range in.traffic {
		if !trafficPoison[ex.ID] {
			reference = append(reference, ex)
		}
	}
	tr := triage.New(in.t, reference)
	tr.VouchWith(in.pool)
	tr.Lexicon = triage.TokenLexicon(in.base.Tokenizer)
	var lmErr error
	tr.Likelier = triage.Likelier(in.base.LM, in.base.Tokenizer, in.base.EOS[0], &lmErr)
	verdicts := make([]triage.Verdict, len(failures))
	for i, f := range failures {
		if i%64 == 0 {
			crash.Point("triage:lines")
			if err := agent.Stopped(ctx); err != nil {
				return nil, err
			}
		}
		verdicts[i] = tr.Triage(f)
	}
	if lmErr != nil {
		return nil, fmt.Errorf("triage: %w", lmErr)
	}
	err = in.withDeployed(func() error {
		return tr.ModelCheck(ctx, in.base.LM, in.base.Tokenizer, failures, verdicts, in.eopts)
	})
	if err != nil {
		return nil, err
	}
	out := &triaged{tr: tr, gold: map[string]Item{}, variants: map[string]Item{}, trafficPoison: trafficPoison,
		counts: Counts{Read: len(failures) + len(quarantined), Quarantined: len(quarantined), Kinds: map[string]int{}}}
	for i, f := range failures {
		v := verdicts[i]
		out.counts.Kinds[string(v.Class)+":"+string(v.Kind)]++
		switch v.Class {
		case triage.Poison:
			out.counts.Poison++
			continue
		case triage.Fixable:
			out.counts.Fixable++
			ex := f.Example()
			out.variants[f.ID] = Item{Example: ex, Source: SrcVariant}
			ex.Text = v.Cleaned
			out.gold[f.ID] = Item{Example: ex, Source: SrcGold}
		default:
			out.counts.Clean++
			out.gold[f.ID] = Item{Example: f.Example(), Source: SrcGold}
		}
		out.admitted = append(out.admitted, f)
	}
	if err := fsutil.WriteJSONL(run.Path("triage.jsonl"), verdicts); err != nil {
		return nil, err
	}
	if err := run.Lineage.Append("triage", "triage", out.counts); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "triage   %d log lines: %d quarantined (quarantine.jsonl), %d clean, %d fixable, %d poison (triage.jsonl)\n",
		out.counts.Read, out.counts.Quarantined, out.counts.Clean, out.counts.Fixable, out.counts.Poison)
	out.holdBack()
	// Pool entries already seen (the parent's data, the logged inputs) are not fresh.
	seen := map[string]bool{}
	for _, ex := range in.parent {
		seen[ex.Text] = true
	}
	for _, f := range failures {
		seen[f.Input] = true
	}
	out.usable = func(i int) bool { return !seen[in.pool[i].Text] }
	return out, nil
}

// triageTraffic triages the traffic (answers marked right, which R replays) against the
// labelled data other than the traffic itself (a line is never its own evidence), with
// the stricter off-domain limit (Triager.Strict): a right answer may still be poison, an
// injection or an off-domain line the model happened to answer as its user marked it.
// The poison verdicts go to traffic_triage.jsonl.
func (in *inputs) triageTraffic(ctx context.Context, run *agent.Run) (map[string]bool, error) {
	if len(in.traffic) == 0 {
		return nil, nil
	}
	tr := triage.New(in.t, append(append([]task.Example(nil), in.pool...), in.parent...))
	tr.VouchWith(in.pool)
	tr.Lexicon = triage.TokenLexicon(in.base.Tokenizer)
	tr.Strict() // a genuine line turned away only goes unreplayed
	poison := map[string]bool{}
	var verdicts []triage.Verdict
	for i, ex := range in.traffic {
		if i%64 == 0 {
			if err := agent.Stopped(ctx); err != nil {
				return nil, err
			}
		}
		if v := tr.Triage(triage.Answered(in.t, ex)); v.Class == triage.Poison {
			poison[ex.ID] = true
			verdicts = append(verdicts, v)
		}
	}
	if err := fsutil.WriteJSONL(run.Path("traffic_triage.jsonl"), verdicts); err != nil {
		return nil, err
	}
	fmt.Fprintf(in.cfg.Log, "triage   traffic: %d of %d lines marked right are poison, never replayed (traffic_triage.jsonl)\n", len(poison), len(in.traffic))
	return poison, nil
}

// holdBack keeps 30 % of the admitted failures out of training for evaluation, chosen
// stably by their content (input and expected answer), not their ids: a failure logged
// twice falls on one side (never trained on and scored too), and the split does not
// depend on the ids a server happens to give its requests.
func (tg *triaged) holdBack() {
	for _, f := range tg.admitted {
		h := fnv.New32a()
		h.Write([]byte(f.Input))
		h.Write([]byte{0})
		h.Write([]byte(f.Expected))
		if h.Sum32()%10 < 3 {
			tg.hold = append(tg.hold, tg.gold[f.ID].Example)
			delete(tg.gold, f.ID)
			delete(tg.variants, f.ID)
		}
	}
}

// withDeployed runs f with the deployed version in place of the base model: its adapter
// attached, or (a model fine-tuned in every weight) its weights loaded, and the base
// restored after.
func (in *inputs) withDeployed(f func() error) error {
	cur, err := in.vs.Current()
	dir := in.cfg.Deployed
	if err != nil {
		return err
	}
	if cur != "" {
		dir = in.vs.Dir(cur)
	}
	if in.full {
		if err := in.swap(dir); err != nil {
			return fmt.Errorf("deployed model %s: %w", dir, err)
		}
		ferr := f()
		if err := in.swap(in.base.Dir); err != nil {
			return err
		}
		return ferr
	}
	set, err := lora.Load(dir, in.base.LM)
	if err != nil {
		return fmt.Errorf("deployed adapter %s: %w", dir, err)
	}
	defer set.Close()
	return f()
}
