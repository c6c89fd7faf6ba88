package torch

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
)

// DefaultCPUReuse is how many bytes of freed large CPU blocks libtorch keeps for reuse
// unless PIONEER_CPU_REUSE_MB says otherwise; see SetCPUReuse.
const DefaultCPUReuse = 1 << 30

// SetCPUReuse sets how many bytes of freed CPU tensor memory (blocks of 256 KiB and more)
// are kept to serve later tensors of the same size class instead of going back to the
// system; 0 returns every block at once, as libtorch's own allocator does. A training
// step makes and frees the same large tensors each time, and without reuse the kernel
// maps and zeroes their pages again every step (cpualloc.cpp says how much that costs).
// The memory kept counts in the process's resident size.
func SetCPUReuse(bytes int64) { C.pt_cpu_reuse(C.int64_t(max(bytes, 0))) }

// CPUReuseStats reports the bytes kept for reuse now, and how many large blocks were
// served from them or newly allocated since start.
func CPUReuseStats() (kept, reused, fresh int64) {
	var k, r, f C.int64_t
	C.pt_cpu_reuse_stats(&k, &r, &f)
	return int64(k), int64(r), int64(f)
}

// cpuReuseFromEnv is the limit at start-up: PIONEER_CPU_REUSE_MB, or DefaultCPUReuse.
func cpuReuseFromEnv() (int64, error) {
	v := os.Getenv("PIONEER_CPU_REUSE_MB")
	if v == "" {
		return DefaultCPUReuse, nil
	}
	mb, err := strconv.ParseInt(v, 10, 64)
	if err != nil || mb < 0 {
		return DefaultCPUReuse, fmt.Errorf("PIONEER_CPU_REUSE_MB=%q is not a whole number of megabytes; using %d MB", v, DefaultCPUReuse>>20)
	}
	return mb << 20, nil
}
