package model

import (
	"fmt"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// KVCache holds every layer's keys and values for incremental decoding. Slots [0, Len)
// are filled; a step writes its T new slots and then the model calls Advance(T).
type KVCache struct {
	scope *torch.Scope
	k, v  []*torch.Tensor // per layer (B, Hkv, Cap, D)
	len   int
	cap   int
	batch int
}

// NewKVCache allocates zeroed storage for layers of (batch, kvHeads, capacity, headDim).
func NewKVCache(layers, batch, kvHeads, capacity, headDim int, dtype torch.DType, dev torch.Device) (*KVCache, error) {
	if layers <= 0 || batch <= 0 || capacity <= 0 {
		return nil, fmt.Errorf("kv cache: layers, batch and capacity must be positive (got %d, %d, %d)", layers, batch, capacity)
	}
	c := &KVCache{scope: torch.NewScope(), cap: capacity, batch: batch}
	shape := []int64{int64(batch), int64(kvHeads), int64(capacity), int64(headDim)}
	for i := 0; i < layers; i++ {
		c.k = append(c.k, c.scope.Zeros(shape, dtype, dev))
		c.v = append(c.v, c.scope.Zeros(shape, dtype, dev))
	}
	if err := c.scope.Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("kv cache: %w", err)
	}
	return c, nil
}

// Len is the number of filled slots.
func (c *KVCache) Len() int { return c.len }

// Cap is the number of slots.
func (c *KVCache) Cap() int { return c.cap }

// Batch is the number of rows.
func (c *KVCache) Batch() int { return c.batch }

// Update writes k and v (B, Hkv, T, D) of one layer into slots [Len, Len+T) and returns
// views (in s) of slots [0, Len+T). Errors are recorded on s.
func (c *KVCache) Update(s *torch.Scope, layer int, k, v *torch.Tensor) (keys, values *torch.Tensor) {
	sh := k.Shape()
	if len(sh) != 4 {
		s.Fail(fmt.Errorf("kv cache: keys must be (B, H, T, D), got %v", sh))
		return nil, nil
	}
	T := int(sh[2])
	if c.len+T > c.cap {
		s.Fail(fmt.Errorf("kv cache: %d + %d tokens exceed its capacity %d", c.len, T, c.cap))
		return nil, nil
	}
	end := int64(c.len + T)
	for _, p := range []struct{ dst, src *torch.Tensor }{{c.k[layer], k}, {c.v[layer], v}} {
		slot := s.Slice(p.dst, 2, int64(c.len), end, 1)
		if slot == nil {
			return nil, nil
		}
		if err := slot.CopyFrom(p.src); err != nil {
			s.Fail(fmt.Errorf("kv cache: %w", err))
			return nil, nil
		}
	}
	return s.Slice(c.k[layer], 2, 0, end, 1), s.Slice(c.v[layer], 2, 0, end, 1)
}

// Advance marks T more slots as filled; call it once per step, after every layer.
func (c *KVCache) Advance(T int) { c.len += T }

// Close frees the storage.
func (c *KVCache) Close() { c.scope.Close() }
