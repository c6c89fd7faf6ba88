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

// Decodable returns the group's weight for a fused decoding step
// (torch.Scope.DecodeLayers): its quantized weight and stacked bias where it has one,
// and otherwise the parts' own float weights and biases. ok is false where a part
// carries an adapter or is a Conv1D, or some parts have biases and others not.
func (g *Group) Decodable() (w torch.DecodeWeight, ok bool) {
	biased := 0
	for _, p := range g.Parts {
		if p.Adapter != nil || p.Conv1D {
			return w, false
		}
		if p.B != nil {
			biased++
		}
	}
	if biased != 0 && biased != len(g.Parts) {
		return w, false
	}
	if g.quantized != nil {
		return torch.DecodeWeight{Quantized: g.quantized, Bias: g.bias}, true
	}
	w.Float = make([]*torch.Tensor, len(g.Parts))
	for i, p := range g.Parts {
		w.Float[i] = p.W
		if biased != 0 {
			w.FloatBias = append(w.FloatBias, p.B)
		}
	}
	return w, true
}
