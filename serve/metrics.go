package serve

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"
)

// metrics are the server's counters, served in Prometheus's text format.
type metrics struct {
	mu         sync.Mutex
	requests   map[string]int // "path status" -> count
	promptToks int64
	genToks    int64
	latencyB   []float64 // bucket upper bounds, seconds
	latencyC   []int64   // cumulative-to-be counts per bucket
	latencySum float64
	latencyN   int64
	batches    int64
	batchRows  int64
	stepSecs   float64
	queueDepth int
	logErrors  int64
	swaps      [2]int64 // failed, done
}

func newMetrics() *metrics {
	b := []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
	return &metrics{requests: map[string]int{}, latencyB: b, latencyC: make([]int64, len(b))}
}

func (m *metrics) request(path string, status int) {
	m.mu.Lock()
	m.requests[fmt.Sprintf("%s %d", path, status)]++
	m.mu.Unlock()
}

func (m *metrics) latency(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sec := d.Seconds()
	for i, b := range m.latencyB {
		if sec <= b {
			m.latencyC[i]++
			break
		}
	}
	m.latencySum += sec
	m.latencyN++
}

func (m *metrics) tokens(prompt, gen int) {
	m.mu.Lock()
	m.promptToks += int64(prompt)
	m.genToks += int64(gen)
	m.mu.Unlock()
}

func (m *metrics) batch(rows int, took time.Duration) {
	m.mu.Lock()
	m.batches++
	m.batchRows += int64(rows)
	m.stepSecs += took.Seconds()
	m.mu.Unlock()
}

func (m *metrics) queue(n int) {
	m.mu.Lock()
	m.queueDepth = n
	m.mu.Unlock()
}

func (m *metrics) swap(ok bool) {
	m.mu.Lock()
	if ok {
		m.swaps[1]++
	} else {
		m.swaps[0]++
	}
	m.mu.Unlock()
}

func (m *metrics) logError() {
	m.mu.Lock()
	m.logErrors++
	m.mu.Unlock()
}

func (m *metrics) serve(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintln(w, "# HELP pioneer_requests_total Requests by path and HTTP status.")
	fmt.Fprintln(w, "# TYPE pioneer_requests_total counter")
	keys := make([]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var path string
		var status int
		fmt.Sscanf(k, "%s %d", &path, &status)
		fmt.Fprintf(w, "pioneer_requests_total{path=%q,status=\"%d\"} %d\n", path, status, m.requests[k])
	}
	fmt.Fprintln(w, "# TYPE pioneer_prompt_tokens_total counter")
	fmt.Fprintf(w, "pioneer_prompt_tokens_total %d\n", m.promptToks)
	fmt.Fprintln(w, "# TYPE pioneer_generated_tokens_total counter")
	fmt.Fprintf(w, "pioneer_generated_tokens_total %d\n", m.genToks)
	fmt.Fprintln(w, "# HELP pioneer_request_duration_seconds Completion requests, arrival to last byte.")
	fmt.Fprintln(w, "# TYPE pioneer_request_duration_seconds histogram")
	var cum int64
	for i, b := range m.latencyB {
		cum += m.latencyC[i]
		fmt.Fprintf(w, "pioneer_request_duration_seconds_bucket{le=\"%g\"} %d\n", b, cum)
	}
	fmt.Fprintf(w, "pioneer_request_duration_seconds_bucket{le=\"+Inf\"} %d\n", m.latencyN)
	fmt.Fprintf(w, "pioneer_request_duration_seconds_sum %g\npioneer_request_duration_seconds_count %d\n", m.latencySum, m.latencyN)
	fmt.Fprintln(w, "# HELP pioneer_batches_total Decoding steps (continuous batching: one batch per step); pioneer_batch_rows_total the requests they held (occupancy = rows / batches); pioneer_step_seconds_total the time they took (prefills of joining requests included).")
	fmt.Fprintln(w, "# TYPE pioneer_batches_total counter")
	fmt.Fprintf(w, "pioneer_batches_total %d\n", m.batches)
	fmt.Fprintln(w, "# TYPE pioneer_batch_rows_total counter")
	fmt.Fprintf(w, "pioneer_batch_rows_total %d\n", m.batchRows)
	fmt.Fprintln(w, "# TYPE pioneer_step_seconds_total counter")
	fmt.Fprintf(w, "pioneer_step_seconds_total %g\n", m.stepSecs)
	fmt.Fprintln(w, "# TYPE pioneer_queue_depth gauge")
	fmt.Fprintf(w, "pioneer_queue_depth %d\n", m.queueDepth)
	fmt.Fprintln(w, "# HELP pioneer_version_swaps_total Deployment version switches, done and failed.")
	fmt.Fprintln(w, "# TYPE pioneer_version_swaps_total counter")
	fmt.Fprintf(w, "pioneer_version_swaps_total{result=\"done\"} %d\npioneer_version_swaps_total{result=\"failed\"} %d\n", m.swaps[1], m.swaps[0])
	fmt.Fprintln(w, "# TYPE pioneer_traffic_log_errors_total counter")
	fmt.Fprintf(w, "pioneer_traffic_log_errors_total %d\n", m.logErrors)
}
