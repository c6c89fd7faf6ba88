// Command llamacpp checks Pioneer's GGUF export with a consumer no one here wrote:
// llama.cpp's llama-server, built by scripts/build-llamacpp.sh. It exports
// SmolLM2-135M-Instruct (read from its Q4_1 GGUF) as f32, f16, q8_0 and q4_k GGUF files, and a
// random LoRA adapter (rank 8 on every projection, B drawn so the adapter changes the
// output) as a GGUF adapter; then, for each file, it asks llama.cpp for token ids of
// strings and chat renderings (/tokenize) and for greedy continuations (/completion,
// temperature 0, from token ids, up to an end-of-sequence token), and compares them with
// Pioneer's own on the same file. Pioneer computes in float32 from the file's weights;
// llama.cpp uses its own kernels for f16, q8_0 and q4_k, so near-ties may resolve differently
// there: the figures say how many of the prompts agree token for token, and how many of
// their tokens agree before the first difference. It writes
// bench/results/gguf_llamacpp.json and prints a table.
//
//	bash scripts/fetch-smollm2.sh && bash scripts/build-llamacpp.sh && go run ./bench/llamacpp
//	go run ./bench/llamacpp -classifier runs/tune/adapter -task banking77 -n 128
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/bench"
	"github.com/pioneer-ai/pioneer/data"
	"github.com/pioneer-ai/pioneer/engine/infer"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
	_ "github.com/pioneer-ai/pioneer/model/all"
	"github.com/pioneer-ai/pioneer/model/chat"
	"github.com/pioneer-ai/pioneer/model/gguf"
	"github.com/pioneer-ai/pioneer/model/llama"
)

var prompts = []string{
	"The capital of France is",
	"def fibonacci(n):",
	"Once upon a time, in a small village,",
	"Translate to French: I would like a cup of coffee.",
	"The three primary colours are",
	"Q: What is 17 times 3?\nA:",
	"Customer message: my card was charged twice for the same order. Intent:",
	"In 1969, the first person to walk on the Moon was",
}

var texts = []string{
	"Hello world", " leading space and  double  spaces", "naïve café — “quotes” and emoji 🙂 and 日本語",
	"1234567890 3.14159 -42", "line1\nline2\r\n\ttabbed", "def add(a, b):\n    return a + b\n",
	"<|im_start|>user\nhi<|im_end|>\n",
}

func main() {
	bin := flag.String("llamacpp", "", "llama.cpp bin folder (default: the one scripts/build-llamacpp.sh prints)")
	newTokens := flag.Int("new-tokens", 32, "greedy tokens per prompt")
	classifier := flag.String("classifier", "", "a LoRA adapter of SmolLM2 fine-tuned on -task: also compare its test accuracy in Pioneer and in llama.cpp (merged, f16 GGUF)")
	taskName := flag.String("task", "banking77", "the classifier's bundled task")
	n := flag.Int("n", 128, "test examples for the classifier")
	out := flag.String("out", "bench/results/gguf_llamacpp.json", "result file")
	flag.Parse()
	if *bin == "" {
		*bin = bench.LlamaCppBin()
	}
	if err := run(*bin, *newTokens, *out, *classifier, *taskName, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench/llamacpp:", err)
		os.Exit(1)
	}
}

func run(bin string, newTokens int, out, classifier, taskName string, n int) error {
	server := filepath.Join(bin, "llama-server")
	if _, err := os.Stat(server); err != nil {
		return fmt.Errorf("%v: build llama.cpp with bash scripts/build-llamacpp.sh", err)
	}
	p, err := model.Open(data.SmolLM2, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		return err
	}
	defer p.Close()
	tmp, err := os.MkdirTemp("", "pioneer-llamacpp-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	files := map[string]string{}
	for _, t := range []gguf.Type{gguf.F32, gguf.F16, gguf.Q8_0, gguf.Q4_K} {
		path := filepath.Join(tmp, "smollm2-"+strings.ToLower(t.String())+".gguf")
		if err := model.ExportGGUF(p.LM, p.Dir, path, t); err != nil {
			return err
		}
		files[strings.ToLower(t.String())] = path
	}
	adapter := filepath.Join(tmp, "adapter.gguf")
	set, err := randomAdapter(p.LM)
	if err != nil {
		return err
	}
	if err := set.ExportGGUF(p.Dir, adapter); err != nil {
		return err
	}

	tpl, err := p.ChatTemplate()
	if err != nil {
		return err
	}
	for _, q := range []string{"What is the capital of France?", "Classify: 'top up failed'"} {
		r, err := tpl.Render([]chat.Message{{Role: "user", Content: q}}, chat.Options{AddGenerationPrompt: true})
		if err != nil {
			return err
		}
		texts = append(texts, r)
	}
	ids := make([][]int, len(prompts))
	for i, s := range prompts {
		if ids[i], err = p.Tokenizer.Encode(s, false); err != nil {
			return err
		}
	}
	cmd := "go run ./bench/llamacpp"
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "out" {
			cmd += fmt.Sprintf(" -%s %s", f.Name, f.Value)
		}
	})
	res := bench.NewResult("gguf_llamacpp", cmd,
		fmt.Sprintf("SmolLM2-135M-Instruct exported by Pioneer (from its Q4_1 GGUF) and served by llama.cpp 0.3.36's llama-server (CPU, 2 threads); %d prompts, up to %d greedy tokens each (or end of sequence) from the same token ids; Pioneer float32 on the same file", len(prompts), newTokens))

	// with the adapter active on the loaded model, Pioneer's greedy tokens are those of
	// base + adapter; without it, those of the base
	withAdapter, err := greedy(p.LM, ids, newTokens, p.Pad, p.EOS)
	if err != nil {
		return err
	}
	set.Close()
	base, err := greedy(p.LM, ids, newTokens, p.Pad, p.EOS)
	if err != nil {
		return err
	}
	changed := 0
	for i := range base {
		if !slices.Equal(base[i], withAdapter[i]) {
			changed++
		}
	}
	if changed == 0 {
		return fmt.Errorf("the random adapter changes no greedy continuation: the adapter check would prove nothing")
	}
	res.Add("adapter_changes_prompts", "prompts", float64(changed), nil, "", true)

	for _, c := range []struct{ name, file, lora string }{
		{"f32", files["f32"], ""}, {"f16", files["f16"], ""}, {"q8_0", files["q8_0"], ""}, {"q4_k", files["q4_k"], ""}, {"f32_lora", files["f32"], adapter},
	} {
		pioneerTokens := base
		if c.lora != "" {
			pioneerTokens = withAdapter
		} else if c.name != "f32" {
			q, err := model.Open(c.file, model.OpenOptions{Device: torch.CPU})
			if err != nil {
				return err
			}
			pioneerTokens, err = greedy(q.LM, ids, newTokens, q.Pad, q.EOS)
			q.Close()
			if err != nil {
				return err
			}
		}
		srv, err := startServer(server, c.file, c.lora)
		if err != nil {
			return err
		}
		lm := p.LM
		if c.lora == "" && c.name != "f32" {
			q, err := model.Open(c.file, model.OpenOptions{Device: torch.CPU})
			if err != nil {
				srv.stop()
				return err
			}
			defer q.Close()
			lm = q.LM
		} else if c.lora != "" {
			if set, err = randomAdapter(p.LM); err != nil { // the same seeds: the same adapter again
				srv.stop()
				return err
			}
		}
		agree, prefix, worstGap := 0, 0, 0.0
		for i := range ids {
			got, err := srv.complete(ids[i], newTokens)
			if err != nil {
				srv.stop()
				return err
			}
			if len(got) > 0 && slices.Contains(p.EOS, got[len(got)-1]) {
				got = got[:len(got)-1] // llama.cpp returns the end-of-sequence token too
			}
			n := commonPrefix(got, pioneerTokens[i])
			prefix += n
			if n == len(got) && n == len(pioneerTokens[i]) {
				agree++
			} else if n < len(got) && n < len(pioneerTokens[i]) {
				// how close the two choices are in Pioneer's own logits where they part
				gap, err := logitGap(lm, append(slices.Clone(ids[i]), pioneerTokens[i][:n]...), pioneerTokens[i][n], got[n])
				if err != nil {
					srv.stop()
					return err
				}
				worstGap = max(worstGap, gap)
			}
			fmt.Fprintf(os.Stderr, "%s prompt %d: %d tokens agree (llama.cpp %d, Pioneer %d)\n", c.name, i, n, len(got), len(pioneerTokens[i]))
		}
		tokAgree := 0
		for _, s := range texts {
			want, err := p.Tokenizer.Encode(s, false)
			if err != nil {
				srv.stop()
				return err
			}
			got, err := srv.tokenize(s)
			if err != nil {
				srv.stop()
				return err
			}
			if slices.Equal(got, want) {
				tokAgree++
			} else {
				fmt.Fprintf(os.Stderr, "%s: %q: llama.cpp %v, Pioneer %v\n", c.name, s, got, want)
			}
		}
		srv.stop()
		if c.lora != "" {
			set.Close()
		}
		res.Add("greedy_prompts_identical_"+c.name, "prompts", float64(agree), nil, "", true)
		res.Add("greedy_tokens_before_difference_"+c.name, "tokens", float64(prefix), nil, "", true)
		res.Add("tokenize_identical_"+c.name, "strings", float64(tokAgree), nil, "", true)
		res.Add("max_logit_gap_at_first_difference_"+c.name, "logit", worstGap, nil, "", false)
	}
	if err := compareSentencePiece(res, server, tmp); err != nil {
		return err
	}
	if classifier != "" {
		if err := compareClassifier(res, server, p, classifier, taskName, n, tmp); err != nil {
			return err
		}
	}
	res.Figures = append(res.Figures, bench.Figure{Name: "prompts", Unit: "prompts", Pioneer: float64(len(prompts))},
		bench.Figure{Name: "tokens_per_prompt", Unit: "tokens", Pioneer: float64(newTokens)},
		bench.Figure{Name: "tokenized_strings", Unit: "strings", Pioneer: float64(len(texts))})
	res.Table(os.Stdout)
	return res.Write(out)
}

// sharedTokenizers holds the tokenizers of ../shared/data (SOURCES.md there).
const sharedTokenizers = "../shared/data/tokenizers"

// compareSentencePiece exports a tiny random Llama with a SentencePiece-style vocabulary
// (../shared/data's 32k byte-fallback BPE tokenizer.json) as GGUF and compares llama.cpp's
// ids of the golden strings (its SentencePiece tokenizer, from the pieces' scores) with
// the reference implementation's, BOS included.
func compareSentencePiece(res *bench.Result, server, tmp string) error {
	src := filepath.Join(sharedTokenizers, "sp32k_lenml_llama2pkg")
	dir := filepath.Join(tmp, "spm-model")
	bos, eos := 1, 2
	m, err := llama.New(llama.Config{VocabSize: 32000, HiddenSize: 16, IntermediateSize: 32, NumHiddenLayers: 1, NumAttentionHeads: 2,
		NumKeyValueHeads: 1, MaxPositionEmbeddings: 256, RMSNormEps: 1e-5, BosTokenID: &bos, EosTokenID: &eos}, torch.CPU, torch.Float32, 3)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Save(dir); err != nil {
		return err
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if errors.Is(err, fs.ErrNotExist) { // the other checks stand without this one
			fmt.Fprintf(os.Stderr, "sentencepiece: not checked: %v\n", err)
			res.Method += "; the SentencePiece export was not checked (../shared/data absent)"
			return nil
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	file := filepath.Join(tmp, "spm.gguf")
	if err := model.ExportGGUF(m, dir, file, gguf.F32); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(sharedTokenizers, "golden_encodings.jsonl"))
	if err != nil {
		return err
	}
	srv, err := startServer(server, file, "")
	if err != nil {
		return err
	}
	defer srv.stop()
	agree, total := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var g struct {
			Text string `json:"text"`
			IDs  []int  `json:"sp32k_lenml_llama2pkg"`
		}
		if err := json.Unmarshal([]byte(line), &g); err != nil {
			return err
		}
		var resp struct {
			Tokens []int `json:"tokens"`
		}
		if err := srv.post("/tokenize", map[string]any{"content": g.Text, "add_special": true, "parse_special": false}, &resp); err != nil {
			return err
		}
		total++
		if slices.Equal(resp.Tokens, g.IDs) {
			agree++
		} else {
			fmt.Fprintf(os.Stderr, "sentencepiece: %q: llama.cpp %v, reference %v\n", g.Text, resp.Tokens, g.IDs)
		}
	}
	res.Add("tokenize_identical_sentencepiece_export", "strings", float64(agree), nil, "", true)
	res.Figures[len(res.Figures)-1].Note = fmt.Sprintf("of %d golden strings: a tiny random Llama with a 32k SentencePiece-style vocabulary (byte-fallback BPE tokenizer.json of ../shared/data), exported as GGUF by Pioneer; llama.cpp's /tokenize with BOS against the reference ids", total)
	return nil
}

// randomAdapter attaches rank-8 adapters to every projection with B drawn from
// N(0, 0.02²) (A keeps PEFT's initialisation), so that they change the output.
func randomAdapter(m model.CausalLM) (*lora.Set, error) {
	set, err := lora.Attach(m, lora.Config{R: 8, Alpha: 16, TargetModules: lora.Targets{Names: []string{
		"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}}}, 7)
	if err != nil {
		return nil, err
	}
	g, err := torch.NewGenerator(11, torch.CPU)
	if err != nil {
		set.Close()
		return nil, err
	}
	defer g.Close()
	for _, a := range set.Adapters {
		s := torch.NewScope()
		err := a.B.CopyFrom(s.MulScalar(s.Randn(a.B.Shape(), torch.Float32, torch.CPU, g), 0.02))
		if err == nil {
			err = s.Err()
		}
		s.Close()
		if err != nil {
			set.Close()
			return nil, err
		}
	}
	return set, nil
}

// greedy continues each prompt alone, up to n tokens or an end-of-sequence token (left
// out, as llama.cpp leaves it out).
func greedy(m model.CausalLM, ids [][]int, n, pad int, eos []int) ([][]int, error) {
	out := make([][]int, len(ids))
	for i, p := range ids {
		c, err := infer.Generate(m, [][]int{p}, infer.GenerateOptions{MaxNewTokens: n, PadID: pad, StopTokens: eos})
		if err != nil {
			return nil, err
		}
		out[i] = c[0].Tokens
	}
	return out, nil
}

// logitGap is logit(mine) - logit(theirs) after ids: how much Pioneer prefers its token
// to llama.cpp's at the position where they part.
func logitGap(m model.CausalLM, ids []int, mine, theirs int) (float64, error) {
	s := torch.NewScope()
	defer s.Close()
	in := make([]int64, len(ids))
	for i, v := range ids {
		in[i] = int64(v)
	}
	var logits []float32
	err := torch.NoGrad(func() error {
		var err error
		logits, err = m.Forward(s, s.Int64s(in, []int64{1, int64(len(in))}, torch.CPU)).Float32s()
		return err
	})
	if err != nil {
		return 0, err
	}
	last := logits[len(logits)-m.Info().VocabSize:]
	return float64(last[mine] - last[theirs]), nil
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

type server struct{ *bench.LlamaServer }

func startServer(bin, model, lora string) (*server, error) {
	args := []string{"-t", "2", "-c", "2048", "-np", "1"}
	if lora != "" {
		args = append(args, "--lora", lora)
	}
	s, err := bench.StartLlamaServer(bin, model, args...)
	if err != nil {
		return nil, err
	}
	return &server{s}, nil
}

func (s *server) stop()                                 { s.Stop() }
func (s *server) post(path string, req, resp any) error { return s.Post(path, req, resp) }

func (s *server) complete(ids []int, n int) ([]int, error) {
	var resp struct {
		Tokens []int `json:"tokens"`
	}
	err := s.post("/completion", map[string]any{"prompt": ids, "n_predict": n, "temperature": 0, "return_tokens": true,
		"cache_prompt": false}, &resp)
	return resp.Tokens, err
}

func (s *server) tokenize(text string) ([]int, error) {
	var resp struct {
		Tokens []int `json:"tokens"`
	}
	err := s.post("/tokenize", map[string]any{"content": text, "add_special": false, "parse_special": true}, &resp)
	return resp.Tokens, err
}

// compareClassifier merges a fine-tuned classifier's adapter into SmolLM2, exports it as
// f16 GGUF, and compares test accuracy: Pioneer's task.Evaluate (label-constrained) on the
// exported file, and llama.cpp's greedy completion constrained to the labels by a grammar
// (its way of restricting an answer to a set).
func compareClassifier(res *bench.Result, server string, p *model.Pretrained, adapter, taskName string, n int, tmp string) error {
	t, err := task.Load(taskName)
	if err != nil {
		return err
	}
	test, err := t.Split("test")
	if err != nil {
		return err
	}
	test = test[:min(n, len(test))]
	set, err := lora.Load(adapter, p.LM)
	if err != nil {
		return err
	}
	if err := set.Merge(); err != nil {
		set.Close()
		return err
	}
	file := filepath.Join(tmp, "classifier-f16.gguf")
	err = model.ExportGGUF(p.LM, p.Dir, file, gguf.F16)
	set.Close() // unmerges
	if err != nil {
		return err
	}
	q, err := model.Open(file, model.OpenOptions{Device: torch.CPU})
	if err != nil {
		return err
	}
	r, err := t.Evaluate(context.Background(), q.LM, q.Tokenizer, test, task.EvalOptions{EOS: q.EOS, PadID: q.Pad})
	q.Close()
	if err != nil {
		return err
	}
	var alts []string
	for _, l := range t.Labels {
		alts = append(alts, strconv.Quote(t.LabelTarget(l)))
	}
	grammar := "root ::= " + strings.Join(alts, " | ")
	srv, err := startServer(server, file, "")
	if err != nil {
		return err
	}
	defer srv.stop()
	correct, agree := 0, 0
	for i, ex := range test {
		var resp struct {
			Content string `json:"content"`
		}
		if err := srv.post("/completion", map[string]any{"prompt": t.PromptText(ex.Text), "n_predict": 32, "temperature": 0,
			"grammar": grammar, "cache_prompt": false}, &resp); err != nil {
			return err
		}
		got := strings.TrimSpace(resp.Content)
		if got == ex.Label {
			correct++
		}
		if got == r.Predictions[i].Output {
			agree++
		}
	}
	res.Add(taskName+"_accuracy_pioneer_f16_gguf_lora_smollm2", "accuracy", r.Value, nil, "", true)
	res.Add(taskName+"_accuracy_llamacpp_f16_gguf_lora_smollm2", "accuracy", float64(correct)/float64(len(test)), nil, "", true)
	res.Add(taskName+"_same_answers_llamacpp_pioneer_lora_smollm2", "examples", float64(agree), nil, "", true)
	res.Add(taskName+"_classifier_test_examples", "examples", float64(len(test)), nil, "", true)
	return nil
}
