package infer

import (
	"fmt"
	"runtime"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// Forwarder is a causal model that returns next-token logits (B, T, V) for ids (B, T).
type Forwarder interface {
	Forward(s *torch.Scope, ids *torch.Tensor) *torch.Tensor
	Device() torch.Device
}

// Sample continues prompt by n tokens, drawing each from softmax(logits/temperature)
// (temperature 0: the most likely token) with a generator seeded by seed. Each step
// re-reads the last window tokens in full; batched generation with a KV cache is
// Generate's job.
func Sample(m Forwarder, prompt []int32, n, window int, temperature float64, seed uint64) ([]int32, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("sample: empty prompt")
	}
	if window <= 0 || n < 0 || temperature < 0 {
		return nil, fmt.Errorf("sample: window must be positive and n, temperature >= 0")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dev := m.Device()
	g, err := torch.NewGenerator(seed, dev)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	seq := append([]int32(nil), prompt...)
	err = torch.NoGrad(func() error {
		for i := 0; i < n; i++ {
			ctx := seq[max(0, len(seq)-window):]
			ids := make([]int64, len(ctx))
			for j, t := range ctx {
				ids[j] = int64(t)
			}
			s := torch.NewScope()
			logits := m.Forward(s, s.Int64s(ids, []int64{1, int64(len(ids))}, dev))
			last := s.Select(s.Select(logits, 0, 0), 0, int64(len(ids)-1)) // (V)
			var next *torch.Tensor
			if temperature == 0 {
				next = s.Argmax(last, 0, false)
			} else {
				probs := s.Softmax(s.To(s.DivScalar(last, temperature), torch.Float32, dev), 0)
				next = s.Multinomial(probs, 1, g)
			}
			v, err := next.Item()
			if err == nil {
				err = s.Err()
			}
			s.Close()
			if err != nil {
				return fmt.Errorf("sample: token %d: %w", i, err)
			}
			seq = append(seq, int32(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return seq[len(prompt):], nil
}
