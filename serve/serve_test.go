package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/trafficlog"
	"github.com/pioneer-ai/pioneer/agent/versions"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/internal/deployfixture"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
	"github.com/pioneer-ai/pioneer/serve"
)

// fixture: pioneer-nano, an adapter trained on the spot to answer differently, and the
// base model's greedy answers to the test prompts (before any adapter is loaded).
func fixture(t *testing.T) (*model.Pretrained, string) {
	t.Helper()
	p, err := model.Open(data.NanoModel, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	tk, err := task.New("shout", task.Generation, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var exs []task.Example
	for i := range 16 {
		exs = append(exs, task.Example{ID: fmt.Sprint(i), Text: fmt.Sprintf("Once upon a time %d", i), Output: " ZEBRA ZEBRA ZEBRA ZEBRA"})
	}
	dir := filepath.Join(t.TempDir(), "adapter")
	set, _, err := finetune.Train(context.Background(), p.LM, p.Tokenizer, tk, exs, exs[:4], finetune.Recipe{Epochs: 3, Batch: 8, LR: 3e-2, Seed: 1},
		finetune.TrainEnv{EOS: p.FirstEOS(), Pad: p.Pad, Base: p.Dir, Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	set.Close()
	return p, dir
}

// topics is deployfixture's four-topic task and its thin deployment, made in a temporary
// folder.
func topics(t *testing.T) (*task.Task, *deployfixture.Deployment) {
	t.Helper()
	work := t.TempDir()
	tk, err := deployfixture.Task(filepath.Join(work, "task"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := deployfixture.Deploy(tk, filepath.Join(work, "deploy"), false)
	if err != nil {
		t.Fatal(err)
	}
	return tk, d
}

func greedy(t *testing.T, p *model.Pretrained, prompt string, n int) string {
	t.Helper()
	ids, err := p.Tokenizer.Encode(prompt, true)
	if err != nil {
		t.Fatal(err)
	}
	out, err := infer.Generate(p.LM, [][]int{ids}, infer.GenerateOptions{MaxNewTokens: n, StopTokens: p.EOS, PadID: p.Pad})
	if err != nil {
		t.Fatal(err)
	}
	return p.Tokenizer.Decode(out[0].Tokens, true)
}

type client struct {
	t   *testing.T
	url string
	key string
}

func (c client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				c.t.Fatal(err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// start runs a server for cfg behind httptest; both close when the test ends.
func start(t *testing.T, cfg serve.Config) (*serve.Server, client) {
	t.Helper()
	s, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, client{t, hs.URL, ""}
}

// text is the greedy completion of prompt by model, n tokens at most; any status but
// 200 fails the test.
func (c client) text(model, prompt string, n int) string {
	c.t.Helper()
	code, b := c.do("POST", "/v1/completions", map[string]any{"model": model, "prompt": prompt, "max_tokens": n})
	if code != 200 {
		c.t.Fatalf("%s: %d %s", model, code, b)
	}
	return parse(c.t, b).Choices[0].Text
}

type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Text    string `json:"text"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		Finish *string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		Prompt     int `json:"prompt_tokens"`
		Completion int `json:"completion_tokens"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
}

func parse(t *testing.T, b []byte) completion {
	t.Helper()
	var c completion
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return c
}

// events reads a server-sent-event body into its JSON chunks; done says [DONE] ended it.
func events(t *testing.T, b []byte) (chunks []completion, done bool) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		chunks = append(chunks, parse(t, []byte(data)))
	}
	return chunks, done
}

// TestServer: the endpoints with an OpenAI client's requests, answers equal to direct
// generation (base and adapter, streamed or not, alone or batched with others), stop
// strings, the errors, the traffic log and feedback.
func TestServer(t *testing.T) {
	p, adapter := fixture(t)
	prompts := []string{"Once upon a time", "The little dog", "She opened the door and"}
	base := map[string]string{}
	for _, pr := range prompts {
		base[pr] = greedy(t, p, pr, 12)
	}
	logs := t.TempDir()
	s, err := serve.New(serve.Config{Model: p, ModelName: "nano", Adapters: map[string]string{"zebra": adapter}, APIKeys: []string{"k1"},
		LogDir: logs, MaxBody: 4096, MaxNewTokens: 64})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	c := client{t, hs.URL, "k1"}

	if code, b := c.do("GET", "/health", nil); code != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("health: %d %s", code, b)
	}
	if code, b := (client{t, hs.URL, "wrong"}).do("GET", "/v1/models", nil); code != 401 || parse(t, b).Error == nil {
		t.Fatalf("a wrong key: %d %s", code, b)
	}
	if code, b := c.do("GET", "/v1/models", nil); code != 200 || !strings.Contains(string(b), `"id":"nano"`) || !strings.Contains(string(b), `"id":"zebra"`) {
		t.Fatalf("models: %d %s", code, b)
	}

	// The base model's answers are direct generation's; the adapter's differ.
	var ids []string
	for _, pr := range prompts {
		code, b := c.do("POST", "/v1/completions", map[string]any{"model": "nano", "prompt": pr, "max_tokens": 12})
		cm := parse(t, b)
		if code != 200 || cm.Object != "text_completion" || cm.Choices[0].Text != base[pr] || cm.Usage.Completion == 0 {
			t.Fatalf("%q: %d %s, want %q", pr, code, b, base[pr])
		}
		ids = append(ids, cm.ID)
	}
	code, b := c.do("POST", "/v1/completions", map[string]any{"model": "zebra", "prompt": prompts[0], "max_tokens": 12})
	zebra := parse(t, b).Choices[0].Text
	if code != 200 || zebra == base[prompts[0]] {
		t.Fatalf("the adapter answers as the base model does: %d %s", code, b)
	}

	// Streamed: the deltas make the same text, then a finish reason and [DONE].
	code, b = c.do("POST", "/v1/completions", map[string]any{"model": "zebra", "prompt": prompts[0], "max_tokens": 12, "stream": true})
	chunks, done := events(t, b)
	var streamed strings.Builder
	for _, ch := range chunks {
		streamed.WriteString(ch.Choices[0].Text)
	}
	if code != 200 || !done || streamed.String() != zebra || chunks[len(chunks)-1].Choices[0].Finish == nil {
		t.Fatalf("stream: %d %q (want %q), done %v: %s", code, streamed.String(), zebra, done, b)
	}

	// Concurrent requests of both models, batched as they come: each answer as alone.
	var wg sync.WaitGroup
	errs := make(chan string, 12)
	for i := range 12 {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pr, m := prompts[i%3], []string{"nano", "zebra"}[i%2]
			code, b := c.do("POST", "/v1/completions", map[string]any{"model": m, "prompt": pr, "max_tokens": 12})
			got := parse(t, b).Choices[0].Text
			if code != 200 || m == "nano" && got != base[pr] || m == "zebra" && pr == prompts[0] && got != zebra {
				errs <- fmt.Sprintf("%s %q: %d %q", m, pr, code, got)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error("batched: " + e)
	}

	// A stop string ends the text before it, streamed or not.
	stop := strings.Fields(base[prompts[1]])[1]
	want, _, _ := strings.Cut(base[prompts[1]], stop)
	for _, stream := range []bool{false, true} {
		code, b := c.do("POST", "/v1/completions", map[string]any{"model": "nano", "prompt": prompts[1], "max_tokens": 12, "stop": []string{stop}, "stream": stream})
		text := ""
		if stream {
			chunks, _ := events(t, b)
			for _, ch := range chunks {
				text += ch.Choices[0].Text
			}
		} else {
			text = parse(t, b).Choices[0].Text
		}
		if code != 200 || text != want {
			t.Fatalf("stop %q (stream %v): %d %q, want %q", stop, stream, code, text, want)
		}
	}

	// Chat, with the model's template, streamed and not.
	msgs := []map[string]string{{"role": "user", "content": "Tell me a story."}}
	code, b = c.do("POST", "/v1/chat/completions", map[string]any{"model": "nano", "messages": msgs, "max_tokens": 10})
	chatText := parse(t, b)
	if code != 200 || chatText.Object != "chat.completion" || chatText.Choices[0].Message.Role != "assistant" {
		t.Fatalf("chat: %d %s", code, b)
	}
	code, b = c.do("POST", "/v1/chat/completions", map[string]any{"model": "nano", "messages": msgs, "max_tokens": 10, "stream": true})
	chunks, done = events(t, b)
	streamed.Reset()
	for _, ch := range chunks {
		streamed.WriteString(ch.Choices[0].Delta.Content)
	}
	if code != 200 || !done || streamed.String() != chatText.Choices[0].Message.Content {
		t.Fatalf("chat stream %q, want %q: %s", streamed.String(), chatText.Choices[0].Message.Content, b)
	}

	// Errors, each in OpenAI's shape.
	for _, e := range []struct {
		body any
		path string
		code int
		want string
	}{
		{[]byte(`{"prompt": `), "/v1/completions", 400, "not valid JSON"},
		{map[string]any{"model": "gpt-9", "prompt": "x"}, "/v1/completions", 404, "not served"},
		{map[string]any{"prompt": "x", "max_tokens": 0}, "/v1/completions", 400, "max_tokens"},
		{map[string]any{"prompt": "x", "max_tokens": 1000}, "/v1/completions", 400, "max_tokens"},
		{map[string]any{"prompt": "x", "n": 2}, "/v1/completions", 400, "n must be 1"},
		{map[string]any{"prompt": "x", "temperature": -1}, "/v1/completions", 400, "temperature"},
		{map[string]any{"prompt": 5}, "/v1/completions", 400, "prompt must be a string"},
		{map[string]any{"prompt": strings.Repeat("long ", 2000)}, "/v1/completions", 413, "request body over"},
		{map[string]any{"messages": []any{}}, "/v1/chat/completions", 400, "messages is empty"},
		{nil, "/v1/nothing", 404, "no route"},
	} {
		code, b := c.do("POST", e.path, e.body)
		cm := parse(t, b)
		if code != e.code || cm.Error == nil || !strings.Contains(cm.Error.Message, e.want) {
			t.Errorf("%v: %d %s, want %d and %q", e.body, code, b, e.code, e.want)
		}
	}

	// A client that goes mid-stream leaves the server serving.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", hs.URL+"/v1/completions", strings.NewReader(`{"prompt": "Once upon a time", "max_tokens": 60, "stream": true}`))
	req.Header.Set("Authorization", "Bearer k1")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		bufio.NewReader(resp.Body).ReadString('\n')
		cancel()
		resp.Body.Close()
	}
	cancel()
	if code, b := c.do("POST", "/v1/completions", map[string]any{"prompt": prompts[2], "max_tokens": 12}); code != 200 || parse(t, b).Choices[0].Text != base[prompts[2]] {
		t.Fatalf("after a client left: %d %s", code, b)
	}

	// Metrics, feedback, and the traffic log with the answers' ids.
	if code, b := c.do("GET", "/metrics", nil); code != 200 || !strings.Contains(string(b), `pioneer_requests_total{path="/v1/completions",status="200"}`) ||
		!strings.Contains(string(b), "pioneer_batch_rows_total") {
		t.Fatalf("metrics: %d %s", code, b)
	}
	if code, b := c.do("POST", "/v1/feedback", map[string]any{"id": ids[0], "verdict": "wrong", "expected": "a better story"}); code != 200 {
		t.Fatalf("feedback: %d %s", code, b)
	}
	c.do("POST", "/v1/feedback", map[string]any{"id": ids[1], "verdict": "right"})
	if code, _ := c.do("POST", "/v1/feedback", map[string]any{"id": ids[1], "verdict": "wrong"}); code != 400 {
		t.Fatalf("a wrong verdict without the expected answer: %d", code)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	traffic, err := os.ReadFile(filepath.Join(logs, "traffic.jsonl"))
	if err != nil || !strings.Contains(string(traffic), ids[0]) {
		t.Fatalf("traffic log: %v\n%s", err, traffic)
	}
	wrong, right, unknown, err := trafficlog.Label(logs, "")
	if err != nil || len(wrong) != 1 || wrong[0].ID != ids[0] || wrong[0].Expected != "a better story" || wrong[0].Input != prompts[0] ||
		len(right) != 1 || right[0].Expected != base[prompts[1]] || unknown != 0 {
		t.Fatalf("labelled: %+v %+v %d %v", wrong, right, unknown, err)
	}
}

// TestContinuousBatching: a request that arrives while a long one decodes joins it at
// the next step and is answered while the long one goes on; both answers are those of
// direct generation.
func TestContinuousBatching(t *testing.T) {
	p, _ := fixture(t)
	long, short := "Once upon a time", "The little dog"
	wantLong, wantShort := greedy(t, p, long, 120), greedy(t, p, short, 4)
	s, err := serve.New(serve.Config{Model: p, ModelName: "nano", MaxNewTokens: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	resp, err := http.Post(hs.URL+"/v1/completions", "application/json",
		strings.NewReader(fmt.Sprintf(`{"prompt": %q, "max_tokens": 120, "stream": true}`, long)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	var streamed strings.Builder
	var longDone atomic.Bool
	started := make(chan struct{})
	finished := make(chan error, 1)
	go func() { // reads the long stream as it comes
		defer close(finished)
		for n := 0; ; n++ {
			line, err := rd.ReadString('\n')
			if err != nil {
				finished <- err
				return
			}
			data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: ")
			if !ok {
				continue
			}
			if data == "[DONE]" {
				longDone.Store(true)
				return
			}
			var cm completion
			if err := json.Unmarshal([]byte(data), &cm); err != nil {
				finished <- err
				return
			}
			streamed.WriteString(cm.Choices[0].Text)
			if n == 0 {
				close(started)
			}
		}
	}()
	<-started
	c := client{t, hs.URL, ""}
	code, b := c.do("POST", "/v1/completions", map[string]any{"prompt": short, "max_tokens": 4})
	if code != 200 || parse(t, b).Choices[0].Text != wantShort {
		t.Fatalf("the short request: %d %s, want %q", code, b, wantShort)
	}
	if longDone.Load() {
		t.Fatal("the short request was answered only after the long one ended")
	}
	if err := <-finished; err != nil || streamed.String() != wantLong {
		t.Fatalf("the long stream: %v, text %q, want %q", err, streamed.String(), wantLong)
	}
}

// TestServerFollowsDeployment: a production run folder's current version is served and
// followed: a promotion and a rollback are swapped in without a restart, and recorded.
func TestServerFollowsDeployment(t *testing.T) {
	p, zebraDir := fixture(t)
	zero := filepath.Join(t.TempDir(), "zero")
	set, err := lora.Attach(p.LM, lora.Config{R: 4, Alpha: 8, TargetModules: lora.Targets{Names: finetune.LoRATargets}, BaseModel: p.Dir}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Save(zero); err != nil {
		t.Fatal(err)
	}
	set.Close()
	prompt := "Once upon a time"
	base := greedy(t, p, prompt, 12)
	run := t.TempDir()
	vs, err := versions.Open(run, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{zero, zebraDir} {
		if _, err := vs.Add(src, versions.Meta{Source: src}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := vs.SetCurrent("v0"); err != nil {
		t.Fatal(err)
	}
	logs := t.TempDir()
	s, c := start(t, serve.Config{Model: p, ModelName: "nano", Adapters: map[string]string{"zebra": zebraDir}, Deployment: run,
		LogDir: logs, Poll: 20 * time.Millisecond})
	ask := func(m string) string { return c.text(m, prompt, 12) }
	zebra := ask("zebra")
	if got := ask("deployment"); got != base || s.Serving() != "v0" {
		t.Fatalf("v0 (an untrained adapter) answers %q, want the base model's %q", got, base)
	}
	until := func(v, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for s.Serving() != v && time.Now().Before(deadline) {
			ask("nano") // requests keep coming while the version changes
			time.Sleep(10 * time.Millisecond)
		}
		if got := ask("deployment"); s.Serving() != v || got != want {
			t.Fatalf("after CURRENT became %s: serving %s, answer %q, want %q", v, s.Serving(), got, want)
		}
	}
	// A promotion while a request of the deployment decodes: that request ends on the
	// version it began with, then the new one is served.
	longWant := greedy(t, p, prompt, 60)
	resp, err := http.Post(c.url+"/v1/completions", "application/json", strings.NewReader(fmt.Sprintf(`{"model": "deployment", "prompt": %q, "max_tokens": 60, "stream": true}`, prompt)))
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(resp.Body)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := vs.SetCurrent("v1"); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rd)
	resp.Body.Close()
	chunks, done := events(t, rest)
	var longGot strings.Builder
	for _, ch := range chunks {
		longGot.WriteString(ch.Choices[0].Text)
	}
	if err != nil || !done || longGot.String() == "" || !strings.HasSuffix(longWant, longGot.String()) {
		t.Fatalf("the request in flight during the promotion: %v, got %q, want the end of %q", err, longGot.String(), longWant)
	}
	until("v1", zebra)
	if err := vs.SetCurrent("v0"); err != nil { // a rollback
		t.Fatal(err)
	}
	until("v0", base)
	if code, b := c.do("GET", "/health", nil); code != 200 || !strings.Contains(string(b), `"version":"v0"`) {
		t.Fatalf("health: %s", b)
	}
	recs, err := os.ReadFile(filepath.Join(logs, "deployment.jsonl"))
	if err != nil || strings.Count(string(recs), "\n") != 2 || !strings.Contains(string(recs), `"from":"v0","to":"v1"`) || strings.Contains(string(recs), "error") {
		t.Fatalf("deployment.jsonl: %s %v", recs, err)
	}
}

// TestOpenAIClient: OpenAI's own Python client against the server, where the reference
// environment (scripts/reference-env.sh, which installs openai) exists; skipped with the
// reason where it does not.
func TestOpenAIClient(t *testing.T) {
	python, err := filepath.Abs(filepath.Join("..", ".venv", "bin", "python"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(python, "-c", "import openai").CombinedOutput(); err != nil {
		t.Skipf("no reference environment with the openai package (%s: %v %s): run scripts/reference-env.sh", python, err, bytes.TrimSpace(out))
	}
	p, adapter := fixture(t)
	prompt := "Once upon a time"
	base := greedy(t, p, prompt, 12)
	s, err := serve.New(serve.Config{Model: p, ModelName: "nano", Adapters: map[string]string{"zebra": adapter}, APIKeys: []string{"k1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	out, err := exec.Command(python, filepath.Join("..", "scripts", "openai_client_check.py"), hs.URL+"/v1", "k1", prompt).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	str := func(k string) string { v, _ := got[k].(string); return v }
	models := fmt.Sprint(got["models"])
	if models != "[nano zebra]" || str("nano") != base || got["nano_usage"] == float64(0) || str("zebra") == base || str("zebra_stream") != str("zebra") ||
		str("chat_role") != "assistant" || str("chat_stream") != str("chat") {
		t.Fatalf("the openai client got %s (base model's answer %q)", out, base)
	}
	errs, _ := got["errors"].(map[string]any)
	for name, want := range map[string]string{"unknown_model": "NotFoundError 404", "bad_request": "BadRequestError 400", "wrong_key": "AuthenticationError 401"} {
		if e, _ := errs[name].([]any); len(e) != 2 || fmt.Sprintf("%v %v", e[0], e[1]) != want {
			t.Errorf("%s: the client raised %v, want %s", name, e, want)
		}
	}
}

// TestServerFollowsFullDeployment: a deployment version fine-tuned in every weight is
// served as a model of its own beside the base model, and a switch between it and an
// adapter version goes either way without a restart.
func TestServerFollowsFullDeployment(t *testing.T) {
	p, zebraDir := fixture(t)
	prompt := "Once upon a time"
	base := greedy(t, p, prompt, 12)
	// a whole model trained on a second copy of the base, so the served one is untouched
	q, err := model.Open(data.NanoModel, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := task.New("shout", task.Generation, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var exs []task.Example
	for i := range 16 {
		exs = append(exs, task.Example{ID: fmt.Sprint(i), Text: fmt.Sprintf("Once upon a time %d", i), Output: " LION LION LION"})
	}
	fullDir := filepath.Join(t.TempDir(), "full")
	if _, _, err := finetune.Train(context.Background(), q.LM, q.Tokenizer, tk, exs, exs[:4], finetune.Recipe{Epochs: 3, Batch: 8, LR: 2e-3, Full: true, Seed: 1},
		finetune.TrainEnv{EOS: q.FirstEOS(), Pad: q.Pad, Base: q.Dir, Out: fullDir}); err != nil {
		t.Fatal(err)
	}
	fullWant := greedy(t, q, prompt, 12)
	q.Close()
	if fullWant == base {
		t.Fatal("the fully fine-tuned model answers as the base model does")
	}
	zset, err := lora.Load(zebraDir, p.LM) // the adapter version's answer, alone
	if err != nil {
		t.Fatal(err)
	}
	zebraWant := greedy(t, p, prompt, 12)
	zset.Close()
	run := t.TempDir()
	vs, err := versions.Open(run, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{fullDir, zebraDir} {
		if _, err := vs.Add(src, versions.Meta{Source: src}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := vs.SetCurrent("v0"); err != nil { // the whole model first
		t.Fatal(err)
	}
	s, c := start(t, serve.Config{Model: p, ModelName: "nano", Deployment: run, LogDir: t.TempDir(), Poll: 20 * time.Millisecond})
	ask := func(m string) string { return c.text(m, prompt, 12) }
	// both models answer at once, each its own
	var wg sync.WaitGroup
	got := make([]string, 6)
	for i := range got {
		wg.Add(1)
		go func(i int) { defer wg.Done(); got[i] = ask([]string{"deployment", "nano"}[i%2]) }(i)
	}
	wg.Wait()
	for i, g := range got {
		if want := []string{fullWant, base}[i%2]; g != want {
			t.Fatalf("request %d: %q, want %q", i, g, want)
		}
	}
	for _, step := range []struct{ v, want string }{{"v1", zebraWant}, {"v0", fullWant}} {
		if err := vs.SetCurrent(step.v); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); s.Serving() != step.v && time.Now().Before(deadline); {
			ask("nano")
			time.Sleep(10 * time.Millisecond)
		}
		g := ask("deployment")
		if s.Serving() != step.v || g != step.want {
			t.Fatalf("after CURRENT became %s: serving %s, answer %q (whole model %q, base %q)", step.v, s.Serving(), g, fullWant, base)
		}
		if a := ask("nano"); a != base {
			t.Fatalf("the base model after the switch to %s: %q, want %q", step.v, a, base)
		}
	}
	if zebraWant == fullWant || zebraWant == base {
		t.Fatal("the versions do not answer differently")
	}
}
