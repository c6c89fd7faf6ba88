package training

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/pioneer-ai/pioneer/engine/torch"
)

// ConcurrentLM is an LM whose Loss may run on several goroutines at once, on different
// rows of a batch, with results that do not depend on their order: no random state shared
// between the calls (LoRA dropout draws from one generator) and nothing built lazily
// without a lock. Train splits a CPU batch's rows between worker threads only for an LM
// that says so.
type ConcurrentLM interface {
	LM
	Concurrent() bool
}

// Workers are OS threads that share out the rows of a batch on the CPU: each runs the
// forward and backward passes of its shard with libtorch's kernels single-threaded
// (torch.SetThreadNumThreads(1)). On a few cores this beats splitting every kernel across them:
// nothing waits at the barrier that ends each of libtorch's parallel loops and MKL's
// matrix products, and the work that is serial anyway (dispatch, autograd bookkeeping,
// small operations) runs on every core at once. The cost is memory: each worker holds a
// gradient of every trainable parameter until they are added up, in worker order, so the
// result does not depend on which thread finishes first.
type Workers struct {
	jobs []chan func()
	done sync.WaitGroup
}

// NewWorkers starts n worker threads; Close stops them.
func NewWorkers(n int) *Workers {
	w := &Workers{jobs: make([]chan func(), n)}
	for i := range w.jobs {
		ch := make(chan func())
		w.jobs[i] = ch
		w.done.Add(1)
		go func() {
			defer w.done.Done()
			// Never unlocked: the thread, with its single-threaded setting, ends with the
			// goroutine instead of going back to Go's pool.
			runtime.LockOSThread()
			torch.SetThreadNumThreads(1)
			for f := range ch {
				f()
			}
		}()
	}
	return w
}

// N is the number of worker threads.
func (w *Workers) N() int { return len(w.jobs) }

// Close stops the workers and waits for their threads to end.
func (w *Workers) Close() {
	for _, ch := range w.jobs {
		close(ch)
	}
	w.done.Wait()
}

// run runs fs[i] on worker i, all at once, and waits for them.
func (w *Workers) run(fs []func()) {
	var wg sync.WaitGroup
	wg.Add(len(fs))
	for i, f := range fs {
		w.jobs[i] <- func() {
			defer wg.Done()
			f()
		}
	}
	wg.Wait()
}

// workerCount resolves TrainConfig.Workers for lm: the number of worker threads to
// start (0 or 1: none).
func workerCount(lm LM, n int) (int, error) {
	c, ok := lm.(ConcurrentLM)
	allowed := ok && c.Concurrent() && lm.Device().Type == torch.DeviceCPU
	switch {
	case n < 0:
		return 0, fmt.Errorf("workers: want 0 (automatic), 1 (none) or more, got %d", n)
	case n > MaxWorkers:
		return 0, fmt.Errorf("workers: %d asked for, at most %d (this machine has %d CPUs)", n, MaxWorkers, runtime.NumCPU())
	case n == 0 && allowed:
		n = torch.NumThreads()
	case n > 1 && lm.Device().Type != torch.DeviceCPU:
		return 0, fmt.Errorf("workers: %d asked for, but worker threads are for the CPU and the model is on %s", n, lm.Device())
	case n > 1 && !allowed:
		return 0, fmt.Errorf("workers: %d asked for, but this model's loss cannot run on several threads at once (LoRA dropout draws from one generator)", n)
	}
	if n < 2 {
		return 1, nil
	}
	return n, nil
}

// MaxWorkers bounds TrainConfig.Workers: each worker is an OS thread holding a gradient
// of every trainable weight, so more than a few per CPU only costs memory.
var MaxWorkers = 4 * runtime.NumCPU()

// StartWorkers starts the worker threads that n asks for, read as TrainConfig.Workers
// (nil: none; Close them after use).
func StartWorkers(lm LM, n int) (*Workers, error) {
	k, err := workerCount(lm, n)
	if err != nil || k < 2 {
		return nil, err
	}
	return NewWorkers(k), nil
}

// Backward runs the forward and backward passes of one batch, ids and next-token targets
// (B, T) row-major (-100: no loss), and adds scale times the gradient of its mean loss to
// the gradients of lm's parameters. It returns the mean loss and the number of target
// tokens. A non-finite loss leaves the gradients as they were. With workers (nil: the
// calling thread does it all) the rows are split into contiguous shards, one per worker;
// each shard's loss is weighted by its share of the target tokens, so the sum is the
// batch's mean. autocast, when not 0, runs the forward passes in that precision.
func Backward(lm LM, w *Workers, ids, targets []int64, B, T int, scale float64, autocast torch.DType) (float64, int64, error) {
	if len(ids) != B*T || len(targets) != B*T {
		return 0, 0, fmt.Errorf("batch of %d ids and %d targets for shape (%d, %d)", len(ids), len(targets), B, T)
	}
	n := targetCount(targets)
	if w == nil || B < 2 || n == 0 {
		lv, err := backwardRows(lm, ids, targets, B, T, scale, autocast, nil)
		return lv, n, err
	}
	params := lm.Parameters()
	k := min(w.N(), B)
	losses := make([]float64, k)
	grads := make([][]*torch.Tensor, k)
	scopes := make([]*torch.Scope, k)
	errs := make([]error, k)
	counts := make([]int64, k)
	fs := make([]func(), k)
	for i := range k {
		lo, hi := i*B/k, (i+1)*B/k
		counts[i] = targetCount(targets[lo*T : hi*T])
		fs[i] = func() {
			if counts[i] == 0 {
				return
			}
			gs := torch.NewScope() // holds the shard's gradients until they are added up
			scopes[i] = gs
			losses[i], errs[i] = backwardRows(lm, ids[lo*T:hi*T], targets[lo*T:hi*T], hi-lo, T,
				scale*float64(counts[i])/float64(n), autocast, func(scaled *torch.Tensor) {
					grads[i] = gs.Gradients(scaled, params)
				})
		}
	}
	w.run(fs)
	defer func() {
		for _, s := range scopes {
			if s != nil {
				s.Close()
			}
		}
	}()
	var lv float64
	for i := range k {
		if errs[i] != nil {
			return 0, 0, errs[i]
		}
		if counts[i] == 0 {
			continue
		}
		if err := scopes[i].Err(); err != nil {
			return 0, 0, err
		}
		if math.IsNaN(losses[i]) || math.IsInf(losses[i], 0) {
			return losses[i], n, nil
		}
		lv += losses[i] * float64(counts[i]) / float64(n)
	}
	for j, p := range params {
		for i := range k {
			if g := grads[i]; g != nil && g[j] != nil {
				if err := p.AccumulateGrad(g[j]); err != nil {
					return 0, 0, err
				}
			}
		}
	}
	return lv, n, nil
}

// backwardRows is Backward on the calling thread. With grads nil it backpropagates scale x
// the mean loss into the parameters' gradients; otherwise it hands grads the scaled loss
// (a finite one only) to differentiate.
func backwardRows(lm LM, ids, targets []int64, B, T int, scale float64, autocast torch.DType, grads func(scaled *torch.Tensor)) (float64, error) {
	dev := lm.Device()
	s := torch.NewScope()
	defer s.Close()
	shape := []int64{int64(B), int64(T)}
	var loss *torch.Tensor
	forward := func() error {
		loss = lm.Loss(s, s.Int64s(ids, shape, dev), s.Int64s(targets, shape, dev))
		return nil
	}
	if autocast != 0 {
		if err := torch.Autocast(dev, autocast, forward); err != nil {
			return 0, err
		}
	} else if err := forward(); err != nil {
		return 0, err
	}
	lv, err := loss.Item()
	if err == nil {
		err = s.Err()
	}
	if err != nil || math.IsNaN(lv) || math.IsInf(lv, 0) {
		return lv, err
	}
	scaled := s.MulScalar(loss, scale)
	if grads == nil {
		return lv, scaled.Backward()
	}
	grads(scaled)
	return lv, s.Err()
}

func targetCount(targets []int64) int64 {
	var n int64
	for _, t := range targets {
		if t != -100 {
			n++
		}
	}
	return n
}
