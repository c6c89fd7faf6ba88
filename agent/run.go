// Package agent is what Pioneer's agent modes (production mode today, cold-start next) run
// on: a run folder that one process holds at a time, its append-only lineage, the stages
// of a mode as steps recorded in that lineage (a finished step is not done again when a
// killed run is started again), the settings a run is started with (a rerun with other
// settings is refused), the budgets a search spends, and stop requests (SIGINT, SIGTERM)
// that end a run between steps with its state resumable.
//
// The modes are its subpackages (agent/production); what they share is in agent/task
// (tasks and their evaluation), agent/finetune (training a model on a task's examples),
// agent/triage (labelled logs: poison or fixable), agent/search (greedy and Monte-Carlo
// search over pipelines), agent/versions (the deployable versions and which is current),
// agent/lineage (the log) and agent/teacher (an OpenAI-compatible model that writes
// examples).
package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pioneer-ai/pioneer/agent/lineage"
	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// Run is an agent run's folder, held by this process until Close: every command that
// changes a run folder (adapt, approve, rollback) holds it for its whole length, so two
// commands on one folder never interleave.
type Run struct {
	Dir     string
	Lineage *lineage.Log
	lock    *os.File
}

// LineageFile is a run folder's lineage log.
const LineageFile = "lineage.jsonl"

// lockFile is the file a run folder's lock is taken on (flock: the kernel releases it
// when the holder exits, however it exits, so a crash leaves no stale lock).
const lockFile = ".lock"

// ErrBusy is returned (wrapped) when another process holds the run folder.
var ErrBusy = errors.New("run folder in use")

// Create opens a run folder for a run that may start in it: the folder is made if need
// be, locked, and its lineage opened.
func Create(dir string) (*Run, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return open(dir)
}

// Open opens the run folder of a run that exists (its lineage log does): approve and
// rollback work on one. A missing folder, or one without a lineage, is an error and
// nothing is created.
func Open(dir string) (*Run, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("run folder %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("run folder %s is not a folder", dir)
	}
	if _, err := os.Lstat(filepath.Join(dir, LineageFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no run (no %s)", dir, LineageFile)
	}
	return open(dir)
}

func open(dir string) (*Run, error) {
	lock, err := acquire(dir)
	if err != nil {
		return nil, err
	}
	lin, err := lineage.Open(filepath.Join(dir, LineageFile))
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &Run{Dir: dir, Lineage: lin, lock: lock}, nil
}

// acquire takes the run folder's lock, or says who holds it.
func acquire(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	if err := fsutil.NotSymlink(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run folder %s: lock: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := make([]byte, 200)
		n, _ := f.ReadAt(holder, 0) // what the holder wrote about itself; may be empty
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by %s; wait for it to finish", ErrBusy, dir, describeHolder(string(holder[:n])))
		}
		return nil, fmt.Errorf("run folder %s: lock: %w", dir, err)
	}
	note := fmt.Sprintf("pid %d, %s, since %s\n", os.Getpid(), strings.Join(os.Args, " "), time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(note), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("run folder %s: lock: %w", dir, err)
	}
	return f, nil
}

// describeHolder turns the lock file's note ("pid N, command, since T") into words.
func describeHolder(note string) string {
	note = strings.TrimSpace(note)
	if p, rest, ok := strings.Cut(note, ","); ok && strings.HasPrefix(p, "pid ") {
		if _, err := strconv.Atoi(strings.TrimPrefix(p, "pid ")); err == nil {
			return "PID " + strings.TrimPrefix(p, "pid ") + " (" + strings.TrimSpace(rest) + ")"
		}
	}
	return "another process"
}

// Close releases the run folder.
func (r *Run) Close() error {
	err := r.Lineage.Close()
	if r.lock != nil {
		if cerr := r.lock.Close(); err == nil { // closing the file releases the lock
			err = cerr
		}
		r.lock = nil
	}
	return err
}

// Path is a file of the run folder.
func (r *Run) Path(parts ...string) string {
	return filepath.Join(append([]string{r.Dir}, parts...)...)
}
