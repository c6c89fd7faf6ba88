// Package sandbox runs a Python program that a model wrote, with its tests, in a
// subprocess that cannot reach the network (a network namespace of its own, no
// interface but a loopback that is down), in a temporary folder of its own that is
// removed after, with limits on CPU time, memory, file size, processes and wall time,
// and with an environment of a few fixed variables. It is what pass@1 on a code task
// (MBPP) stands on; it is no defence against a determined attacker on a machine that
// lets user namespaces be made (the kernel is the boundary), and where they cannot be
// made it refuses to run anything.
package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Limits bound one run. Zero values take the defaults noted.
type Limits struct {
	CPU    time.Duration // CPU time (5 s); the wall time allowed is twice it plus a second
	Memory int64         // address space in bytes (1 GiB)
	Output int           // bytes of stdout and stderr kept (64 KiB; the rest is dropped)
}

func (l *Limits) defaults() {
	if l.CPU <= 0 {
		l.CPU = 5 * time.Second
	}
	if l.Memory <= 0 {
		l.Memory = 1 << 30
	}
	if l.Output <= 0 {
		l.Output = 64 << 10
	}
}

// Result is how a run ended.
type Result struct {
	Passed   bool   `json:"passed"` // exit status 0 within the limits
	ExitCode int    `json:"exit_code"`
	TimedOut bool   `json:"timed_out,omitempty"`
	Stderr   string `json:"stderr,omitempty"` // its end, at most Limits.Output
}

// ErrUnavailable is returned (wrapped) when the sandbox cannot be made here: no python3,
// or no user and network namespaces for this user.
var ErrUnavailable = errors.New("sandbox unavailable")

// guard is run first in the child: it sets the resource limits (hard, so that the
// program cannot raise them), then runs the program from main.py as __main__.
const guard = `import resource, sys
def _lim(r, v):
    resource.setrlimit(r, (v, v))
_lim(resource.RLIMIT_CPU, %d)
_lim(resource.RLIMIT_AS, %d)
_lim(resource.RLIMIT_FSIZE, 1 << 20)
_lim(resource.RLIMIT_NPROC, 16)
_lim(resource.RLIMIT_CORE, 0)
_src = open("main.py").read()
del _lim
exec(compile(_src, "main.py", "exec"), {"__name__": "__main__"})
`

// Python runs program (the model's code followed by its tests, e.g. MBPP's asserts).
// An error is returned only when the sandbox could not run it (ErrUnavailable, a
// temporary folder that cannot be made, a stop request); a program that fails, crashes
// or runs out of time is a Result that did not pass.
func Python(ctx context.Context, program string, lim Limits) (Result, error) {
	lim.defaults()
	py, err := exec.LookPath("python3")
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	dir, err := os.MkdirTemp("", "pioneer-sandbox-")
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.py"), []byte(program), 0o600); err != nil {
		return Result{}, fmt.Errorf("sandbox: %w", err)
	}
	cpu := int((lim.CPU + time.Second - 1) / time.Second)
	wctx, cancel := context.WithTimeout(ctx, 2*lim.CPU+time.Second)
	defer cancel()
	// -I: isolated (no user site, no PYTHON* variables, the script's folder not on the
	// path), -S: no site module, -B: no bytecode written.
	cmd := exec.CommandContext(wctx, py, "-I", "-S", "-B", "-c", fmt.Sprintf(guard, cpu, lim.Memory))
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir, "LANG=C.UTF-8"}
	stderr := &tail{max: lim.Output}
	cmd.Stdout, cmd.Stderr = &tail{max: lim.Output}, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:     true, // its children die with it
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: os.Getuid(), HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: os.Getgid(), HostID: os.Getgid(), Size: 1}},
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err = cmd.Run()
	res := Result{Stderr: stderr.String()}
	if cmd.ProcessState == nil { // it never started
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	res.ExitCode = cmd.ProcessState.ExitCode()
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	if wctx.Err() != nil || isCPUKill(cmd.ProcessState) {
		res.TimedOut = true
	}
	res.Passed = err == nil && res.ExitCode == 0 && !res.TimedOut
	return res, nil
}

// isCPUKill reports whether the process died of its CPU limit.
func isCPUKill(ps *os.ProcessState) bool {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && (ws.Signal() == syscall.SIGXCPU || ws.Signal() == syscall.SIGKILL)
}

// tail keeps the last max bytes written to it.
type tail struct {
	buf bytes.Buffer
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.ToValidUTF8(t.buf.String(), "") }
