package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// Progress is what an interrupted benchmark run leaves in its work folder
// (progress.json) for -resume: the settings it ran with, the phases it finished with
// their scores, and the seconds each phase has taken so far over all the processes that
// worked on it.
type Progress struct {
	Settings string                `json:"settings"`
	Finished map[string][2]float64 `json:"done"` // finished phase -> (test metric, regressions)
	Seconds  map[string]float64    `json:"spent_s"`
	Resumed  int                   `json:"resumed"` // how many times the run was resumed

	path string
	mu   sync.Mutex
}

// flushEvery bounds the phase time an interruption loses.
const flushEvery = 10 * time.Second

// OpenProgress starts a run's progress in work. Fresh, it records settings; resuming, it
// reads what the interrupted run left and refuses a run started with other settings.
func OpenProgress(work, settings string, resume bool) (*Progress, error) {
	p := &Progress{path: filepath.Join(work, "progress.json"), Settings: settings,
		Finished: map[string][2]float64{}, Seconds: map[string]float64{}}
	if !resume {
		return p, p.save()
	}
	b, err := os.ReadFile(p.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("-resume: %s holds no run to resume (no progress.json); run without -resume", work)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("-resume: %s: %w", p.path, err)
	}
	if p.Settings != settings {
		return nil, fmt.Errorf("-resume: the run in %s was started with other settings (%s; now %s); run without -resume to start again", work, p.Settings, settings)
	}
	p.Resumed++
	return p, p.save()
}

func (p *Progress) save() error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(p.path, b)
}

// Time counts the time until the returned stop is called towards phase, saving it every
// flushEvery so that an interruption loses little of it. Calling stop again does
// nothing.
func (p *Progress) Time(phase string) (stop func() error) {
	last := time.Now()
	add := func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		now := time.Now()
		p.Seconds[phase] += now.Sub(last).Seconds()
		last = now
		return p.save()
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				add() // a failed save is retried at the next tick and at stop
			}
		}
	}()
	var once sync.Once
	var err error
	return func() error { // a second call does nothing
		once.Do(func() {
			close(quit)
			wg.Wait()
			err = add()
		})
		return err
	}
}

// Finish records a phase as done with its scores.
func (p *Progress) Finish(phase string, scores [2]float64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Finished[phase] = scores
	return p.save()
}

// Spent is the seconds phase has taken so far, over every process that worked on it.
func (p *Progress) Spent(phase string) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Seconds[phase]
}

// Done says whether phase finished, and with which scores.
func (p *Progress) Done(phase string) ([2]float64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.Finished[phase]
	return s, ok
}
