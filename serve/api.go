package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pioneer-ai/pioneer/agent/trafficlog"
	"github.com/pioneer-ai/pioneer/model/chat"
)

// apiError writes OpenAI's error shape.
func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(s.cfg.APIKeys) > 0 {
			key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			good := false
			for _, k := range s.cfg.APIKeys {
				good = good || ok && subtle.ConstantTimeCompare([]byte(key), []byte(k)) == 1
			}
			if !good {
				s.metrics.request(r.URL.Path, http.StatusUnauthorized)
				apiError(w, http.StatusUnauthorized, "invalid_request_error", "a valid API key is needed (Authorization: Bearer KEY)")
				return
			}
		}
		h(w, r)
	}
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	h := map[string]any{"status": "ok", "models": s.names, "queue": len(s.jobs)}
	if v := s.Serving(); v != "" {
		h["deployment"] = map[string]string{"id": s.cfg.DeploymentName, "version": v}
	}
	json.NewEncoder(w).Encode(h)
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	var data []map[string]any
	for _, n := range s.names {
		data = append(data, map[string]any{"id": n, "object": "model", "created": 0, "owned_by": "pioneer"})
	}
	s.metrics.request(r.URL.Path, http.StatusOK)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data})
}

// request is what both completion endpoints take (OpenAI's fields that Pioneer serves).
type request struct {
	Model       string          `json:"model"`
	Prompt      json.RawMessage `json:"prompt"`   // completions: a string
	Messages    []chat.Message  `json:"messages"` // chat
	MaxTokens   *int            `json:"max_tokens"`
	MaxComplete *int            `json:"max_completion_tokens"`
	Temperature *float64        `json:"temperature"`
	TopP        *float64        `json:"top_p"`
	Stop        json.RawMessage `json:"stop"` // a string or a list of strings
	Stream      bool            `json:"stream"`
	Seed        *uint64         `json:"seed"`
	N           *int            `json:"n"`
	User        string          `json:"user"`
	// Pioneer's: with a classification task served, a completion whose prompt is the
	// task's prompt filled with an input answers with one of its labels unless
	// constrained is false; label_probs adds each label's probability.
	Constrained *bool `json:"constrained"`
	LabelProbs  bool  `json:"label_probs"`
}

// badRequest is a client error with its message.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func bad(format string, a ...any) error { return badRequest{fmt.Sprintf(format, a...)} }

// decode reads and checks a request body.
func (s *Server) decode(w http.ResponseWriter, r *http.Request) (*request, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, badRequest{fmt.Sprintf("request body over %d bytes", s.cfg.MaxBody)}
		}
		return nil, bad("reading the request: %v", err)
	}
	var req request
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, bad("the request is not valid JSON: %v", err)
	}
	if req.N != nil && *req.N != 1 {
		return nil, bad("n must be 1, got %d", *req.N)
	}
	if req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 2 || math.IsNaN(*req.Temperature)) {
		return nil, bad("temperature must be between 0 and 2, got %v", *req.Temperature)
	}
	if req.TopP != nil && (*req.TopP <= 0 || *req.TopP > 1 || math.IsNaN(*req.TopP)) {
		return nil, bad("top_p must be in (0, 1], got %v", *req.TopP)
	}
	return &req, nil
}

// prepare turns a request into a job: the model chosen, the prompt rendered and encoded,
// the limits checked.
func (s *Server) prepare(ctx context.Context, req *request, chatMode bool) (*job, string, error) {
	if req.Model == "" {
		req.Model = s.cfg.ModelName
	}
	row, ok := s.adapter[req.Model]
	if !ok {
		return nil, "", badRequest{fmt.Sprintf("model %q is not served (models: %s)", req.Model, strings.Join(s.names, ", "))}
	}
	var text string
	tok := s.cfg.Model.Tokenizer
	var ids []int
	var err error
	if chatMode {
		if len(req.Messages) == 0 {
			return nil, "", bad("messages is empty")
		}
		tpl, err := s.cfg.Model.ChatTemplate()
		if err != nil {
			return nil, "", bad("this model has no chat template (%v): use /v1/completions", err)
		}
		if text, err = tpl.Render(req.Messages, chat.Options{AddGenerationPrompt: true}); err != nil {
			return nil, "", bad("messages: %v", err)
		}
		ids, err = tok.Encode(text, false)
		if err != nil {
			return nil, "", err
		}
	} else {
		if err := json.Unmarshal(req.Prompt, &text); err != nil {
			return nil, "", bad("prompt must be a string")
		}
		if text == "" {
			return nil, "", bad("prompt is empty")
		}
		if ids, err = tok.Encode(text, true); err != nil {
			return nil, "", err
		}
	}
	if len(ids) == 0 {
		return nil, "", bad("the prompt encodes to no tokens")
	}
	maxNew := 16
	if chatMode {
		maxNew = min(256, s.cfg.MaxNewTokens)
	}
	for _, v := range []*int{req.MaxTokens, req.MaxComplete} {
		if v != nil {
			maxNew = *v
		}
	}
	if maxNew < 1 || maxNew > s.cfg.MaxNewTokens {
		return nil, "", bad("max_tokens must be between 1 and %d, got %d", s.cfg.MaxNewTokens, maxNew)
	}
	if len(ids) > s.cfg.MaxPromptTokens {
		return nil, "", bad("the prompt has %d tokens, more than the %d allowed", len(ids), s.cfg.MaxPromptTokens)
	}
	if room := s.cfg.Model.LM.Info().MaxPositions - len(ids); maxNew > room {
		maxNew = room // as many as the context holds; finish_reason says length
	}
	stops, err := stopList(req.Stop)
	if err != nil {
		return nil, "", err
	}
	classify := false
	if s.labels != nil && !chatMode && (req.Constrained == nil || *req.Constrained) {
		_, classify = s.cfg.Task.TextOf(text)
	}
	if req.LabelProbs && !classify {
		return nil, "", bad("label_probs needs a classification task served (--task) and a prompt that is its template filled with an input")
	}
	if classify {
		maxNew = s.labelDepth
		if len(ids)+maxNew > s.cfg.Model.LM.Info().MaxPositions {
			return nil, "", bad("the prompt has %d tokens: with the longest label it exceeds the model's %d positions", len(ids), s.cfg.Model.LM.Info().MaxPositions)
		}
	}
	j := &job{ctx: ctx, model: req.Model, row: row, prompt: ids, maxNew: maxNew, stops: stops, classify: classify, probs: req.LabelProbs,
		tokens: make(chan int, maxNew+1), result: make(chan result, 1), queuedAt: time.Now()}
	if req.Temperature != nil {
		j.temp = *req.Temperature
	}
	if req.TopP != nil && *req.TopP < 1 {
		j.topP = *req.TopP
	}
	if req.Seed != nil {
		j.seed = *req.Seed
	}
	return j, text, nil
}

func stopList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || len(many) > 4 {
		return nil, bad("stop must be a string or a list of at most 4 strings")
	}
	return many, nil
}

// submit queues a job; a full queue is a 429.
func (s *Server) submit(j *job) error {
	select {
	case s.jobs <- j:
		s.metrics.queue(len(s.jobs))
		return nil
	default:
		return errQueueFull
	}
}

var errQueueFull = errors.New("the server is busy: too many requests waiting, retry later")

func newID(prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// cut is text up to the first stop string (and whether one was found).
func cut(text string, stops []string) (string, bool) {
	best := -1
	for _, st := range stops {
		if i := strings.Index(text, st); st != "" && i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	if best < 0 {
		return text, false
	}
	return text[:best], true
}

// holdBack is how much of the text's end a stream keeps back: what may be the start of a
// stop string, and an incomplete UTF-8 character.
func holdBack(text string, stops []string) int {
	keep := 0
	for _, st := range stops {
		for k := min(len(st)-1, len(text)); k > keep; k-- {
			if strings.HasSuffix(text, st[:k]) {
				keep = k
				break
			}
		}
	}
	if strings.HasSuffix(text, "\uFFFD") { // a character cut between tokens
		keep = max(keep, len("\uFFFD"))
	}
	return keep
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) { s.complete(w, r, false) }
func (s *Server) chat(w http.ResponseWriter, r *http.Request)        { s.complete(w, r, true) }

// complete serves both endpoints.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, chatMode bool) {
	start := time.Now()
	status := http.StatusOK
	defer func() { s.metrics.request(r.URL.Path, status); s.metrics.latency(time.Since(start)) }()
	fail := func(code int, typ string, err error) {
		status = code
		apiError(w, code, typ, err.Error())
	}
	req, err := s.decode(w, r)
	if err != nil {
		code := http.StatusBadRequest
		if strings.Contains(err.Error(), "request body over") {
			code = http.StatusRequestEntityTooLarge
		}
		fail(code, "invalid_request_error", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	j, promptText, err := s.prepare(ctx, req, chatMode)
	if err != nil {
		var br badRequest
		if errors.As(err, &br) {
			code := http.StatusBadRequest
			if strings.Contains(br.msg, "is not served") {
				code = http.StatusNotFound
			}
			fail(code, "invalid_request_error", err)
		} else {
			fail(http.StatusInternalServerError, "server_error", err)
		}
		return
	}
	if err := s.submit(j); err != nil {
		fail(http.StatusTooManyRequests, "rate_limit_error", err)
		return
	}
	id := newID(map[bool]string{true: "chatcmpl", false: "cmpl"}[chatMode])
	created := time.Now().Unix()
	object := map[bool]string{true: "chat.completion", false: "text_completion"}[chatMode]
	tok := s.cfg.Model.Tokenizer
	var text string
	var res result
	if req.Stream {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		flusher, _ := w.(http.Flusher)
		send := func(v any) {
			b, _ := json.Marshal(v)
			fmt.Fprintf(w, "data: %s\n\n", b)
			if flusher != nil {
				flusher.Flush()
			}
		}
		chunk := func(delta string, finish any, role bool) map[string]any {
			c := map[string]any{"index": 0, "finish_reason": finish}
			if chatMode {
				d := map[string]any{}
				if role {
					d["role"] = "assistant"
				}
				if delta != "" || !role {
					d["content"] = delta
				}
				c["delta"] = d
			} else {
				c["text"] = delta
			}
			return map[string]any{"id": id, "object": object + map[bool]string{true: ".chunk", false: ""}[chatMode], "created": created,
				"model": req.Model, "choices": []any{c}}
		}
		if chatMode {
			send(chunk("", nil, true))
		}
		var got []int
		sent := 0
		for t := range s.stream(j) {
			got = append(got, t)
			full := tok.Decode(got, true)
			upto, stopped := cut(full, j.stops)
			if !stopped {
				upto = full[:len(full)-holdBack(full, j.stops)]
			}
			if len(upto) > sent && utf8.ValidString(upto[sent:]) {
				send(chunk(upto[sent:], nil, false))
				sent = len(upto)
			}
		}
		res = s.await(j)
		if res.err != nil {
			status = http.StatusInternalServerError
			fmt.Fprintf(w, "data: %s\n\n", mustJSON(map[string]any{"error": map[string]any{"message": res.err.Error(), "type": "server_error"}}))
			return
		}
		text, _ = cut(tok.Decode(res.tokens, true), j.stops)
		if len(text) > sent {
			send(chunk(text[sent:], nil, false))
		}
		last := chunk("", res.reason, false)
		if res.probs != nil {
			last["choices"].([]any)[0].(map[string]any)["label_probs"] = res.probs
		}
		send(last)
		fmt.Fprint(w, "data: [DONE]\n\n")
		if flusher != nil {
			flusher.Flush()
		}
	} else {
		for range s.stream(j) {
		}
		res = s.await(j)
		if res.err != nil {
			if errors.Is(res.err, context.DeadlineExceeded) {
				fail(http.StatusGatewayTimeout, "timeout", fmt.Errorf("the request took longer than %s", s.cfg.Timeout))
			} else {
				fail(http.StatusInternalServerError, "server_error", res.err)
			}
			return
		}
		text, _ = cut(tok.Decode(res.tokens, true), j.stops)
		choice := map[string]any{"index": 0, "finish_reason": res.reason}
		if res.probs != nil {
			choice["label_probs"] = res.probs
		}
		if chatMode {
			choice["message"] = map[string]any{"role": "assistant", "content": text}
		} else {
			choice["text"] = text
			choice["logprobs"] = nil
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": id, "object": object, "created": created, "model": req.Model,
			"choices": []any{choice}, "usage": map[string]int{"prompt_tokens": len(j.prompt), "completion_tokens": len(res.tokens),
				"total_tokens": len(j.prompt) + len(res.tokens)}})
	}
	s.metrics.tokens(len(j.prompt), len(res.tokens))
	if s.traffic != nil {
		rec := trafficlog.Record{ID: id, Version: s.servedVersion(req.Model), Time: time.Now().UTC(), Model: req.Model, Endpoint: r.URL.Path, Prompt: promptText,
			Output: text, Finish: res.reason, PromptTokens: len(j.prompt), CompletionTokens: len(res.tokens),
			QueueMS: j.startedAt.Sub(j.queuedAt).Milliseconds(), TotalMS: time.Since(start).Milliseconds()}
		if chatMode {
			rec.Messages = req.Messages
		}
		s.redactRecord(&rec)
		if err := s.traffic.Append(rec); err != nil {
			s.metrics.logError()
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{}`)
	}
	return b
}

// stream yields a job's tokens until its row ends, or the server's batcher has stopped.
func (s *Server) stream(j *job) func(yield func(int) bool) {
	return func(yield func(int) bool) {
		for {
			select {
			case t, ok := <-j.tokens:
				if !ok || !yield(t) {
					return
				}
			case <-s.done:
				return
			}
		}
	}
}

// await is a job's result, or an error when the batcher stopped without answering it.
func (s *Server) await(j *job) result {
	select {
	case r := <-j.result:
		return r
	case <-s.done:
		select {
		case r := <-j.result:
			return r
		default:
			return result{err: errors.New("the server is shutting down")}
		}
	}
}
