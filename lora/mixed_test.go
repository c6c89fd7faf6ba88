package lora_test

import (
	"math"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
)

// batchLogits runs the same prompt as every row of a batch and returns each row's logits.
func batchLogits(t *testing.T, m model.CausalLM, ids []int, rows int) [][]float32 {
	t.Helper()
	s := torch.NewScope()
	defer s.Close()
	var v []int64
	for r := 0; r < rows; r++ {
		for _, id := range ids {
			v = append(v, int64(id))
		}
	}
	var all []float32
	if err := torch.NoGrad(func() error {
		var err error
		all, err = m.Forward(s, s.Int64s(v, []int64{int64(rows), int64(len(ids))}, torch.CPU)).Float32s()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	n := len(all) / rows
	out := make([][]float32, rows)
	for r := range out {
		out[r] = all[r*n : (r+1)*n]
	}
	return out
}

// TestMixedBatch: each row of one batch uses its own adapter (or none) and gets exactly
// the logits it gets with that adapter alone.
func TestMixedBatch(t *testing.T) {
	ref, m := loadCase(t, "llama_all")
	dir := "../testdata/peft/llama_all/adapter"
	a, err := lora.LoadDetached(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := lora.LoadDetached(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, ad := range b.Adapters { // a different adapter: B negated
		if err := ad.B.MulInPlace(-1); err != nil {
			t.Fatal(err)
		}
	}
	ids := ref.Prompts[0]
	base := logits(t, m, ids)
	alone := func(set *lora.Set) []float32 {
		mx, err := lora.Mix(m, set)
		if err != nil {
			t.Fatal(err)
		}
		defer mx.Close()
		if err := mx.SetRows([]int{0}); err != nil {
			t.Fatal(err)
		}
		return logits(t, m, ids)
	}
	wantA, wantB := alone(a), alone(b)
	mx, err := lora.Mix(m, a, b)
	if err != nil {
		t.Fatal(err)
	}
	check := func(sets []int, wants [][]float32) {
		t.Helper()
		if err := mx.SetRows(sets); err != nil {
			t.Fatal(err)
		}
		rows := batchLogits(t, m, ids, len(sets))
		for r, want := range wants {
			for i := range want {
				if math.Abs(float64(rows[r][i]-want[i])) > 1e-5 {
					t.Fatalf("rows %v: row %d logit %d: mixed %v, alone %v", sets, r, i, rows[r][i], want[i])
				}
			}
		}
	}
	check([]int{1, -1, 0, 1}, [][]float32{wantB, base, wantA, wantB})
	check([]int{0, 0, 0}, [][]float32{wantA, wantA, wantA}) // one adapter for the whole batch
	check([]int{-1, -1}, [][]float32{base, base})           // none
	// SetAll: one set for batches of any size, until SetRows
	for k, want := range map[int][]float32{1: wantB, -1: base, 0: wantA} {
		if err := mx.SetAll(k); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 3} {
			for r, row := range batchLogits(t, m, ids, n) {
				for i := range want {
					if d := math.Abs(float64(row[i] - want[i])); d > 1e-5 {
						t.Fatalf("SetAll(%d), batch of %d, row %d, logit %d: %v from the set alone", k, n, r, i, d)
					}
				}
			}
		}
	}
	if err := mx.SetAll(2); err == nil {
		t.Fatal("SetAll of a missing adapter accepted")
	}
	check([]int{1, 0}, [][]float32{wantB, wantA}) // SetRows ends SetAll
	mx.Close()
	// the adapted logits match PEFT's for adapter a, and the two adapters differ
	if d := maxDiff(wantA, ref.Logits[0]); d > 1e-4 {
		t.Fatalf("adapter a vs PEFT: %v", d)
	}
	if wantA[0] == wantB[0] {
		t.Fatal("the two adapters give the same logits")
	}
	// after Close the model is the base model again
	after := logits(t, m, ids)
	for i := range base {
		if after[i] != base[i] {
			t.Fatal("Close left an adapter in place")
		}
	}
	if err := mx.SetRows([]int{2}); err == nil {
		t.Fatal("row asking for a missing adapter accepted")
	}
}
