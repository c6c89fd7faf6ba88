package training

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// Sequence is a tokenized example: Labels[i] is the target of position i in the
// Hugging Face convention (the model shifts internally: position t predicts label t+1),
// -100 where no loss is taken.
type Sequence struct {
	IDs    []int
	Labels []int
	Line   int
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
	cfg.Identity = withIdentity(cfg.Identity, map[string]string{"data": sequencesFingerprint(train),
		"eval_data": sequencesFingerprint(eval), "batch": strconv.Itoa(cfg.BatchSize), "pad": strconv.Itoa(cfg.PadID)})
	var evalFn func() (float64, error)
	if len(eval) > 0 {
		evalFn = func() (float64, error) { return SequenceLoss(lm, eval, cfg.BatchSize, cfg.PadID) }
	}
	return Train(ctx, lm, q, evalFn, cfg.TrainConfig, report)
}

// sequencesFingerprint is a short hash of tokenized sequences (ids, labels and their
// boundaries), for TrainConfig.Identity.
func sequencesFingerprint(seqs []Sequence) string {
	h := sha256.New()
	var b [8]byte
	put := func(v int) {
		binary.LittleEndian.PutUint64(b[:], uint64(int64(v)))
		h.Write(b[:])
	}
	for _, s := range seqs {
		put(len(s.IDs))
		for i := range s.IDs {
			put(s.IDs[i])
			put(s.Labels[i])
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
