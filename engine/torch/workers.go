package torch

import (
	"fmt"
	"os"
	"syscall"
)

// spinning sets for libgomp, libtorch's OpenMP runtime, how its worker threads wait for
// the next parallel region, the values SpinWorkers gives OMP_WAIT_POLICY and
// GOMP_SPINCOUNT: busy-waiting for about 300,000 pauses (a few milliseconds) before
// sleeping. libgomp reads them once, when the program starts.
var spinning = map[string]string{"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "300000"}

// SpinWorkers re-executes the running program (the same process, arguments and
// environment) with spinning's values added to its environment, unless either variable is
// set already (a user's own choice, or the re-executed program itself); it returns only
// when it does not re-execute, or when that fails.
//
// Why: decoding runs a few hundred parallel regions per token, 20 to 100 microseconds
// each, from Go threads that each own a team of workers, so libgomp counts more of them
// than there are cores and lets idle workers spin for only 100 pauses before they sleep
// on a futex; waking them again cost a quarter of a decoding step's time on 2 cores
// (perf), and with ACTIVE (whose throttled spin is 1,000 pauses) 8-bit decoding of
// SmolLM2-135M ran about twice as fast. GOMP_SPINCOUNT bounds the unthrottled wait, so
// that idle workers do not hold a core for minutes (ACTIVE's default).
func SpinWorkers() error {
	for k := range spinning {
		if _, set := os.LookupEnv(k); set {
			return nil
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("spinning workers: %w", err)
	}
	env := os.Environ()
	for k, v := range spinning {
		env = append(env, k+"="+v)
	}
	if err := syscall.Exec(exe, os.Args, env); err != nil {
		return fmt.Errorf("spinning workers: re-executing %s: %w", exe, err)
	}
	return nil
}
