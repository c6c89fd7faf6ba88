package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
	"github.com/pioneer-ai/pioneer/model/chat"
)

// Example is one supervised fine-tuning record, in one of the three common JSONL shapes:
// {"prompt", "completion"}, {"messages": [...]} (chat; the last message is the target
// and must be the assistant's) or {"text"} (every token is a target).
type Example struct {
	Prompt     string
	Completion string
	Messages   []chat.Message
	Text       string
	Line       int // 1-based line in its file
}

// LineError is a line of a JSONL file that could not be used.
type LineError struct {
	Line int
	Err  error
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// ReadExamples reads a JSONL training file. A malformed line stops the read with an error
// naming the file and line, unless skipBad is set: then such lines are returned in skipped
// and the rest is used. An empty file (or one with no usable line) is an error.
func ReadExamples(path string, skipBad bool) (examples []Example, skipped []LineError, err error) {
	err = jsonl.Lines(path, func(n int, line []byte) error {
		ex, perr := parseExample(line)
		if perr != nil {
			if !skipBad {
				return fmt.Errorf("%s:%d: %w (pass the skip option to leave bad lines out)", path, n, perr)
			}
			skipped = append(skipped, LineError{Line: n, Err: perr})
			return nil
		}
		ex.Line = n
		examples = append(examples, ex)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(examples) == 0 {
		return nil, skipped, fmt.Errorf("%s: no training examples", path)
	}
	return examples, skipped, nil
}

func parseExample(line []byte) (Example, error) {
	var rec struct {
		Prompt     *string `json:"prompt"`
		Completion *string `json:"completion"`
		Text       *string `json:"text"`
		Messages   []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return Example{}, err
	}
	switch {
	case len(rec.Messages) > 0:
		var ex Example
		for i, m := range rec.Messages {
			if m.Role == "" {
				return Example{}, fmt.Errorf("message %d has no role", i)
			}
			ex.Messages = append(ex.Messages, chat.Message{Role: m.Role, Content: m.Content})
		}
		if last := rec.Messages[len(rec.Messages)-1]; last.Role != "assistant" {
			return Example{}, fmt.Errorf("the last message is %q's; the target must be the assistant's", last.Role)
		}
		return ex, nil
	case rec.Prompt != nil || rec.Completion != nil:
		if rec.Prompt == nil || rec.Completion == nil {
			return Example{}, fmt.Errorf(`"prompt" and "completion" go together`)
		}
		if *rec.Completion == "" {
			return Example{}, fmt.Errorf("empty completion")
		}
		return Example{Prompt: *rec.Prompt, Completion: *rec.Completion}, nil
	case rec.Text != nil:
		if *rec.Text == "" {
			return Example{}, fmt.Errorf("empty text")
		}
		return Example{Text: *rec.Text}, nil
	}
	return Example{}, fmt.Errorf(`no "prompt"/"completion", "messages" or "text"`)
}

// Encoder turns text into token ids (model/tokenizer.Tokenizer is one).
type Encoder interface {
	Encode(text string, addSpecial bool) []int
}

// Sequence is a tokenized example: Labels[i] is the target of position i in the
// Hugging Face convention (the model shifts internally: position t predicts label t+1),
// -100 where no loss is taken.
type Sequence struct {
	IDs    []int
	Labels []int
	Line   int
}

// TokenizeOptions configure Tokenize.
type TokenizeOptions struct {
	Template *chat.Template // required for "messages" examples
	EOS      int            // appended to completions and texts when >= 0
	MaxLen   int            // longer sequences are an error unless Truncate
	Truncate bool           // cut long sequences to MaxLen instead (keeping the start)
}

// Tokenize turns an example into ids and labels with the loss on the completion only
// (the whole text for "text" examples).
func Tokenize(ex Example, tok Encoder, o TokenizeOptions) (Sequence, error) {
	var prompt, target []int
	switch {
	case len(ex.Messages) > 0:
		if o.Template == nil {
			return Sequence{}, fmt.Errorf("line %d: a chat example needs the model's chat template", ex.Line)
		}
		head, err := o.Template.Render(ex.Messages[:len(ex.Messages)-1], chat.Options{AddGenerationPrompt: true})
		if err != nil {
			return Sequence{}, fmt.Errorf("line %d: %w", ex.Line, err)
		}
		full, err := o.Template.Render(ex.Messages, chat.Options{})
		if err != nil {
			return Sequence{}, fmt.Errorf("line %d: %w", ex.Line, err)
		}
		if !strings.HasPrefix(full, head) {
			return Sequence{}, fmt.Errorf("line %d: the chat template does not render the conversation as its prefix plus the reply", ex.Line)
		}
		// The template writes its own special tokens, including the end of the turn.
		prompt, target = tok.Encode(head, false), tok.Encode(full[len(head):], false)
	case ex.Text != "":
		target = tok.Encode(ex.Text, true)
		if o.EOS >= 0 {
			target = append(target, o.EOS)
		}
	default:
		prompt, target = tok.Encode(ex.Prompt, true), tok.Encode(ex.Completion, false)
		if o.EOS >= 0 {
			target = append(target, o.EOS)
		}
	}
	seq := Sequence{Line: ex.Line, IDs: append(append([]int(nil), prompt...), target...)}
	seq.Labels = make([]int, len(seq.IDs))
	for i := range seq.Labels {
		seq.Labels[i] = -100
		if i >= len(prompt) {
			seq.Labels[i] = seq.IDs[i]
		}
	}
	if o.MaxLen > 0 && len(seq.IDs) > o.MaxLen {
		if !o.Truncate {
			return Sequence{}, fmt.Errorf("line %d: %d tokens, longer than the context of %d (allow truncation to cut it)", ex.Line, len(seq.IDs), o.MaxLen)
		}
		seq.IDs, seq.Labels = seq.IDs[:o.MaxLen], seq.Labels[:o.MaxLen]
	}
	if len(seq.IDs) < 2 {
		return Sequence{}, fmt.Errorf("line %d: fewer than two tokens", ex.Line)
	}
	targets := 0
	for _, l := range seq.Labels[1:] {
		if l != -100 {
			targets++
		}
	}
	if targets == 0 {
		return Sequence{}, fmt.Errorf("line %d: no target tokens left (the prompt fills the context?)", ex.Line)
	}
	return seq, nil
}

// Batches groups sequence indices into batches of at most size sequences for one epoch:
// a seeded shuffle, then length bucketing within windows of 50 batches (so a batch pads
// little), then a shuffle of the batches. The order depends only on (seed, epoch), so a
// resumed run sees the same batches.
func Batches(seqs []Sequence, size int, seed uint64, epoch int) [][]int {
	r := rand.New(rand.NewPCG(seed, uint64(epoch)))
	idx := r.Perm(len(seqs))
	window := size * 50
	var out [][]int
	for start := 0; start < len(idx); start += window {
		w := idx[start:min(start+window, len(idx))]
		sort.SliceStable(w, func(a, b int) bool { return len(seqs[w[a]].IDs) < len(seqs[w[b]].IDs) })
		for i := 0; i < len(w); i += size {
			out = append(out, append([]int(nil), w[i:min(i+size, len(w))]...))
		}
	}
	r.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
	return out
}

// Pad lays out a batch right-padded to its longest sequence: ids (B*T, pad with padID) and
// labels (B*T, -100 on padding), row-major, and T.
func Pad(seqs []Sequence, batch []int, padID int) (ids, labels []int64, T int) {
	for _, i := range batch {
		T = max(T, len(seqs[i].IDs))
	}
	ids = make([]int64, len(batch)*T)
	labels = make([]int64, len(batch)*T)
	for r, i := range batch {
		for t := 0; t < T; t++ {
			ids[r*T+t], labels[r*T+t] = int64(padID), -100
			if t < len(seqs[i].IDs) {
				ids[r*T+t], labels[r*T+t] = int64(seqs[i].IDs[t]), int64(seqs[i].Labels[t])
			}
		}
	}
	return ids, labels, T
}

// FineTuneConfig configures FineTune.
type FineTuneConfig struct {
	TrainConfig
	BatchSize int // sequences per step
	Epochs    int // when Steps is 0: Steps = Epochs x batches per epoch
	PadID     int // fills padding (never a target)
}

// sequences is FineTune's Batcher: epoch e's batches come from Batches(seqs, B, seed, e),
// so a step's batch depends only on the step.
type sequences struct {
	seqs     []Sequence
	b        int
	seed     uint64
	pad      int
	perEpoch int
	epoch    int
	batches  [][]int
}

func (q *sequences) Batch(step int) ([]int64, []int64, int, int) {
	epoch, i := (step-1)/q.perEpoch, (step-1)%q.perEpoch
	if q.batches == nil || q.epoch != epoch {
		q.batches, q.epoch = Batches(q.seqs, q.b, q.seed, epoch), epoch
	}
	batch := q.batches[i]
	ids, labels, T := Pad(q.seqs, batch, q.pad)
	return ids, shiftLabels(labels, len(batch), T), len(batch), T
}

// shiftLabels turns Hugging Face labels (position t's label is token t) into next-token
// targets (position t predicts token t+1): targets[t] = labels[t+1], the last -100.
func shiftLabels(labels []int64, B, T int) []int64 {
	out := make([]int64, len(labels))
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			out[b*T+t] = -100
			if t+1 < T {
				out[b*T+t] = labels[b*T+t+1]
			}
		}
	}
	return out
}

// SequenceLoss is the mean loss per target token over seqs, without recording gradients.
func SequenceLoss(lm LM, seqs []Sequence, batchSize, padID int) (float64, error) {
	if len(seqs) == 0 {
		return math.NaN(), fmt.Errorf("no evaluation sequences")
	}
	var sum float64
	var count int
	dev := lm.Device()
	err := torch.NoGrad(func() error {
		for start := 0; start < len(seqs); start += batchSize {
			idx := make([]int, 0, batchSize)
			for i := start; i < min(start+batchSize, len(seqs)); i++ {
				idx = append(idx, i)
			}
			ids, labels, T := Pad(seqs, idx, padID)
			targets := shiftLabels(labels, len(idx), T)
			n := 0
			for _, t := range targets {
				if t != -100 {
					n++
				}
			}
			s := torch.NewScope()
			shape := []int64{int64(len(idx)), int64(T)}
			l, err := lm.Loss(s, s.Int64s(ids, shape, dev), s.Int64s(targets, shape, dev)).Item()
			if err == nil {
				err = s.Err()
			}
			s.Close()
			if err != nil {
				return err
			}
			sum += l * float64(n)
			count += n
		}
		return nil
	})
	if err != nil {
		return math.NaN(), err
	}
	return sum / float64(count), nil
}

// FineTune trains lm (a full model, or a model with adapters whose LM exposes only the
// adapter weights) on tokenized examples, with the loss on targets only, evaluating the
// loss on eval (may be empty); see Train for the run folder, cancellation and resume.
func FineTune(ctx context.Context, lm LM, train, eval []Sequence, cfg FineTuneConfig, report func(Progress)) (*TrainResult, error) {
	if len(train) == 0 {
		return nil, fmt.Errorf("fine-tune: no training sequences")
	}
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("fine-tune: batch size must be positive, got %d", cfg.BatchSize)
	}
	q := &sequences{seqs: train, b: cfg.BatchSize, seed: cfg.Seed, pad: cfg.PadID}
	q.perEpoch = len(Batches(train, cfg.BatchSize, cfg.Seed, 0))
	if cfg.Steps == 0 {
		if cfg.Epochs <= 0 {
			return nil, fmt.Errorf("fine-tune: give steps or epochs")
		}
		accum := max(cfg.GradAccum, 1)
		cfg.Steps = (cfg.Epochs*q.perEpoch + accum - 1) / accum
	}
	var evalFn func() (float64, error)
	if len(eval) > 0 {
		evalFn = func() (float64, error) { return SequenceLoss(lm, eval, cfg.BatchSize, cfg.PadID) }
	}
	return Train(ctx, lm, q, evalFn, cfg.TrainConfig, report)
}
