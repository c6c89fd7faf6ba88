package layers

import (
	"os/exec"
	"strings"
	"testing"
)

// floor of every package of the module, lowest first (docs/DESIGN.md, section 2). An
// import must go to a lower floor.
var floor = map[string]int{
	"internal/mmap":   -1,
	"internal/fsutil": 0, "internal/jsonl": 0, "internal/redact": 0, "internal/format": 0, "internal/crash": 0, "internal/settings": 0, "internal/sandbox": 0, "engine/metrics": 0, "data": 0,
	"engine/torch/safetensors": 0,
	"internal/plot":            1, "engine/torch": 1, "internal/layers": 1,
	"model/tokenizer": 2, "model/chat": 2, "model/gguf": 2,
	"model":       3,
	"model/llama": 4, "model/gpt2": 4,
	"model/all": 5,
	"lora":      6, "engine/training": 6, "engine/infer": 6,
	"engine/sft": 7,
	"agent/task": 8,
	"agent/text": 9, "agent/lineage": 9, "agent/trafficlog": 9, "agent/teacher": 9, "agent/search": 9,
	"agent/triage": 10, "agent/versions": 10, "agent/finetune": 10, "agent": 10, "agent/catalog": 10,
	"agent/tune": 11, "agent/production": 11, "internal/deployfixture": 11, "agent/coldstart": 11, "serve": 11,
	"cmd/pioneer": 12, "bench": 12, "bench/judge": 12, "bench/engine": 13, "bench/generate": 13, "bench/train": 13, "bench/nano": 13,
	"bench/production": 13, "bench/mix": 13, "bench/reliability": 13, "bench/load": 13, "bench/llamacpp": 13, "bench/classify": 13,
	"bench/models": 13, "bench/coldstart": 13, "bench/adaptft": 13, "bench/serve": 13,
}

const module = "github.com/pioneer-ai/pioneer/"

func TestImportsGoDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		f, ok := floor[pkg]
		if !ok {
			t.Errorf("%s is on no floor: place it in layers_test.go and docs/DESIGN.md", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			if g, ok := floor[dep]; ok && g >= f {
				t.Errorf("%s (floor %d) imports %s (floor %d): imports go down", pkg, f, dep, g)
			}
		}
	}
}
