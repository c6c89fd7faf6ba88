package model

import "github.com/pioneer-ai/pioneer/engine/torch"

// Group is projections of one input (a layer's query, key and value; its gate and up),
// which decoding from quantized weights runs as one product: one pass over the input and
// one parallel region instead of one per projection (Quantize stacks their weights).
// Otherwise each part runs on its own, as Linear.Forward.
type Group struct {
	Parts     []*Linear
	quantized *torch.QuantizedWeight // the parts' weights stacked by rows
	bias      *torch.Tensor          // their biases stacked, when every part has one
	outs      []int64                // each part's output size, its columns of the stacked product
}

// NewGroup groups parts (nn.Linear projections of one input size).
func NewGroup(parts ...*Linear) *Group { return &Group{Parts: parts} }

// Forward returns each part's output for x, in order.
func (g *Group) Forward(s *torch.Scope, x *torch.Tensor) []*torch.Tensor {
	out := make([]*torch.Tensor, len(g.Parts))
	if g.quantized == nil || !Decoding(x) {
		for i, p := range g.Parts {
			out[i] = p.Forward(s, x)
		}
		return out
	}
	y := s.QuantizedLinear(x, g.quantized, g.bias)
	var at int64
	for i, p := range g.Parts {
		n := g.outs[i]
		yi := s.Slice(y, -1, at, at+n, 1)
		at += n
		if g.bias == nil && p.B != nil {
			yi = s.Add(yi, p.B)
		}
		out[i] = p.addAdapter(s, x, yi)
	}
	return out
}

// quantize gives the group one quantized weight, the parts' stacked, made in owner, and
// reports its bits; false when the parts cannot be stacked (a Conv1D part, input sizes
// that differ or are not a multiple of 32).
func (g *Group) quantize(owner *torch.Scope) (int, bool) {
	var in0 int64
	ws, bs := make([]*torch.Tensor, len(g.Parts)), make([]*torch.Tensor, 0, len(g.Parts))
	outs := make([]int64, len(g.Parts))
	for i, p := range g.Parts {
		in, out := p.Dims()
		outs[i] = out
		if p.Conv1D || in%32 != 0 || (i > 0 && in != in0) || in == 0 {
			return 0, false
		}
		in0 = in
		ws[i] = p.W
		if p.B != nil {
			bs = append(bs, p.B)
		}
	}
	stacked := owner.Cat(ws, 0)
	q := owner.Quantize(stacked)
	stacked.Free()
	if q == nil {
		return 0, false
	}
	g.free()
	g.quantized, g.outs = q, outs
	if len(bs) == len(g.Parts) {
		g.bias = owner.Cat(bs, 0)
	}
	return q.Bits, true
}

// free drops the group's quantized weight.
func (g *Group) free() {
	if g.quantized != nil {
		g.quantized.Free()
		g.quantized = nil
	}
	if g.bias != nil {
		g.bias.Free()
		g.bias = nil
	}
}

// Decodable returns the group's quantized weight and stacked bias (nil: none) for a fused
// decoding step (torch.Scope.DecodeLayers); ok is false when the group has no quantized
// weight, a part carries an adapter, or some parts have biases and others not.
func (g *Group) Decodable() (w *torch.QuantizedWeight, bias *torch.Tensor, ok bool) {
	if g.quantized == nil {
		return nil, nil, false
	}
	for _, p := range g.Parts {
		if p.Adapter != nil || (g.bias == nil && p.B != nil) {
			return nil, nil, false
		}
	}
	return g.quantized, g.bias, true
}
