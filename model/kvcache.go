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

// Layer returns layer i's key and value storage, (B, Hkv, Cap, D), every slot: what a
// fused decoding step (torch.Scope.DecodeLayers) writes slot Len of.
func (c *KVCache) Layer(i int) (keys, values *torch.Tensor) { return c.k[i], c.v[i] }

// Advance marks T more slots as filled; call it once per step, after every layer.
func (c *KVCache) Advance(T int) { c.len += T }

// CopyTo copies slots [from, to) of c's rows (in the order given) into d's rows
// [row0, row0+len(rows)) at slots [at, at+to-from), every layer: how a decoder gathers the
// sequences that go on, and joins new ones, into a fresh cache. d must have c's layers,
// heads and head size.
func (c *KVCache) CopyTo(d *KVCache, rows []int, from, to, row0, at int) error {
	n := to - from
	if len(c.k) != len(d.k) || n < 0 || from < 0 || to > c.cap || at < 0 || at+n > d.cap || row0 < 0 || row0+len(rows) > d.batch {
		return fmt.Errorf("kv cache: copy of slots [%d, %d) of %d rows to row %d slot %d does not fit (%d rows of %d slots into %d of %d)",
			from, to, len(rows), row0, at, c.batch, c.cap, d.batch, d.cap)
	}
	if n == 0 || len(rows) == 0 {
		return nil
	}
	idx := make([]int64, len(rows))
	consecutive := true
	for i, r := range rows {
		if r < 0 || r >= c.batch {
			return fmt.Errorf("kv cache: row %d of %d", r, c.batch)
		}
		idx[i] = int64(r)
		consecutive = consecutive && r == rows[0]+i
	}
	s := torch.NewScope()
	defer s.Close()
	dev := c.k[0].Device()
	index := s.Int64s(idx, []int64{int64(len(idx))}, dev)
	for l := range c.k {
		for _, p := range []struct{ src, dst *torch.Tensor }{{c.k[l], d.k[l]}, {c.v[l], d.v[l]}} {
			src := s.Slice(p.src, 2, int64(from), int64(to), 1)
			if consecutive { // a view, copied once below
				src = s.Slice(src, 0, int64(rows[0]), int64(rows[0]+len(rows)), 1)
			} else {
				src = s.IndexSelect(src, 0, index)
			}
			dst := s.Slice(s.Slice(p.dst, 0, int64(row0), int64(row0+len(rows)), 1), 2, int64(at), int64(at+n), 1)
			if err := s.Err(); err != nil {
				return fmt.Errorf("kv cache: %w", err)
			}
			if err := dst.CopyFrom(src); err != nil {
				return fmt.Errorf("kv cache: %w", err)
			}
		}
	}
	return nil
}

// SetLen marks the first n slots as filled (after CopyTo has filled them).
func (c *KVCache) SetLen(n int) error {
	if n < 0 || n > c.cap {
		return fmt.Errorf("kv cache: length %d outside its capacity %d", n, c.cap)
	}
	c.len = n
	return nil
}

// Close frees the storage.
func (c *KVCache) Close() { c.scope.Close() }
