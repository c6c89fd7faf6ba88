package sandbox

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// run is Python with a short CPU limit; a machine without the sandbox skips the test,
// saying why.
func run(t *testing.T, program string) Result {
	t.Helper()
	res, err := Python(context.Background(), program, Limits{CPU: time.Second, Memory: 512 << 20})
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("no sandbox on this machine: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestPython: a program whose tests pass passes; a failing assert, a crash, a loop
// without end and a memory bomb do not (the loop as timed out); the network cannot be
// reached, not even a server of the parent on the loopback; files are written in a
// folder of its own, removed after; no variable of the parent's environment is seen.
func TestPython(t *testing.T) {
	ok := "def add(a, b):\n    return a + b\n\nassert add(1, 2) == 3\nassert add(-1, 1) == 0\n"
	if r := run(t, ok); !r.Passed || r.ExitCode != 0 {
		t.Fatalf("a passing program: %+v", r)
	}
	if r := run(t, "def add(a, b):\n    return a - b\n\nassert add(1, 2) == 3\n"); r.Passed || !strings.Contains(r.Stderr, "AssertionError") {
		t.Fatalf("a failing assert: %+v", r)
	}
	if r := run(t, "def f(:\n"); r.Passed || !strings.Contains(r.Stderr, "SyntaxError") {
		t.Fatalf("a syntax error: %+v", r)
	}
	start := time.Now()
	if r := run(t, "while True:\n    pass\n"); r.Passed || !r.TimedOut {
		t.Fatalf("a loop without end: %+v", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a loop without end ran %s", d)
	}
	if r := run(t, "x = bytearray(2 << 30)\n"); r.Passed || !strings.Contains(r.Stderr, "MemoryError") {
		t.Fatalf("a memory bomb: %+v", r)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("reached"))
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	probe := "import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', " + strconv.Itoa(port) + "))\nprint(s.recv(16))\n"
	if r := run(t, probe); r.Passed || strings.Contains(r.Stderr, "reached") {
		t.Fatalf("the program reached the parent's server: %+v", r)
	}

	t.Setenv("PIONEER_SECRET", "s3cret")
	files := "import os\nopen('out.txt', 'w').write('x')\nassert 'PIONEER_SECRET' not in os.environ, 'the parent environment leaked'\nprint(os.getcwd())\nassert os.path.exists(os.path.join(os.getcwd(), 'out.txt'))\nraise SystemExit(os.getcwd())\n"
	r := run(t, files)
	dir := strings.TrimSpace(r.Stderr)
	if !strings.Contains(dir, "pioneer-sandbox-") || strings.Contains(r.Stderr, "leaked") {
		t.Fatalf("the program's folder or environment: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.txt")); !os.IsNotExist(err) {
		t.Fatalf("the program's folder %s was not removed: %v", dir, err)
	}
}
