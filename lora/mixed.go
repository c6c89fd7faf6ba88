package lora

import (
	"fmt"
	"sort"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// Mixture serves several adapter sets at once on one model: each row of a batch uses the
// set Rows names (or none), as when evaluating candidates side by side or serving several
// tenants. Build it with Mix; the sets must not be merged.
type Mixture struct {
	sets    []*Set
	linears map[string]*model.Linear
	rows    []int // per batch row: index into sets, -1 for the base model
	all     *int  // set by SetAll: every row of any batch uses this set (-1: none)
	dev     torch.Device
	prev    map[string]model.Adapter // what each projection had before Mix
	// groups are, per set, the rows that use it, found once per SetRows for every
	// projection's Delta; their index tensors live in scope until the next SetRows.
	groups []rowGroup
	scope  *torch.Scope
}

// rowGroup is the rows of a batch that use one set: how many, and (when they are some
// of the batch, not all) their indices on the model's device.
type rowGroup struct {
	n   int
	idx *torch.Tensor
}

// mixed is the adapter a Mixture installs on one projection.
type mixed struct {
	mix     *Mixture
	members []*Adapter // per set, nil where that set does not adapt this projection
}

// Mix installs one mixed adapter on every projection any of sets adapts. Until Close, the
// sets' own adapters are detached and SetRows decides which applies to which row.
func Mix(m model.CausalLM, sets ...*Set) (*Mixture, error) {
	if len(sets) == 0 {
		return nil, fmt.Errorf("lora: mix of no adapters")
	}
	mx := &Mixture{sets: sets, linears: m.Linears(), dev: m.Device(), prev: map[string]model.Adapter{}}
	by := map[string]*mixed{}
	for i, set := range sets {
		if set.merged {
			return nil, fmt.Errorf("lora: adapter %d is merged into the weights; unmerge it before mixing", i)
		}
		for _, a := range set.Adapters {
			if mx.linears[a.Path] != a.linear {
				return nil, fmt.Errorf("lora: adapter %d belongs to another model (%s)", i, a.Path)
			}
			if by[a.Path] == nil {
				by[a.Path] = &mixed{mix: mx, members: make([]*Adapter, len(sets))}
			}
			by[a.Path].members[i] = a
		}
	}
	paths := make([]string, 0, len(by))
	for p := range by {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		mx.prev[p] = mx.linears[p].Adapter
		mx.linears[p].Adapter = by[p]
	}
	return mx, nil
}

// SetRows chooses, for each row of the next batches, the set (index into Mix's
// arguments) whose adapters apply, or -1 for none.
func (mx *Mixture) SetRows(rows []int) error {
	for r, k := range rows {
		if k < -1 || k >= len(mx.sets) {
			return fmt.Errorf("lora: row %d asks for adapter %d of %d", r, k, len(mx.sets))
		}
	}
	mx.rows = append(mx.rows[:0], rows...)
	mx.all = nil
	mx.freeGroups()
	mx.scope = torch.NewScope()
	mx.groups = make([]rowGroup, len(mx.sets))
	for k := range mx.sets {
		var idx []int64
		for r, want := range rows {
			if want == k {
				idx = append(idx, int64(r))
			}
		}
		mx.groups[k].n = len(idx)
		if len(idx) > 0 && len(idx) < len(rows) {
			mx.groups[k].idx = mx.scope.Int64s(idx, []int64{int64(len(idx))}, mx.dev)
		}
	}
	if err := mx.scope.Err(); err != nil {
		mx.freeGroups()
		return fmt.Errorf("lora: rows of the mixed batch: %w", err)
	}
	return nil
}

// SetAll makes set k (-1: none) apply to every row of the next batches, whatever their
// size: for work that runs its own batches, such as the label search of
// infer.ClassifyBest, on one adapter. SetRows ends it.
func (mx *Mixture) SetAll(k int) error {
	if k < -1 || k >= len(mx.sets) {
		return fmt.Errorf("lora: adapter %d of %d", k, len(mx.sets))
	}
	mx.freeGroups()
	mx.rows, mx.all = nil, &k
	return nil
}

func (mx *Mixture) freeGroups() {
	if mx.scope != nil {
		mx.scope.Close()
	}
	mx.scope, mx.groups = nil, nil
}

// Close removes the mixed adapters and puts back what the projections had before Mix.
func (mx *Mixture) Close() {
	for p, a := range mx.prev {
		mx.linears[p].Adapter = a
	}
	mx.prev = nil
	mx.freeGroups()
}

// Delta adds, for each set, its adapter's term to the rows that use it: those rows are
// gathered (index_select), run through the adapter, and added back at their places
// (index_add) into a zero term, so an adapter costs what its own rows cost. When every
// row uses one adapter, it runs on x as it is.
func (m *mixed) Delta(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	shape := x.Shape()
	B := shape[0]
	if all := m.mix.all; all != nil {
		if *all >= 0 && m.members[*all] != nil {
			return m.members[*all].Delta(s, x)
		}
		return s.Zeros(m.outShape(shape), x.DType(), m.mix.dev)
	}
	if int64(len(m.mix.rows)) != B || m.mix.groups == nil {
		s.Fail(fmt.Errorf("lora: mixed batch of %d rows, but SetRows gave %d", B, len(m.mix.rows)))
		return nil
	}
	var out *torch.Tensor
	for k, a := range m.members {
		g := m.mix.groups[k]
		switch {
		case a == nil || g.n == 0:
			continue
		case int64(g.n) == B: // the whole batch: no gather, no scatter
			return a.Delta(s, x)
		}
		if out == nil {
			out = s.Zeros(m.outShape(shape), x.DType(), m.mix.dev)
		}
		out = s.IndexAdd(out, 0, g.idx, a.Delta(s, s.IndexSelect(x, 0, g.idx)))
	}
	if out == nil { // no row uses an adapter here: a zero term of the output's shape
		return s.Zeros(m.outShape(shape), x.DType(), m.mix.dev)
	}
	return out
}

// outShape is the shape of the projection's output for an input of shape in.
func (m *mixed) outShape(in []int64) []int64 {
	_, outDim := m.members[firstMember(m.members)].linear.Dims()
	return append(append([]int64(nil), in[:len(in)-1]...), outDim)
}

func firstMember(ms []*Adapter) int {
	for i, a := range ms {
		if a != nil {
			return i
		}
	}
	return 0
}
