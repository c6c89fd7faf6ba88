// Package crash lets tests and the reliability probes (bench/reliability) stop the process
// at a named point of a state change the way a crash or an operator would there: when the
// environment variable PIONEER_CRASH_AT names the point, Point kills the process with
// SIGKILL (nothing after it runs: no deferred call, no flush); when PIONEER_SIGNAL_AT
// names it, Point sends the process SIGTERM (a stop request, handled as from outside) and
// returns. A name may end in "#N": the point's N-th pass in the process. Without those
// variables Point does nothing.
package crash

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

var (
	killAt   = os.Getenv("PIONEER_CRASH_AT")
	signalAt = os.Getenv("PIONEER_SIGNAL_AT")
	mu       sync.Mutex
	passes   = map[string]int{}
)

// Point marks a point where a kill or a stop request may be simulated.
func Point(name string) {
	if killAt == "" && signalAt == "" {
		return
	}
	mu.Lock()
	passes[name]++
	nth := fmt.Sprintf("%s#%d", name, passes[name])
	mu.Unlock()
	switch {
	case killAt == name || killAt == nth:
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	case signalAt == name || signalAt == nth:
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}
