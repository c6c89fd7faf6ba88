package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/internal/redact"
	"github.com/pioneer-ai/pioneer/serve"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve a model and its LoRA adapters over an OpenAI-compatible HTTP API",
		Description: `Endpoints: POST /v1/completions and /v1/chat/completions (stream: true for server-sent
events), GET /v1/models, GET /health, GET /metrics (Prometheus), POST /v1/feedback
{"id", "verdict": "wrong"|"right", "expected"}. A request's "model" is the base model's id
(--name) or an adapter's. With --log-dir every request and answer goes to traffic.jsonl
and feedback to feedback.jsonl. Listens on loopback unless --addr says otherwise.`,
		Flags: append(modelFlags(), quantizedFlag,
			&cli.StringSliceFlag{Name: "adapter", Usage: "NAME=DIR: a PEFT adapter served as model NAME; repeatable"},
			&cli.StringFlag{Name: "deployment", Usage: "a production run folder (pioneer adapt's or pioneer start's --out): its current version is served as model --deployment-name and followed, a promotion, approval or rollback swapped in without a restart"},
			&cli.StringFlag{Name: "deployment-name", Value: "deployment", Usage: "the deployment's model id in requests"},
			&cli.StringFlag{Name: "name", Usage: "the base model's id in requests (default: --model's last path element, without .gguf)"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "address to listen on"},
			&cli.StringFlag{Name: "api-key-file", Usage: "file of accepted API keys, one per line (requests then need Authorization: Bearer KEY)"},
			&cli.StringFlag{Name: "log-dir", Usage: "folder for traffic.jsonl and feedback.jsonl (default with --deployment: DIR/logs, what pioneer adapt --deployment reads; otherwise none: nothing is logged)"},
			&cli.StringFlag{Name: "task", Usage: "a classification task (bundled name or task.yaml) whose prompts are answered with one of its labels, and with each label's probability when a request asks (label_probs); default with --deployment: DIR/task, a cold-start folder's"},
			&cli.BoolFlag{Name: "redact", Usage: "take personal data (e-mail addresses, card and phone numbers, --redact-pattern's) out of what the logs store"},
			&cli.StringSliceFlag{Name: "redact-pattern", Usage: "NAME=REGEXP: more personal data to redact (Go regular expression), stored as [NAME]; repeatable; implies --redact"},
			&cli.IntFlag{Name: "max-batch", Value: 16, Usage: "requests decoded together at most"},
			&cli.IntFlag{Name: "max-queue", Value: 64, Usage: "requests waiting at most; more are answered 429"},
			&cli.IntFlag{Name: "max-new-tokens", Value: 512, Usage: "new tokens a request may ask for at most"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "longest a request may take"},
		),
		Action: func(c *cli.Context) error {
			if err := checkInts(c, intRange{"max-batch", 1, maxBatch}, intRange{"max-queue", 1, 1 << 20}, intRange{"max-new-tokens", 1, maxNewTokens}); err != nil {
				return err
			}
			if c.Duration("timeout") <= 0 {
				return fmt.Errorf("--timeout must be positive, got %s", c.Duration("timeout"))
			}
			adapters := map[string]string{}
			for _, a := range c.StringSlice("adapter") {
				name, dir, ok := strings.Cut(a, "=")
				if !ok || name == "" || dir == "" {
					return fmt.Errorf("--adapter %q: want NAME=DIR", a)
				}
				if _, dup := adapters[name]; dup {
					return fmt.Errorf("--adapter: %s given twice", name)
				}
				adapters[name] = dir
			}
			var keys []string
			if f := c.String("api-key-file"); f != "" {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				for _, l := range strings.Split(string(b), "\n") {
					if l = strings.TrimSpace(l); l != "" {
						keys = append(keys, l)
					}
				}
				if len(keys) == 0 {
					return fmt.Errorf("--api-key-file %s holds no key", f)
				}
			}
			logDir := c.String("log-dir")
			if logDir == "" && c.String("deployment") != "" {
				logDir = filepath.Join(c.String("deployment"), "logs") // where pioneer adapt --deployment reads
			}
			taskName := c.String("task")
			if taskName == "" && c.String("deployment") != "" {
				if _, err := os.Stat(filepath.Join(c.String("deployment"), "task", "task.yaml")); err == nil {
					taskName = filepath.Join(c.String("deployment"), "task")
				}
			}
			var tk *task.Task
			if taskName != "" {
				var err error
				if tk, err = task.Load(taskName); err != nil {
					return err
				}
			}
			var red *redact.Redactor
			if c.Bool("redact") || len(c.StringSlice("redact-pattern")) > 0 {
				pats, err := redact.ParsePatterns(c.StringSlice("redact-pattern"))
				if err != nil {
					return err
				}
				if red, err = redact.New(pats); err != nil {
					return err
				}
			}
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return err
			}
			p, err := openModel(c)
			if err != nil {
				ln.Close()
				return err
			}
			defer p.Close()
			if err := useQuantized(c, p); err != nil {
				ln.Close()
				return err
			}
			name := c.String("name")
			if name == "" { // what --model named: pioneer-nano, a folder's or a GGUF file's name
				name = strings.TrimSuffix(filepath.Base(c.String("model")), ".gguf")
			}
			s, err := serve.New(serve.Config{Model: p, ModelName: name, Adapters: adapters, APIKeys: keys, LogDir: logDir, Redact: red, Task: tk,
				Quantized: c.Bool("quantized"), Deployment: c.String("deployment"), DeploymentName: c.String("deployment-name"),
				MaxBatch: c.Int("max-batch"), MaxQueue: c.Int("max-queue"), MaxNewTokens: c.Int("max-new-tokens"), Timeout: c.Duration("timeout")})
			if err != nil {
				ln.Close()
				return err
			}
			hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			fmt.Fprintf(os.Stderr, "pioneer serve: %s on http://%s (models: base + %d adapters; keys: %d)\n", p.Dir, ln.Addr(), len(adapters), len(keys))
			if v := s.Serving(); v != "" {
				fmt.Fprintf(os.Stderr, "pioneer serve: deployment %s at %s, served as %q and followed\n", c.String("deployment"), v, c.String("deployment-name"))
			}
			select {
			case err = <-errc:
			case <-ctx.Done():
				fmt.Fprintln(os.Stderr, "pioneer serve: stopping (requests in flight finish)")
				sctx, cancel := context.WithTimeout(context.Background(), c.Duration("timeout"))
				err = hs.Shutdown(sctx)
				cancel()
			}
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			return err
		},
	}
}
