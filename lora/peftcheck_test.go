package lora_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
)

var peftCheckDir = flag.String("peft-check-dir", "", "write a Pioneer-made adapter and its logits here for scripts/check_peft_load.py")

// TestWritePEFTCheck writes, on request, an adapter made and saved by Pioneer (random A
// and B, rank and alpha patterns, rsLoRA) with Pioneer's logits, so that
// scripts/check_peft_load.py can load it with PEFT and compare:
//
//	go test ./lora -run TestWritePEFTCheck -peft-check-dir /tmp/pc && .venv/bin/python scripts/check_peft_load.py /tmp/pc
func TestWritePEFTCheck(t *testing.T) {
	if *peftCheckDir == "" {
		t.Skip("-peft-check-dir not set")
	}
	base := "../testdata/models/qwen3"
	m, err := model.Load(base, torch.CPU, torch.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := lora.Config{R: 4, Alpha: 8, UseRSLoRA: true, TargetModules: lora.Targets{Names: []string{"q_proj", "o_proj", "down_proj"}},
		RankPattern: map[string]int{"down_proj": 2}, AlphaPattern: map[string]float64{"o_proj": 3}}
	set, err := lora.Attach(m, cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	s := torch.NewScope()
	defer s.Close()
	g, _ := torch.NewGenerator(9, torch.CPU)
	defer g.Close()
	for _, a := range set.Adapters {
		if err := a.B.CopyFrom(s.MulScalar(s.Randn(a.B.Shape(), torch.Float32, torch.CPU, g), 0.2)); err != nil {
			t.Fatal(err)
		}
	}
	dir := *peftCheckDir
	abs, _ := filepath.Abs(base)
	if err := set.Save(filepath.Join(dir, "adapter")); err != nil {
		t.Fatal(err)
	}
	ids := []int{30, 42, 30, 14, 71, 9}
	out := map[string]any{"base": abs, "ids": ids, "logits": logits(t, m, ids)}
	b, _ := json.Marshal(out)
	if err := os.WriteFile(filepath.Join(dir, "pioneer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
