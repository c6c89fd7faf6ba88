// Package versions keeps a run's deployable versions: RUN_DIR/versions/v0 (what the run
// started from), v1... (what was promoted), each a PEFT adapter or a model folder with
// meta.json (where it came from, why, and the SHA-256 of every file) and eval_set.json
// (the evaluation set it was promoted on), and RUN_DIR/versions/CURRENT naming the
// deployed one. Versions are never changed or deleted once written.
//
// Nothing becomes a version, and no version becomes current, unless its weights verify:
// the files are all there with the checksums recorded when the version was made, every
// safetensors file parses with its data complete, an adapter's tensors are lora_A and
// lora_B pairs of matching rank, and (when the store has one) the caller's own check of
// the folder passes. Versions are named, never given as paths.
package versions

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pioneer-ai/pioneer/internal/crash"

	"github.com/pioneer-ai/pioneer/internal/fsutil"
)

// Files of the store.
const (
	currentFile = "CURRENT"
	metaFile    = "meta.json"
	evalSetFile = "eval_set.json"
)

// metaFormat is the version of meta.json's layout.
const metaFormat = 1

// Kinds of version.
const (
	Adapter = "adapter" // a PEFT LoRA adapter folder
	Model   = "model"   // a Hugging Face model folder (every weight fine-tuned)
)

// Meta is a version's meta.json.
type Meta struct {
	Format    int       `json:"format"`
	Version   string    `json:"version"`
	Created   time.Time `json:"created"`
	Kind      string    `json:"kind"`
	Source    string    `json:"source"`              // the folder it was copied from
	Candidate string    `json:"candidate,omitempty"` // the candidate it is ("" for v0)
	// Files maps each file of the version to the SHA-256 of its content.
	Files  map[string]string `json:"files"`
	Recipe json.RawMessage   `json:"recipe,omitempty"`
	Scores json.RawMessage   `json:"scores,omitempty"`
	Note   string            `json:"note,omitempty"`
}

// Store is a run folder's versions/.
type Store struct {
	dir string
	// Check, when set, is a further check of a folder before it becomes a version or
	// current (production mode loads an adapter onto the base model).
	Check func(dir string) error
}

// ErrNoCurrent is returned (wrapped) by Current when versions exist but none is named
// current.
var ErrNoCurrent = errors.New("no current version")

var versionName = regexp.MustCompile(`^v(0|[1-9][0-9]{0,8})$`)

// Open opens a run folder's store, making versions/ when create is set, and clears what
// an interrupted Add left behind.
func Open(runDir string, create bool) (*Store, error) {
	s := &Store{dir: filepath.Join(runDir, "versions")}
	if err := fsutil.NotSymlink(s.dir); err != nil {
		return nil, err
	}
	if create {
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return nil, err
		}
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && !create) {
		return nil, fmt.Errorf("versions: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
				return nil, fmt.Errorf("versions: clearing an interrupted copy: %w", err)
			}
		}
	}
	return s, nil
}

// Dir is a version's folder.
func (s *Store) Dir(name string) string { return filepath.Join(s.dir, name) }

// List names the versions, oldest first.
func (s *Store) List() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	var out []string
	for _, e := range entries {
		if versionName.MatchString(e.Name()) {
			if !e.IsDir() {
				return nil, fmt.Errorf("versions: %s is not a folder", filepath.Join(s.dir, e.Name()))
			}
			out = append(out, e.Name())
		}
	}
	sort.Slice(out, func(i, j int) bool { return number(out[i]) < number(out[j]) })
	return out, nil
}

func number(name string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(name, "v"))
	return n
}

// Current is the deployed version: "" when the store holds none yet; an error wrapping
// ErrNoCurrent when it holds versions but CURRENT is missing.
func (s *Store) Current() (string, error) {
	b, err := fsutil.ReadState(filepath.Join(s.dir, currentFile))
	if errors.Is(err, fs.ErrNotExist) {
		list, lerr := s.List()
		if lerr != nil {
			return "", lerr
		}
		if len(list) == 0 {
			return "", nil
		}
		return "", fmt.Errorf("%w: %s holds %s but no CURRENT; deploy one with `pioneer rollback --to vN`", ErrNoCurrent, s.dir, strings.Join(list, ", "))
	}
	if err != nil {
		return "", fmt.Errorf("versions: %w", err)
	}
	name := strings.TrimSpace(string(b))
	if !versionName.MatchString(name) {
		return "", fmt.Errorf("versions: %s names %q, not a version", filepath.Join(s.dir, currentFile), name)
	}
	return name, nil
}

// Meta reads a version's meta.json.
func (s *Store) Meta(name string) (Meta, error) {
	var m Meta
	if err := checkName(name); err != nil {
		return m, err
	}
	path := filepath.Join(s.Dir(name), metaFile)
	b, err := fsutil.ReadState(path)
	if err != nil {
		return m, fmt.Errorf("version %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("version %s: %s: %w", name, path, err)
	}
	if m.Format != metaFormat {
		return m, fmt.Errorf("version %s: %s has format %d, this Pioneer reads %d", name, path, m.Format, metaFormat)
	}
	return m, nil
}

func checkName(name string) error {
	if !versionName.MatchString(name) {
		return fmt.Errorf("%q is not a version name (v0, v1, ...)", name)
	}
	return nil
}

// Verify checks a version's files against the checksums recorded when it was made, and
// its weights as Inspect and the store's Check do.
func (s *Store) Verify(name string) error {
	m, err := s.Meta(name)
	if err != nil {
		return err
	}
	dir := s.Dir(name)
	if len(m.Files) == 0 {
		return fmt.Errorf("version %s: meta.json records no files", name)
	}
	for f, want := range m.Files {
		got, err := FileSum(filepath.Join(dir, f))
		if err != nil {
			return fmt.Errorf("version %s: %w", name, err)
		}
		if got != want {
			return fmt.Errorf("version %s: %s has changed since the version was made (SHA-256 %s, recorded %s)", name, f, short(got), short(want))
		}
	}
	if _, _, err := Inspect(dir); err != nil {
		return fmt.Errorf("version %s: %w", name, err)
	}
	if s.Check != nil {
		if err := s.Check(dir); err != nil {
			return fmt.Errorf("version %s: %w", name, err)
		}
	}
	return nil
}

func short(sum string) string { return sum[:min(12, len(sum))] }

// Find names the version made from a candidate ("" when there is none): a promotion
// interrupted after the version was made finds it again instead of making another.
func (s *Store) Find(candidate string) (string, error) {
	list, err := s.List()
	if err != nil {
		return "", err
	}
	for _, v := range list {
		m, err := s.Meta(v)
		if err != nil {
			return "", err
		}
		if candidate != "" && m.Candidate == candidate {
			return v, nil
		}
	}
	return "", nil
}

// Add makes the folder src the next version: it checks src first (Inspect, the store's
// Check), copies its deployable files into a temporary folder with their checksums,
// meta.json and, when evalSet is not nil, eval_set.json, syncs it all, and renames it into
// place, so a crash leaves either no version or a complete one. It does not make the
// version current.
func (s *Store) Add(src string, meta Meta, evalSet any) (string, error) {
	kind, files, err := Inspect(src)
	if err != nil {
		return "", err
	}
	if s.Check != nil {
		if err := s.Check(src); err != nil {
			return "", err
		}
	}
	list, err := s.List()
	if err != nil {
		return "", err
	}
	name := "v0"
	if len(list) > 0 {
		name = fmt.Sprintf("v%d", number(list[len(list)-1])+1)
	}
	tmp, err := os.MkdirTemp(s.dir, ".tmp-"+name+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // nothing once renamed
	meta.Format, meta.Version, meta.Created, meta.Kind, meta.Files = metaFormat, name, time.Now().UTC(), kind, map[string]string{}
	for _, f := range files {
		sum, err := copyFile(filepath.Join(src, f), filepath.Join(tmp, f))
		if err != nil {
			return "", fmt.Errorf("version %s: %w", name, err)
		}
		meta.Files[f] = sum
	}
	if _, _, err := Inspect(tmp); err != nil { // the copy, as read back
		return "", fmt.Errorf("version %s: the copy of %s: %w", name, src, err)
	}
	if evalSet != nil {
		if err := fsutil.WriteJSON(filepath.Join(tmp, evalSetFile), evalSet); err != nil {
			return "", err
		}
	}
	if err := fsutil.WriteJSON(filepath.Join(tmp, metaFile), meta); err != nil {
		return "", err
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return "", err
	}
	crash.Point("versions:copied")
	if err := os.Rename(tmp, s.Dir(name)); err != nil {
		return "", fmt.Errorf("version %s: %w", name, err)
	}
	if err := fsutil.SyncDir(s.dir); err != nil {
		return "", err
	}
	crash.Point("versions:added")
	return name, nil
}

// SetCurrent deploys a version, after verifying it.
func (s *Store) SetCurrent(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if _, err := os.Stat(s.Dir(name)); errors.Is(err, fs.ErrNotExist) {
		list, lerr := s.List()
		if lerr != nil {
			return lerr
		}
		return fmt.Errorf("no version %s in %s (have %s)", name, s.dir, strings.Join(list, ", "))
	} else if err != nil {
		return err
	}
	if err := s.Verify(name); err != nil {
		return fmt.Errorf("%w; %s stays deployed as it was", err, currentFile)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(s.dir, currentFile), []byte(name+"\n")); err != nil {
		return err
	}
	crash.Point("versions:current")
	return nil
}

// EvalSet decodes the evaluation set a version was promoted on into v; false when the
// version has none (v0: the task's validation examples stand in).
func (s *Store) EvalSet(name string, v any) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	return fsutil.ReadJSON(filepath.Join(s.Dir(name), evalSetFile), v)
}

// copyFile copies a file (streamed: model weights can be large), syncs it and returns the
// SHA-256 of what it wrote. A symbolic link is not followed.
func copyFile(from, to string) (string, error) {
	if err := fsutil.NotSymlink(from); err != nil {
		return "", err
	}
	in, err := os.Open(from)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), out.Close()
}

// FileSum is the SHA-256 of a file, in hex.
func FileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FileSums are the SHA-256 of a deployable folder's files (what Inspect lists).
func FileSums(dir string) (map[string]string, error) {
	_, files, err := Inspect(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range files {
		if out[f], err = FileSum(filepath.Join(dir, f)); err != nil {
			return nil, err
		}
	}
	return out, nil
}
