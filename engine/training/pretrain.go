package training

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// PretrainConfig configures Pretrain: the loop's settings plus the token-stream batches.
type PretrainConfig struct {
	TrainConfig
	BatchSize  int // sequences per step (B)
	SeqLen     int // tokens per sequence (T)
	EvalTokens int // held-out tokens per evaluation; 0: 65,536
}

func (c *PretrainConfig) validate(train, heldout int) error {
	switch {
	case c.BatchSize <= 0 || c.SeqLen <= 0:
		return fmt.Errorf("batch size and sequence length must be positive, got %d and %d", c.BatchSize, c.SeqLen)
	case train < c.SeqLen+2:
		return fmt.Errorf("training data has %d tokens, fewer than one sequence of %d", train, c.SeqLen+1)
	case heldout > 0 && heldout < c.SeqLen+1:
		return fmt.Errorf("held-out data has %d tokens, fewer than one sequence of %d", heldout, c.SeqLen+1)
	}
	return c.TrainConfig.validate()
}

// windows is the Batcher of Pretrain: B random windows of a token stream.
type windows struct {
	tokens []int32
	seed   uint64
	B, T   int
}

func (w windows) Batch(step int) ([]int64, []int64, int, int) {
	ids := make([]int64, w.B*w.T)
	targets := make([]int64, w.B*w.T)
	batch(w.tokens, w.seed, step, w.B, w.T, ids, targets)
	return ids, targets, w.B, w.T
}

// batch fills ids and targets (B*T each) with B windows of the token stream. The windows
// of a step depend only on (seed, step), so a resumed run sees the same data.
func batch(tokens []int32, seed uint64, step, B, T int, ids, targets []int64) {
	r := rand.New(rand.NewPCG(seed, uint64(step)))
	for b := 0; b < B; b++ {
		off := r.IntN(len(tokens) - T - 1)
		for t := 0; t < T; t++ {
			ids[b*T+t] = int64(tokens[off+t])
			targets[b*T+t] = int64(tokens[off+t+1])
		}
	}
}

// EvalLoss is the mean next-token loss over consecutive windows of tokens (at most
// maxTokens predicted tokens), without recording gradients.
func EvalLoss(lm LM, tokens []int32, B, T, maxTokens int) (float64, error) {
	windows := (len(tokens) - 1) / T
	if maxTokens > 0 && windows > maxTokens/T {
		windows = maxTokens / T
	}
	if windows == 0 {
		return math.NaN(), fmt.Errorf("evaluation data has %d tokens, fewer than one window of %d", len(tokens), T+1)
	}
	var sum float64
	var count int
	err := torch.NoGrad(func() error {
		for w := 0; w < windows; w += B {
			n := min(B, windows-w)
			ids := make([]int64, n*T)
			tg := make([]int64, n*T)
			for b := 0; b < n; b++ {
				off := (w + b) * T
				for t := 0; t < T; t++ {
					ids[b*T+t] = int64(tokens[off+t])
					tg[b*T+t] = int64(tokens[off+t+1])
				}
			}
			s := torch.NewScope()
			dev := lm.Device()
			l, err := lm.Loss(s, s.Int64s(ids, []int64{int64(n), int64(T)}, dev), s.Int64s(tg, []int64{int64(n), int64(T)}, dev)).Item()
			if err == nil {
				err = s.Err()
			}
			s.Close()
			if err != nil {
				return err
			}
			sum += l * float64(n*T)
			count += n * T
		}
		return nil
	})
	if err != nil {
		return math.NaN(), err
	}
	return sum / float64(count), nil
}

// Pretrain trains lm on next-token prediction over random windows of a token stream with
// AdamW, evaluating on heldout; see Train for the run folder, cancellation and resume.
func Pretrain(ctx context.Context, lm LM, train, heldout []int32, cfg PretrainConfig, report func(Progress)) (*TrainResult, error) {
	cfg.defaults()
	if cfg.EvalTokens == 0 {
		cfg.EvalTokens = 65536
	}
	if err := cfg.validate(len(train), len(heldout)); err != nil {
		return nil, fmt.Errorf("pretrain: %w", err)
	}
	var eval func() (float64, error)
	if len(heldout) > 0 {
		eval = func() (float64, error) { return EvalLoss(lm, heldout, cfg.BatchSize, cfg.SeqLen, cfg.EvalTokens) }
	}
	cfg.Identity = withIdentity(cfg.Identity, map[string]string{
		"data": fingerprint(train), "heldout_data": fingerprint(heldout), "batch": strconv.Itoa(cfg.BatchSize),
		"seq_len": strconv.Itoa(cfg.SeqLen), "eval_tokens": strconv.Itoa(cfg.EvalTokens),
	})
	return Train(ctx, lm, windows{train, cfg.Seed, cfg.BatchSize, cfg.SeqLen}, eval, cfg.TrainConfig, report)
}

// fingerprint is a short hash of token ids (int32 or int), for TrainConfig.Identity.
func fingerprint[T int32 | int](ids []T) string {
	h := sha256.New()
	var b [8]byte
	for _, id := range ids {
		binary.LittleEndian.PutUint64(b[:], uint64(int64(id)))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// withIdentity returns a copy of the caller's identity with the loop's data entries added.
func withIdentity(caller, data map[string]string) map[string]string {
	out := make(map[string]string, len(caller)+len(data))
	for k, v := range caller {
		out[k] = v
	}
	for k, v := range data {
		out[k] = v
	}
	return out
}
