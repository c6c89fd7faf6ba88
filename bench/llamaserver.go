package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// LlamaCppBin is the folder of llama.cpp tools scripts/build-llamacpp.sh builds (a
// reference for the GGUF and serving benchmarks, never a dependency of Pioneer).
func LlamaCppBin() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.Getenv("HOME"), ".cache")
	}
	return filepath.Join(cache, "pioneer", "llama.cpp-0.3.36", "bin")
}

// LlamaServer is a llama.cpp llama-server process on a loopback port.
type LlamaServer struct {
	cmd    *exec.Cmd
	URL    string
	logs   *bytes.Buffer
	exited chan struct{}
}

// StartLlamaServer runs bin (llama-server) on model with args added to the address
// flags, and waits until its /health answers 200 (at most a minute).
func StartLlamaServer(bin, model string, args ...string) (*LlamaServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	all := append([]string{"-m", model, "--host", "127.0.0.1", "--port", fmt.Sprint(port)}, args...)
	s := &LlamaServer{cmd: exec.Command(bin, all...), URL: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &bytes.Buffer{}}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }() // its status is of no use: Stop kills it
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if r, err := http.Get(s.URL + "/health"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("llama-server exited: %s", Tail(s.logs.String(), 2000))
		default:
		}
	}
	s.Stop()
	return nil, fmt.Errorf("llama-server did not become ready in a minute: %s", Tail(s.logs.String(), 2000))
}

// Stop kills the server (a reference server has nothing to save) and waits for it.
func (s *LlamaServer) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	<-s.exited
}

// Logs is the tail of what the server printed.
func (s *LlamaServer) Logs() string { return Tail(s.logs.String(), 2000) }

// Post sends req as JSON to path and decodes a 200 answer into resp.
func (s *LlamaServer) Post(path string, req, resp any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	r, err := http.Post(s.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer r.Body.Close()
	if r.StatusCode != 200 {
		return fmt.Errorf("llama-server %s: status %d", path, r.StatusCode)
	}
	return json.NewDecoder(r.Body).Decode(resp)
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
