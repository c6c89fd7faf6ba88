package infer_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// TestClassifyBestMatchesClassify: the best-first search gives the label Classify gives,
// with its log-probability, on label sets with shared prefixes, one label a prefix of
// others, and prompts of different lengths side by side.
func TestClassifyBestMatchesClassify(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var manyPrompts [][]int
	for i := 0; i < 9; i++ {
		p := make([]int, 1+r.IntN(12))
		for j := range p {
			p[j] = 3 + r.IntN(90)
		}
		manyPrompts = append(manyPrompts, p)
	}
	sets := [][][]int{
		{{2, 6, 5}, {2, 6}, {2, 7, 1, 9}, {40}, {11, 12}, {11, 13}, {2}},
		{{5, 1}, {6, 1}, {7, 8, 1}, {7, 9, 1}, {7, 9, 10, 1}},
	}
	for i := 0; i < 2; i++ { // random sets with heavy sharing
		var set [][]int
		seen := map[string]bool{}
		for len(set) < 20 {
			l := []int{3 + r.IntN(4)}
			for k := r.IntN(4); k > 0; k-- {
				l = append(l, 3+r.IntN(6))
			}
			l = append(l, 1) // an end token no label continues
			key := ""
			for _, x := range l {
				key += string(rune(x))
			}
			if !seen[key] {
				seen[key] = true
				set = append(set, l)
			}
		}
		sets = append(sets, set)
	}
	for _, dir := range []string{"llama", "qwen3", "gpt2"} {
		t.Run(dir, func(t *testing.T) {
			m, err := model.Load(filepath.Join("..", "..", "testdata", "models", dir), torch.CPU, torch.Float32)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for si, labels := range sets {
				want, err := infer.Classify(m, manyPrompts, labels, 4)
				if err != nil {
					t.Fatal(err)
				}
				for _, width := range []int{1, 3, 8} {
					got, err := infer.ClassifyBest(m, manyPrompts, labels, 4, width)
					if err != nil {
						t.Fatal(err)
					}
					expanded := 0
					for i := range manyPrompts {
						w := want[i].LogProbs[want[i].Label]
						if got[i].Label != want[i].Label || math.Abs(got[i].LogProb-w) > 1e-4 {
							t.Fatalf("set %d width %d prompt %d: label %d (%v), Classify %d (%v)", si, width, i, got[i].Label, got[i].LogProb, want[i].Label, w)
						}
						expanded += got[i].Expanded
					}
					t.Logf("set %d width %d: %d labels, %.1f nodes expanded per prompt", si, width, len(labels), float64(expanded)/float64(len(manyPrompts)))
				}
			}
		})
	}
	m := tinyLlama(t, 0)
	// near the end of the context (64 positions): the cache holds the prompt and many
	// sibling branches, more slots than the model has positions
	long := make([]int, 60)
	for j := range long {
		long[j] = 3 + r.IntN(40)
	}
	var wide [][]int
	for a := 0; a < 6; a++ {
		for b := 0; b < 6; b++ {
			wide = append(wide, []int{3 + a, 10 + b, 1})
		}
	}
	short := []int{4, 9, 20}
	want, err := infer.Classify(m, [][]int{long, short}, wide, 2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := infer.ClassifyBest(m, [][]int{long, short}, wide, 2, 8)
	if err != nil {
		t.Fatalf("a prompt near the end of the context: %v", err)
	}
	for i := range got {
		if got[i].Label != want[i].Label {
			t.Fatalf("prompt near the end of the context: label %d, Classify %d", got[i].Label, want[i].Label)
		}
	}
	if _, err := infer.ClassifyBest(m, manyPrompts, [][]int{{1}, {}}, 2, 0); err == nil {
		t.Fatal("an empty label was accepted")
	}
	if _, err := infer.ClassifyBest(m, manyPrompts, [][]int{{1}, {1}}, 2, 0); err == nil {
		t.Fatal("two identical labels were accepted")
	}
}
