// Package jsonl is Pioneer's one reader of JSON Lines files (training data, task splits,
// failure logs, prompts): it reads line by line with a bound on a line's length, so a
// file of any size costs memory for one line at a time; takes a UTF-8 byte-order mark
// off the first line; skips blank lines; and describes a line that cannot be used as a
// LineError with its number and its raw bytes.
package jsonl

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"
)

// DefaultMaxLine is the longest line Read passes on whole when not told otherwise.
const DefaultMaxLine = 16 << 20

// rawKept is how much of a line a LineError keeps.
const rawKept = 4096

// Line is one non-blank line.
type Line struct {
	N     int    // 1-based line number
	Bytes []byte // the line without surrounding white space (valid only during the call)
	// TooLong is set when the line has more bytes than the limit: Bytes then holds only
	// its first bytes (at most 4 KiB) and Len says how long it was.
	TooLong bool
	Len     int64
}

// LineError is a line that could not be used: its number, why, and what it held. Raw is
// the line's text when it is valid UTF-8, RawBase64 its bytes (base64) when it is not,
// so that a binary line is kept as it was; RawCut says the line was longer than what is
// kept (4 KiB).
type LineError struct {
	Line      int    `json:"line"`
	Reason    string `json:"reason"`
	Raw       string `json:"raw,omitempty"`
	RawBase64 string `json:"raw_base64,omitempty"`
	RawCut    bool   `json:"raw_cut,omitempty"`
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Bad describes line l as unusable for the reason given.
func Bad(l Line, format string, a ...any) LineError {
	e := LineError{Line: l.N, Reason: fmt.Sprintf(format, a...)}
	raw := l.Bytes
	if len(raw) > rawKept {
		raw, e.RawCut = raw[:rawKept], true
	}
	e.RawCut = e.RawCut || l.TooLong
	if utf8.Valid(raw) {
		e.Raw = string(raw)
	} else {
		e.RawBase64 = base64.StdEncoding.EncodeToString(raw)
	}
	return e
}

// TooLongReason is the reason given for a line over the limit.
func (l Line) TooLongReason(limit int) string {
	return fmt.Sprintf("a line of %d bytes, longer than the %d bytes read per line", l.Len, limit)
}

// Read calls fn for every non-blank line of r, in order, with at most maxLine bytes of a
// line (0: DefaultMaxLine); longer lines come with TooLong set and are not held whole. An
// error from fn stops the walk and is returned as it is.
func Read(r io.Reader, maxLine int, fn func(Line) error) error {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for n := 1; ; n++ {
		buf = buf[:0]
		var total int64
		ended := false // the line ends with a newline
		for {
			chunk, err := br.ReadSlice('\n')
			total += int64(len(chunk))
			if len(buf) <= maxLine+1 { // past that the rest is counted, not kept
				buf = append(buf, chunk...)
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			ended = err == nil
			break
		}
		if total == 0 {
			return nil
		}
		l := Line{N: n, Len: total}
		if ended {
			l.Len--
		}
		if l.Len > int64(maxLine) {
			l.TooLong, buf = true, buf[:min(len(buf), rawKept)]
		}
		line := buf
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a byte-order mark
		}
		if l.Bytes = bytes.TrimSpace(line); len(l.Bytes) > 0 || l.TooLong {
			if err := fn(l); err != nil {
				return err
			}
		}
		if !ended {
			return nil
		}
	}
}

// ReadFile is Read over a file.
func ReadFile(path string, maxLine int, fn func(Line) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := Read(f, maxLine, fn); err != nil {
		var le LineError
		if errors.As(err, &le) {
			return fmt.Errorf("%s:%d: %s", path, le.Line, le.Reason)
		}
		return err
	}
	return nil
}
