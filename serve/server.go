// Package serve is `pioneer serve`: an OpenAI-compatible HTTP server for a base model and
// its LoRA adapters — /v1/completions and /v1/chat/completions (streamed as server-sent
// events or not), /v1/models, /health, /metrics (Prometheus text) and /v1/feedback — with
// requests decoded together in batches (rows of different adapters in one batch), a
// bounded queue answered with 429, API keys, request limits, and every request and answer
// appended to a traffic log that production mode reads.
package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
)

// Config configures a Server. Zero values take the defaults noted.
type Config struct {
	Model     *model.Pretrained
	ModelName string            // the base model's id in requests and /v1/models (default: its folder's name)
	Adapters  map[string]string // adapter id -> PEFT adapter folder
	APIKeys   []string          // accepted bearer keys; none: no key needed
	// Limits: rows decoded together (16), requests waiting (64), new tokens a request may
	// ask for (512), prompt tokens (the model's positions less one), request body bytes
	// (1 MiB), and how long a request may take from arrival (2 minutes).
	MaxBatch, MaxQueue, MaxNewTokens, MaxPromptTokens int
	MaxBody                                           int64
	Timeout                                           time.Duration
	// LogDir receives traffic.jsonl (every request and answer) and feedback.jsonl; ""
	// logs nothing.
	LogDir string
	// RotateBytes starts a new traffic file past this size (64 MiB).
	RotateBytes int64
	// Deployment is a production run folder (pioneer adapt's --out, or pioneer start's)
	// whose current version is served as model DeploymentName ("deployment") and
	// followed: a promotion, approval or rollback is swapped in between batches, checked
	// every Poll (1 s), without a restart; deployment.jsonl in LogDir records each switch.
	Deployment     string
	DeploymentName string
	Poll           time.Duration
}

// Server is a running server: Handler serves it, Close stops its batcher and flushes its
// logs.
type Server struct {
	cfg      Config
	names    []string       // model ids: the base first, then adapters in sorted order
	adapter  map[string]int // id -> index into sets (-1: the base)
	sets     []*lora.Set
	mix      *lora.Mixture
	jobs     chan *job
	quit     chan struct{}
	done     chan struct{}
	metrics  *metrics
	traffic  *trafficLog
	deploy   *deployment
	deployMu sync.Mutex // guards deploy.version for Serving
	closeMu  sync.Once
}

// New loads the adapters onto the model and starts the batcher.
func New(cfg Config) (*Server, error) {
	if cfg.Model == nil {
		return nil, errors.New("serve: no model")
	}
	if len(cfg.Model.EOS) == 0 {
		return nil, fmt.Errorf("serve: %s names no end-of-sequence token", cfg.Model.Dir)
	}
	info := cfg.Model.LM.Info()
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.MaxBatch, 16)
	def(&cfg.MaxQueue, 64)
	def(&cfg.MaxNewTokens, 512)
	def(&cfg.MaxPromptTokens, info.MaxPositions-1)
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.RotateBytes == 0 {
		cfg.RotateBytes = 64 << 20
	}
	if cfg.ModelName == "" {
		cfg.ModelName = filepath.Base(cfg.Model.Dir)
	}
	s := &Server{cfg: cfg, adapter: map[string]int{cfg.ModelName: -1}, names: []string{cfg.ModelName},
		jobs: make(chan *job, cfg.MaxQueue), quit: make(chan struct{}), done: make(chan struct{}), metrics: newMetrics()}
	ids := make([]string, 0, len(cfg.Adapters))
	for id := range cfg.Adapters {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if _, dup := s.adapter[id]; dup || id == "" {
			return nil, fmt.Errorf("serve: adapter id %q is empty or the base model's", id)
		}
		set, err := lora.LoadDetached(cfg.Adapters[id], cfg.Model.LM)
		if err != nil {
			s.closeSets()
			return nil, fmt.Errorf("serve: adapter %s: %w", id, err)
		}
		s.adapter[id] = len(s.sets)
		s.sets = append(s.sets, set)
		s.names = append(s.names, id)
	}
	if cfg.Deployment != "" {
		if cfg.DeploymentName == "" {
			cfg.DeploymentName = "deployment"
			s.cfg.DeploymentName = cfg.DeploymentName
		}
		if cfg.Poll == 0 {
			s.cfg.Poll = time.Second
		}
		if _, dup := s.adapter[cfg.DeploymentName]; dup {
			s.closeSets()
			return nil, fmt.Errorf("serve: the deployment's id %q is taken", cfg.DeploymentName)
		}
		d, path, err := openDeployment(cfg.Deployment)
		if err != nil {
			s.closeSets()
			return nil, err
		}
		set, err := lora.LoadDetached(path, cfg.Model.LM)
		if err != nil {
			s.closeSets()
			return nil, fmt.Errorf("serve: deployment version %s: %w", d.version, err)
		}
		d.index = len(s.sets)
		s.adapter[cfg.DeploymentName] = d.index
		s.sets = append(s.sets, set)
		s.names = append(s.names, cfg.DeploymentName)
		s.deploy = d
	}
	if len(s.sets) > 0 {
		mix, err := lora.Mix(cfg.Model.LM, s.sets...)
		if err != nil {
			s.closeSets()
			return nil, err
		}
		s.mix = mix
	}
	if cfg.LogDir != "" {
		if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
			s.closeSets()
			return nil, err
		}
		tl, err := openTrafficLog(cfg.LogDir, cfg.RotateBytes)
		if err != nil {
			s.closeSets()
			return nil, err
		}
		s.traffic = tl
	}
	go s.batcher()
	if s.deploy != nil {
		go s.deploy.watch(s.cfg.Poll)
	}
	return s, nil
}

func (s *Server) closeSets() {
	if s.mix != nil {
		s.mix.Close()
	}
	for _, set := range s.sets {
		set.Close()
	}
}

// Close stops taking requests, lets the batch in progress finish, and flushes the logs.
func (s *Server) Close() error {
	var err error
	s.closeMu.Do(func() {
		if s.deploy != nil {
			close(s.deploy.stop)
			<-s.deploy.stopped
		}
		close(s.quit)
		<-s.done
		s.closeSets()
		if s.traffic != nil {
			err = s.traffic.Close()
		}
	})
	return err
}

// job is one request's decoding: its prompt, options, and where its tokens go.
type job struct {
	ctx       context.Context
	model     string
	row       int // the adapter's index (-1: the base)
	prompt    []int
	maxNew    int
	temp      float64
	topP      float64
	seed      uint64
	stops     []string
	tokens    chan int    // each new token (closed when the row ends)
	result    chan result // one result
	queuedAt  time.Time
	startedAt time.Time
}

// fail answers a job that will not be decoded.
func (j *job) fail(err error) {
	j.result <- result{err: err}
	close(j.tokens)
}

type result struct {
	tokens []int
	reason string // "stop" or "length"
	err    error
}

// compatible: rows that may share a batch decode with the same sampling (greedy, or one
// seeded sample of one temperature and top-p).
func compatible(a, b *job) bool {
	return a.temp == b.temp && a.topP == b.topP && (a.temp == 0 || a.seed == b.seed)
}

// batcher runs the batches: it takes the first waiting job and every compatible job
// already waiting (up to MaxBatch), decodes them together, and goes on.
func (s *Server) batcher() {
	defer close(s.done)
	var held *job
	// On the way out, what is still waiting is answered, never left hanging.
	defer func() {
		closing := errors.New("the server is shutting down")
		if held != nil {
			held.fail(closing)
		}
		for {
			select {
			case j := <-s.jobs:
				j.fail(closing)
			default:
				return
			}
		}
	}()
	for {
		first := held
		held = nil
		if first == nil {
			select {
			case first = <-s.jobs:
			case v := <-s.swapC():
				s.swapLocked(v)
				continue
			case <-s.quit:
				return
			}
		}
		select { // a version switch waiting goes before the next batch
		case v := <-s.swapC():
			s.swapLocked(v)
		default:
		}
		batch := []*job{first}
	gather:
		for len(batch) < s.cfg.MaxBatch {
			select {
			case j := <-s.jobs:
				if !compatible(first, j) {
					held = j
					break gather
				}
				batch = append(batch, j)
			default:
				break gather
			}
		}
		s.metrics.queue(len(s.jobs))
		s.run(batch)
	}
}

// swapC is the deployment's channel of version switches (nil, never ready, without one).
func (s *Server) swapC() chan string {
	if s.deploy == nil {
		return nil
	}
	return s.deploy.swaps
}

func (s *Server) swapLocked(v string) {
	s.deployMu.Lock()
	defer s.deployMu.Unlock()
	s.swap(v)
}

// run decodes one batch: each row stops at its own token limit, stop string or end of
// sequence, or when its request's context ends.
func (s *Server) run(batch []*job) {
	var live []*job
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.fail(err)
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	prompts := make([][]int, len(live))
	rows := make([]int, len(live))
	maxNew := 0
	now := time.Now()
	for i, j := range live {
		prompts[i], rows[i] = j.prompt, j.row
		maxNew = max(maxNew, j.maxNew)
		j.startedAt = now
	}
	if s.mix != nil {
		if err := s.mix.SetRows(rows); err != nil {
			for _, j := range live {
				j.fail(err)
			}
			return
		}
	}
	s.metrics.batch(len(live))
	tok := s.cfg.Model.Tokenizer
	got := make([][]int, len(live))
	reason := make([]string, len(live))
	out, err := infer.Generate(s.cfg.Model.LM, prompts, infer.GenerateOptions{
		MaxNewTokens: maxNew, Temperature: live[0].temp, TopP: live[0].topP, Seed: live[0].seed,
		StopTokens: s.cfg.Model.EOS, PadID: s.cfg.Model.Pad,
		OnToken: func(r, t int) bool {
			j := live[r]
			if j.ctx.Err() != nil {
				reason[r] = "cancelled"
				return false
			}
			got[r] = append(got[r], t)
			j.tokens <- t
			if len(j.stops) > 0 {
				text := tok.Decode(got[r], true)
				for _, st := range j.stops {
					if st != "" && strings.Contains(text, st) {
						reason[r] = "stop" // the handler cuts the text at it
						return false
					}
				}
			}
			if len(got[r]) >= j.maxNew {
				reason[r] = "length"
				return false
			}
			return true
		}})
	for i, j := range live {
		switch {
		case err != nil:
			j.result <- result{err: err}
		case reason[i] == "cancelled":
			j.result <- result{err: j.ctx.Err()}
		default:
			rs := reason[i]
			if rs == "" {
				rs = map[string]string{"stop_token": "stop", "stop_string": "stop", "length": "length"}[out[i].Reason]
			}
			j.result <- result{tokens: got[i], reason: rs}
		}
		close(j.tokens)
	}
}

// Handler is the server's HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /metrics", s.metrics.serve)
	mux.HandleFunc("GET /v1/models", s.auth(s.models))
	mux.HandleFunc("POST /v1/completions", s.auth(s.completions))
	mux.HandleFunc("POST /v1/chat/completions", s.auth(s.chat))
	mux.HandleFunc("POST /v1/feedback", s.auth(s.feedback))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "invalid_request_error", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}
