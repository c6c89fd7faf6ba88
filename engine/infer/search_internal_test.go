package infer

import (
	"path/filepath"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/llama"
)

// TestClassifyBestOutOfCacheFallsBack: a search that outgrows its cache answers the rows
// left by scoring every label, with the same answers as Classify.
func TestClassifyBestOutOfCacheFallsBack(t *testing.T) {
	m, err := model.Load(filepath.Join("..", "..", "testdata", "models", "llama"), torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer func(old int) { cacheSlack = old }(cacheSlack)
	cacheSlack = 0
	prompts := [][]int{{3, 14, 15, 9}, {5, 3}, {8, 9, 7}}
	labels := [][]int{{5, 6, 7, 1}, {5, 6, 8, 1}, {5, 9, 1}, {10, 11, 12, 1}, {10, 13, 1}}
	want, err := Classify(m, prompts, labels, 3)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ClassifyBest(m, prompts, labels, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	fellBack := 0
	for i := range prompts {
		if got[i].Label != want[i].Label {
			t.Errorf("prompt %d: %d, Classify %d", i, got[i].Label, want[i].Label)
		}
		if got[i].Expanded < 0 {
			fellBack++
		}
	}
	if fellBack == 0 {
		t.Fatal("no row ran out of cache: the fallback was not exercised")
	}
}
