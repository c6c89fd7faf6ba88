package torch_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// TestCPUReuse: a freed large block serves the next tensor of its size class, what is kept
// stays under the limit, a limit of 0 keeps nothing, and a reused block holds what the
// new tensor says (zeros here), not what the old one held.
func TestCPUReuse(t *testing.T) {
	defer torch.SetCPUReuse(torch.DefaultCPUReuse)
	torch.SetCPUReuse(64 << 20)
	const n = 300_000 // 1.2 MB of float32
	fill := func(v float64) {
		s := torch.NewScope()
		defer s.Close()
		x := s.Full([]int64{n}, v, torch.Float32, torch.CPU)
		if got := f32(t, s.Slice(x, 0, n-2, n, 1)); got[1] != float32(v) {
			t.Fatalf("full %v: last value %v", v, got[1])
		}
	}
	fill(7) // the first block of the class: allocated, then kept when freed
	_, reused0, _ := torch.CPUReuseStats()
	for i := 0; i < 5; i++ {
		fill(float64(i))
	}
	kept, reused, _ := torch.CPUReuseStats()
	if reused-reused0 < 5 {
		t.Errorf("5 tensors of a freed block's class: %d reused blocks, want at least 5", reused-reused0)
	}
	if kept <= 0 || kept > 64<<20 {
		t.Errorf("kept %d bytes, want some and at most the 64 MB limit", kept)
	}
	s := torch.NewScope()
	z := s.Zeros([]int64{n}, torch.Float32, torch.CPU) // may take the block that held 4s
	for i, v := range f32(t, z) {
		if v != 0 {
			t.Fatalf("zeros on a reused block: [%d] = %v", i, v)
		}
	}
	s.Close()

	torch.SetCPUReuse(1 << 20) // under one block: everything kept is released
	if kept, _, _ := torch.CPUReuseStats(); kept > 1<<20 {
		t.Errorf("limit 1 MB: %d bytes kept", kept)
	}
	torch.SetCPUReuse(0)
	fill(1)
	if kept, _, _ := torch.CPUReuseStats(); kept != 0 {
		t.Errorf("limit 0: %d bytes kept", kept)
	}
}

// TestCPUHugePages: where transparent huge pages are on for memory that asks for them
// (the kernel's "madvise" or "always") and the kernel compacts memory to find them when
// asked (defrag "always", "madvise" or "defer+madvise": otherwise a fragmented machine
// may fall back to small pages), a freshly written 64 MiB tensor lies on huge pages: the
// process's AnonHugePages grows by most of it.
func TestCPUHugePages(t *testing.T) {
	thp := func(file string, modes ...string) bool {
		b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/" + file)
		for _, m := range modes {
			if err == nil && strings.Contains(string(b), "["+m+"]") {
				return true
			}
		}
		return false
	}
	if !thp("enabled", "madvise", "always") || !thp("defrag", "always", "madvise", "defer+madvise") {
		t.Skip("transparent huge pages are not on, or not compacted for, advised memory here")
	}
	before := anonHugeBytes(t)
	s := torch.NewScope()
	defer s.Close()
	const n = 16 << 20 // 64 MiB of float32, written
	x := s.Full([]int64{n}, 1, torch.Float32, torch.CPU)
	if got := f32(t, s.Slice(x, 0, n-1, n, 1)); got[0] != 1 {
		t.Fatalf("full: last value %v", got[0])
	}
	if grew := anonHugeBytes(t) - before; grew < 32<<20 {
		t.Errorf("a written 64 MiB tensor: AnonHugePages grew by %d bytes, want at least 32 MiB", grew)
	}
}

// anonHugeBytes is the process's anonymous memory on huge pages (/proc/self/smaps_rollup).
func anonHugeBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		t.Skipf("no /proc/self/smaps_rollup: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "AnonHugePages:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps_rollup: %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Skip("smaps_rollup has no AnonHugePages line")
	return 0
}
