// Package serve is `pioneer serve`: an OpenAI-compatible HTTP server for a base model and
// its LoRA adapters — /v1/completions and /v1/chat/completions (streamed as server-sent
// events or not), /v1/models, /health, /metrics (Prometheus text) and /v1/feedback — with
// requests decoded together by continuous batching (rows of different adapters in one
// batch, each request joining and leaving between decoding steps), a
// bounded queue answered with 429, API keys, request limits, and every request and answer
// appended to a traffic log that production mode reads.
package serve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/internal/redact"
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
	// Quantized decodes with quantized copies of the weights (model.Quantize): the base
	// model's, which the caller makes, and every fully fine-tuned version's swapped in.
	Quantized bool
	// LogDir receives traffic.jsonl (every request and answer) and feedback.jsonl; ""
	// logs nothing.
	LogDir string
	// RotateBytes starts a new traffic file past this size (64 MiB).
	RotateBytes int64
	// Redact, when set, takes personal data out of everything the logs store (prompts,
	// answers, expected answers); a traffic line says how many matches of each kind.
	Redact *redact.Redactor
	// Task, when a classification task, constrains completions whose prompt is its
	// prompt filled with an input to its labels (infer.ClassifyBest, exact), with each
	// label's probability on request; other tasks are ignored.
	Task *task.Task
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
	// labels are the served classification task's label completions (nil: none), the
	// longest labelDepth tokens.
	labels     [][]int
	labelDepth int
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
	if cfg.Model.Pad < 0 || cfg.Model.Pad >= info.VocabSize {
		return nil, fmt.Errorf("serve: %s: padding id %d outside the vocabulary of %d", cfg.Model.Dir, cfg.Model.Pad, info.VocabSize)
	}
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
	if cfg.Task != nil && cfg.Task.Type == task.Classification {
		labels, err := cfg.Task.LabelTokens(cfg.Model.Tokenizer, cfg.Model.EOS)
		if err != nil {
			s.closeSets()
			return nil, fmt.Errorf("serve: %w", err)
		}
		s.labels = labels
		for _, l := range labels {
			s.labelDepth = max(s.labelDepth, len(l))
		}
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
		d, path, kind, err := openDeployment(cfg.Deployment)
		if err != nil {
			s.closeSets()
			return nil, err
		}
		if kind == versions.Model { // a model of its own, decoded beside the base model
			if d.full, err = s.loadFull(path); err != nil {
				s.closeSets()
				return nil, fmt.Errorf("serve: deployment version %s: %w", d.version, err)
			}
		} else {
			set, err := lora.LoadDetached(path, cfg.Model.LM)
			if err != nil {
				s.closeSets()
				return nil, fmt.Errorf("serve: deployment version %s: %w", d.version, err)
			}
			d.index = len(s.sets)
			s.sets = append(s.sets, set)
		}
		s.adapter[cfg.DeploymentName] = d.index
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
	if s.deploy != nil && s.deploy.full != nil {
		s.deploy.full.Close()
	}
}

// Close stops taking requests, lets the sequences being decoded finish, and flushes the
// logs.
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
	classify  bool           // answered with a label of the served task (ClassifyBest), not decoded
	lm        model.CausalLM // the model a classification runs on (the batcher's choice)
	probs     bool           // and every label's probability (Classify)
	tokens    chan int       // each new token (closed when the row ends)
	result    chan result    // one result
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
	reason string             // "stop" or "length"
	probs  map[string]float64 // classification with label_probs: each label's probability
	err    error
}

// running is a job the decoder is working on.
type running struct {
	job *job
	got []int
}

// engine is one model's decoding: the base model with the adapters mixed in, or a
// deployment version fine-tuned in every weight (a model of its own).
type engine struct {
	lm     model.CausalLM
	dec    *infer.Decoder // nil when it could not be made (err says why)
	err    error
	active map[int]*running
}

// newEngine makes lm's engine; one whose decoder cannot be made fails its requests with
// the reason (New checked what the decoder checks, so this is not expected).
func (s *Server) newEngine(lm model.CausalLM, mixed bool) *engine {
	o := infer.DecoderOptions{StopTokens: s.cfg.Model.EOS, PadID: s.cfg.Model.Pad}
	if mixed {
		o.SetRows = func(tags []int) error {
			if s.mix == nil {
				return nil
			}
			return s.mix.SetRows(tags)
		}
	}
	dec, err := infer.NewDecoder(lm, o)
	if err != nil {
		err = fmt.Errorf("serve: %w", err)
	}
	return &engine{lm: lm, dec: dec, err: err, active: map[int]*running{}}
}

func (e *engine) close() {
	if e.dec != nil {
		e.dec.Close()
	}
}

// finish answers a running job and takes it out of the engine.
func (e *engine) finish(id int, res result) {
	r := e.active[id]
	r.job.result <- res
	close(r.job.tokens)
	delete(e.active, id)
}

// batcher is continuous batching: between any two decoding steps, queued jobs join the
// decoder (up to MaxBatch sequences at once) and finished ones leave, so that a request
// never waits for a batch to end. A version switch of the deployment waits until no
// sequence of the deployment decodes; meanwhile the deployment's new requests wait and
// every other model's go on. A deployment version fine-tuned in every weight decodes on
// an engine of its own, stepped in turn with the base model's.
func (s *Server) batcher() {
	defer close(s.done)
	// Every step on one OS thread: libtorch's CPU thread pool belongs to the thread that
	// calls it (the thread ends with the goroutine).
	runtime.LockOSThread()
	var waiting []*job
	pendingSwap := ""
	closing := errors.New("the server is shutting down")
	base := s.newEngine(s.cfg.Model.LM, true)
	var full *engine // the deployment's own model, when its version is one
	engines := func() []*engine {
		if full != nil {
			return []*engine{base, full}
		}
		return []*engine{base}
	}
	// follow makes the full engine match the deployment's version (after New, a swap)
	follow := func() {
		var lm model.CausalLM
		if s.deploy != nil {
			lm = s.deploy.full
		}
		if full != nil && full.lm != lm { // no deployment sequence decodes on it now
			full.close()
			full = nil
		}
		if lm != nil && full == nil {
			full = s.newEngine(lm, false)
		}
	}
	follow()
	defer func() {
		for _, e := range engines() {
			e.close()
			for _, r := range e.active {
				r.job.fail(closing)
			}
		}
		for _, j := range waiting {
			j.fail(closing)
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
	isDeployment := func(j *job) bool { return s.deploy != nil && j.model == s.cfg.DeploymentName }
	occupancy := func() (n int, deployment bool) {
		for _, e := range engines() {
			n += len(e.active)
			for _, r := range e.active {
				deployment = deployment || isDeployment(r.job)
			}
		}
		return n, deployment
	}
	// route is where a job decodes: its engine and adapter row.
	route := func(j *job) (*engine, int) {
		if isDeployment(j) {
			if full != nil {
				return full, -1
			}
			return base, s.deploy.index
		}
		return base, j.row
	}
	quitting := false
	for {
		if n, _ := occupancy(); n == 0 && len(waiting) == 0 {
			if quitting {
				return
			}
			select {
			case j := <-s.jobs:
				waiting = append(waiting, j)
			case v := <-s.swapC():
				pendingSwap = v
			case <-s.quit:
				return
			}
		}
		select {
		case <-s.quit:
			quitting = true // what decodes finishes; nothing new starts
		default:
		}
		if quitting {
			for _, j := range waiting {
				j.fail(closing)
			}
			waiting = nil
		}
	take: // as many queued jobs as there are free rows
		for n, _ := occupancy(); !quitting && len(waiting) < s.cfg.MaxBatch-n; {
			select {
			case j := <-s.jobs:
				waiting = append(waiting, j)
			case v := <-s.swapC():
				pendingSwap = v
			default:
				break take
			}
		}
		if _, live := occupancy(); pendingSwap != "" && !live {
			s.swapLocked(pendingSwap)
			pendingSwap = ""
			follow()
		}
		now := time.Now()
		keep := waiting[:0]
		var classify []*job
		n, _ := occupancy()
		for _, j := range waiting {
			if err := j.ctx.Err(); err != nil {
				j.fail(err)
				continue
			}
			held := pendingSwap != "" && isDeployment(j)
			if held || (!j.classify && n >= s.cfg.MaxBatch) {
				keep = append(keep, j)
				continue
			}
			e, row := route(j)
			if e.err != nil {
				j.fail(e.err)
				continue
			}
			j.row, j.startedAt = row, now
			if j.classify {
				j.lm = e.lm
				classify = append(classify, j)
				continue
			}
			id, err := e.dec.Add(infer.Request{Prompt: j.prompt, MaxNewTokens: j.maxNew, Temperature: j.temp, TopP: j.topP, Seed: j.seed, Tag: row})
			if err != nil {
				j.fail(err)
				continue
			}
			e.active[id] = &running{job: j}
			n++
		}
		waiting = keep
		if len(classify) > 0 { // between two steps, as a prefill would be
			s.classify(classify)
		}
		s.metrics.queue(len(s.jobs) + len(waiting))
		for _, e := range engines() {
			if len(e.active) == 0 || e.dec == nil {
				continue
			}
			rows, t0 := len(e.active), time.Now()
			toks, err := e.dec.Step()
			s.metrics.batch(rows, time.Since(t0))
			if err != nil { // every sequence in the decoder fails; a fresh one goes on
				for id := range e.active {
					e.finish(id, result{err: err})
				}
				e.close()
				fresh := s.newEngine(e.lm, e == base)
				e.dec, e.err = fresh.dec, fresh.err
				continue
			}
			s.deliver(e, toks)
			for id, r := range e.active { // requests whose clients left or whose time is up
				if err := r.job.ctx.Err(); err != nil {
					e.dec.Cancel(id)
					e.finish(id, result{err: err})
				}
			}
		}
	}
}

// classify answers classification jobs with a label each, one adapter at a time (the
// label search runs batches of its own): the label's tokens (its end-of-sequence token
// left out) as the answer, and with probs every label's probability, from scoring every
// label (infer.Classify).
func (s *Server) classify(jobs []*job) {
	type key struct {
		lm  model.CausalLM
		row int
	}
	byRow := map[key][]*job{}
	var rows []key
	for _, j := range jobs {
		k := key{j.lm, j.row}
		if byRow[k] == nil {
			rows = append(rows, k)
		}
		byRow[k] = append(byRow[k], j)
	}
	eos := map[int]bool{}
	for _, e := range s.cfg.Model.EOS {
		eos[e] = true
	}
	for _, row := range rows {
		group := byRow[row]
		err := func() error {
			if s.mix != nil && row.lm == s.cfg.Model.LM {
				if err := s.mix.SetAll(row.row); err != nil {
					return err
				}
			}
			prompts := make([][]int, len(group))
			probs := false
			for i, j := range group {
				prompts[i] = j.prompt
				probs = probs || j.probs
			}
			m := row.lm
			chosen := make([]int, len(group))
			var logps [][]float64
			if probs || m.Info().SlidingWindow > 0 {
				cls, err := infer.Classify(m, prompts, s.labels, len(group))
				if err != nil {
					return err
				}
				for i, c := range cls {
					chosen[i] = c.Label
					logps = append(logps, c.LogProbs)
				}
			} else {
				best, err := infer.ClassifyBest(m, prompts, s.labels, len(group), 0)
				if err != nil {
					return err
				}
				for i, b := range best {
					chosen[i] = b.Label
				}
			}
			for i, j := range group {
				var toks []int
				for _, t := range s.labels[chosen[i]] {
					if !eos[t] {
						toks = append(toks, t)
					}
				}
				for _, t := range toks {
					j.tokens <- t
				}
				res := result{tokens: toks, reason: "stop"}
				if j.probs {
					res.probs = labelProbs(s.cfg.Task.Labels, logps[i])
				}
				j.result <- res
				close(j.tokens)
			}
			return nil
		}()
		if err != nil {
			for _, j := range group {
				j.fail(err)
			}
		}
	}
}

// labelProbs normalises label log-probabilities into probabilities over the labels.
func labelProbs(labels []string, logps []float64) map[string]float64 {
	top := math.Inf(-1)
	for _, lp := range logps {
		top = math.Max(top, lp)
	}
	sum := 0.0
	for _, lp := range logps {
		sum += math.Exp(lp - top)
	}
	out := make(map[string]float64, len(labels))
	for i, l := range labels {
		out[l] = math.Exp(logps[i]-top) / sum
	}
	return out
}

// deliver hands a step's tokens to their jobs, and ends those that are done: a stop
// token or a stop string ("stop"), or their token limit ("length").
func (s *Server) deliver(e *engine, toks []infer.Token) {
	tok := s.cfg.Model.Tokenizer
	for _, t := range toks {
		r := e.active[t.Seq]
		if r == nil {
			continue
		}
		if t.Token < 0 {
			e.finish(t.Seq, result{tokens: r.got, reason: "stop"})
			continue
		}
		r.got = append(r.got, t.Token)
		r.job.tokens <- t.Token
		if len(r.job.stops) > 0 {
			text := tok.Decode(r.got, true)
			if slices.ContainsFunc(r.job.stops, func(st string) bool { return st != "" && strings.Contains(text, st) }) {
				e.dec.Cancel(t.Seq) // the handler cuts the text at it
				e.finish(t.Seq, result{tokens: r.got, reason: "stop"})
				continue
			}
		}
		if t.Reason == "length" {
			e.finish(t.Seq, result{tokens: r.got, reason: "length"})
		}
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
