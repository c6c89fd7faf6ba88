package training

import (
	"slices"
	"testing"
)

func TestBatchesAndPad(t *testing.T) {
	var seqs []Sequence
	for i := 0; i < 103; i++ {
		n := 2 + (i*7)%13
		s := Sequence{IDs: make([]int, n), Labels: make([]int, n)}
		for j := range s.IDs {
			s.IDs[j], s.Labels[j] = i, i
		}
		seqs = append(seqs, s)
	}
	a := Batches(seqs, 8, 1, 0)
	if !slices.EqualFunc(a, Batches(seqs, 8, 1, 0), slices.Equal) {
		t.Fatal("same seed and epoch, different batches")
	}
	if slices.EqualFunc(a, Batches(seqs, 8, 1, 1), slices.Equal) {
		t.Fatal("a new epoch reuses the order")
	}
	seen := map[int]bool{}
	for _, b := range a {
		if len(b) > 8 {
			t.Fatalf("batch of %d", len(b))
		}
		for _, i := range b {
			if seen[i] {
				t.Fatalf("sequence %d twice", i)
			}
			seen[i] = true
		}
	}
	if len(seen) != len(seqs) {
		t.Fatalf("%d of %d sequences in an epoch", len(seen), len(seqs))
	}
	ids, labels, T := Pad(seqs, []int{0, 1}, 0) // lengths 2 and 9
	if T != 9 || len(ids) != 18 || ids[2] != 0 || labels[2] != -100 || ids[9] != 1 || labels[17] != 1 {
		t.Fatalf("pad: T %d ids %v labels %v", T, ids, labels)
	}
}
