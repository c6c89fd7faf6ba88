package training

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// concurrentBigram is bigram declared safe for concurrent shards (its Loss shares no
// mutable state).
type concurrentBigram struct{ *bigram }

func (concurrentBigram) Concurrent() bool { return true }

// shardBatch is (5, 6): rows 0 and 1 have no targets (the first of two shards gets none),
// the other rows a few -100s.
func shardBatch() (ids, targets []int64, B, T int) {
	B, T = 5, 6
	for i := range B * T {
		ids = append(ids, int64((i*7+3)%11))
		tg := int64((i*5 + 1) % 11)
		if i < 2*T || i%4 == 3 {
			tg = -100
		}
		targets = append(targets, tg)
	}
	return ids, targets, B, T
}

// trainable turns on m's gradients.
func trainable(t *testing.T, m *bigram) *bigram {
	t.Helper()
	for _, p := range m.Parameters() {
		if err := p.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func gradsOf(t *testing.T, m LM) [][]float32 {
	t.Helper()
	s := torch.NewScope()
	defer s.Close()
	var out [][]float32
	for _, p := range m.Parameters() {
		g := s.Grad(p)
		if g == nil {
			out = append(out, nil)
			continue
		}
		v, err := g.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestBackwardShards: the batch split across 2 and 3 worker threads (uneven shards, one
// without targets) gives the loss and gradients of the whole batch on one thread, within
// float32 rounding; the same split twice gives the same bits; scale multiplies the
// gradients; a second call adds to them.
func TestBackwardShards(t *testing.T) {
	ids, targets, B, T := shardBatch()
	m := trainable(t, newBigram(t, 11, 1))
	run := func(w *Workers, scale float64, calls int) (float64, int64, [][]float32) {
		t.Helper()
		if err := torch.ZeroGrad(m.Parameters()); err != nil {
			t.Fatal(err)
		}
		var lv float64
		var n int64
		for range calls {
			var err error
			if lv, n, err = Backward(m, w, ids, targets, B, T, scale, 0); err != nil {
				t.Fatal(err)
			}
		}
		return lv, n, gradsOf(t, m)
	}
	wantLoss, wantN, want := run(nil, 1, 1)
	if wantN != 14 {
		t.Fatalf("%d targets, want 14", wantN)
	}
	for _, k := range []int{2, 3} {
		w := NewWorkers(k)
		lv, n, got := run(w, 1, 1)
		if n != wantN || math.Abs(lv-wantLoss) > 1e-6 {
			t.Fatalf("%d workers: loss %v over %d targets, want %v over %d", k, lv, n, wantLoss, wantN)
		}
		for i := range want {
			for j := range want[i] {
				if math.Abs(float64(got[i][j]-want[i][j])) > 1e-6 {
					t.Fatalf("%d workers: parameter %d [%d]: %v, want %v", k, i, j, got[i][j], want[i][j])
				}
			}
		}
		_, _, again := run(w, 1, 1)
		for i := range got {
			for j := range got[i] {
				if math.Float32bits(again[i][j]) != math.Float32bits(got[i][j]) {
					t.Fatalf("%d workers: a second run differs at parameter %d [%d]", k, i, j)
				}
			}
		}
		_, _, half := run(w, 0.5, 2) // two calls at half scale: the same gradient again
		for i := range got {
			for j := range got[i] {
				if math.Abs(float64(half[i][j]-got[i][j])) > 1e-6 {
					t.Fatalf("%d workers: 2 x 0.5 x gradient at parameter %d [%d]: %v, want %v", k, i, j, half[i][j], got[i][j])
				}
			}
		}
		w.Close()
	}
}

// TestBackwardShardsNonFinite: a non-finite loss on worker threads is returned and leaves
// the gradients as they were.
func TestBackwardShardsNonFinite(t *testing.T) {
	ids, targets, B, T := shardBatch()
	m := trainable(t, newBigram(t, 11, 1))
	w := NewWorkers(2)
	defer w.Close()
	m.poison = true
	lv, _, err := Backward(m, w, ids, targets, B, T, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(lv) {
		t.Fatalf("loss %v, want NaN", lv)
	}
	for i, g := range gradsOf(t, m) {
		if g != nil {
			t.Fatalf("parameter %d has a gradient after a non-finite loss", i)
		}
	}
	if _, _, err := Backward(m, w, ids[:5], targets, B, T, 1, 0); err == nil {
		t.Fatal("Backward accepted 5 ids for a (5, 6) batch")
	}
}

// TestStartWorkers: automatic only for an LM that allows it, refused where asked for but
// not allowed.
func TestStartWorkers(t *testing.T) {
	plain := newBigram(t, 11, 1)
	conc := concurrentBigram{newBigram(t, 11, 1)}
	for _, c := range []struct {
		lm      LM
		n, want int
		err     string
	}{
		{plain, 0, 0, ""},
		{plain, 1, 0, ""},
		{plain, 2, 0, "cannot run on several threads"},
		{conc, -1, 0, "want 0"},
		{conc, 1, 0, ""},
		{conc, 3, 3, ""},
		{conc, 0, torch.NumThreads(), ""},
	} {
		w, err := StartWorkers(c.lm, c.n)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%T, %d: error %v, want one saying %q", c.lm, c.n, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		if w != nil {
			got = w.N()
			w.Close()
		}
		if c.want < 2 {
			c.want = 0
		}
		if got != c.want {
			t.Errorf("%T, %d: %d workers, want %d", c.lm, c.n, got, c.want)
		}
	}
}

// TestPretrainResumeIsExactOnWorkers: with worker threads, an interrupted and resumed run
// ends with the uninterrupted run's bits, and close to a run without workers.
func TestPretrainResumeIsExactOnWorkers(t *testing.T) {
	cfgFor := func(dir string) PretrainConfig {
		c := smallConfig(dir)
		c.Workers = 2
		return c
	}
	var onWorkers *bigram // the uninterrupted run's model
	lm := func(seed uint64) LM {
		m := newBigram(t, 11, seed)
		if onWorkers == nil {
			onWorkers = m
		}
		return concurrentBigram{m}
	}
	full, split, _ := interruptAndResume(t, lm, cfgFor)
	a := weightsOf(t, filepath.Join(full, "model.safetensors"))
	if b := weightsOf(t, filepath.Join(split, "model.safetensors")); !bytes.Equal(a, b) {
		t.Fatal("resumed run's weights differ from the uninterrupted run's")
	}
	one := t.TempDir()
	c1 := smallConfig(one)
	c1.Workers = 1
	m := newBigram(t, 11, 1)
	if _, err := Pretrain(context.Background(), concurrentBigram{m}, corpus(4000), corpus(500), c1, nil); err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Parameters() {
		va, _ := p.Float32s()
		vb, _ := onWorkers.Parameters()[i].Float32s()
		for j := range va {
			if math.Abs(float64(va[j]-vb[j])) > 1e-4 {
				t.Fatalf("parameter %d [%d]: %v on workers, %v without", i, j, vb[j], va[j])
			}
		}
	}
}
