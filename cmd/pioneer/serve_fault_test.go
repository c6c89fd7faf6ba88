package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pioneer-ai/pioneer/agent/trafficlog"
	"github.com/pioneer-ai/pioneer/data"
)

// TestMain lets a test run this binary as the pioneer command (PIONEER_RUN_MAIN=1), so
// that a test can kill a real server process.
func TestMain(m *testing.M) {
	if os.Getenv("PIONEER_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startServe runs `pioneer serve` as a child process on a free loopback port and waits
// for /health.
func startServe(t *testing.T, logs string) (*exec.Cmd, string, chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(os.Args[0], "serve", "--model", data.NanoModel, "--addr", addr, "--log-dir", logs)
	cmd.Env = append(os.Environ(), "PIONEER_RUN_MAIN=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() // its exit status is of no use here
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r, err := http.Get(url + "/health"); err == nil {
			r.Body.Close()
			return cmd, url, exited
		}
		select {
		case <-exited:
			t.Fatal("pioneer serve exited before it served")
		default:
		}
	}
	cmd.Process.Kill()
	<-exited
	t.Fatal("pioneer serve did not come up")
	return nil, "", nil
}

// TestServeSurvivesKill: a server killed (SIGKILL) while it streams leaves a traffic log
// of whole lines holding every answer it finished; restarted on the same folder it serves
// again and the log goes on.
func TestServeSurvivesKill(t *testing.T) {
	logs := t.TempDir()
	cmd, url, exited := startServe(t, logs)
	post := func(url, body string) (*http.Response, error) {
		return http.Post(url+"/v1/completions", "application/json", strings.NewReader(body))
	}
	for i := range 3 {
		r, err := post(url, fmt.Sprintf(`{"prompt": "Once upon a time %d", "max_tokens": 8}`, i))
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("request %d: %v %v", i, r, err)
		}
		r.Body.Close()
	}
	r, err := post(url, `{"prompt": "Once upon a time", "max_tokens": 200, "stream": true}`)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("stream: %v %v", r, err)
	}
	if _, err := bufio.NewReader(r.Body).ReadString('\n'); err != nil { // it is streaming
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	r.Body.Close()

	lines := func() []trafficlog.Record {
		b, err := os.ReadFile(filepath.Join(logs, trafficlog.TrafficFile))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("the traffic log ends in a torn line: %q", b[max(0, len(b)-80):])
		}
		var recs []trafficlog.Record
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var rec trafficlog.Record
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("a line of the traffic log does not parse: %v: %q", err, l)
			}
			recs = append(recs, rec)
		}
		return recs
	}
	if recs := lines(); len(recs) != 3 {
		t.Fatalf("after the kill the traffic log holds %d answers, want the 3 finished", len(recs))
	}
	cmd, url, exited = startServe(t, logs)
	defer func() { cmd.Process.Kill(); <-exited }() // on a failure below
	r, err = post(url, `{"prompt": "The little dog", "max_tokens": 8}`)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("after the restart: %v %v", r, err)
	}
	r.Body.Close()
	cmd.Process.Signal(syscall.SIGTERM) // a clean stop flushes the log
	<-exited
	if recs := lines(); len(recs) != 4 || !strings.Contains(recs[3].Prompt, "little dog") {
		t.Fatalf("after the restart the log holds %d answers", len(recs))
	}
}
