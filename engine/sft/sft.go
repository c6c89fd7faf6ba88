// Package sft is the supervised fine-tuning data of `pioneer train` and the agent: the
// JSONL records of the common shapes ({"prompt", "completion"}, {"messages": [...]},
// {"text"}) and their tokenization, with the chat template for conversations, into the
// token sequences the training loop (engine/training) takes.
package sft

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pioneer-ai/pioneer/engine/training"
	"github.com/pioneer-ai/pioneer/internal/jsonl"
	"github.com/pioneer-ai/pioneer/model"
	"github.com/pioneer-ai/pioneer/model/chat"
)

// Record is one training record, in one of the three common JSONL shapes:
// {"prompt", "completion"}, {"messages": [...]} (chat; the last message is the target
// and must be the assistant's) or {"text"} (every token is a target). A task's
// examples become records through their prompt and target (agent/finetune).
type Record struct {
	Prompt     string
	Completion string
	Messages   []chat.Message
	Text       string
	Line       int // 1-based line in its file
}

// Read reads a JSONL training file. A malformed line stops the read with an error naming
// the file and line, unless skipBad is set: then such lines are returned in skipped and
// the rest is used. An empty file (or one with no usable line) is an error.
func Read(path string, skipBad bool) (records []Record, skipped []jsonl.LineError, err error) {
	err = jsonl.ReadFile(path, 0, func(l jsonl.Line) error {
		var r Record
		perr := errors.New(l.TooLongReason(jsonl.DefaultMaxLine))
		if !l.TooLong {
			r, perr = parse(l.Bytes)
		}
		if perr != nil {
			bad := jsonl.Bad(l, "%v", perr)
			if !skipBad {
				return fmt.Errorf("%s:%d: %v (pass the skip option to leave bad lines out)", path, l.N, perr)
			}
			skipped = append(skipped, bad)
			return nil
		}
		r.Line = l.N
		records = append(records, r)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(records) == 0 {
		return nil, skipped, fmt.Errorf("%s: no training examples", path)
	}
	return records, skipped, nil
}

func parse(line []byte) (Record, error) {
	var rec struct {
		Prompt     *string        `json:"prompt"`
		Completion *string        `json:"completion"`
		Text       *string        `json:"text"`
		Messages   []chat.Message `json:"messages"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return Record{}, err
	}
	switch {
	case len(rec.Messages) > 0:
		for i, m := range rec.Messages {
			if m.Role == "" {
				return Record{}, fmt.Errorf("message %d has no role", i)
			}
		}
		if last := rec.Messages[len(rec.Messages)-1]; last.Role != "assistant" {
			return Record{}, fmt.Errorf("the last message is %q's; the target must be the assistant's", last.Role)
		}
		return Record{Messages: rec.Messages}, nil
	case rec.Prompt != nil || rec.Completion != nil:
		if rec.Prompt == nil || rec.Completion == nil {
			return Record{}, fmt.Errorf(`"prompt" and "completion" go together`)
		}
		if *rec.Completion == "" {
			return Record{}, fmt.Errorf("empty completion")
		}
		return Record{Prompt: *rec.Prompt, Completion: *rec.Completion}, nil
	case rec.Text != nil:
		if *rec.Text == "" {
			return Record{}, fmt.Errorf("empty text")
		}
		return Record{Text: *rec.Text}, nil
	}
	return Record{}, fmt.Errorf(`no "prompt"/"completion", "messages" or "text"`)
}

// TokenizeOptions configure Tokenize.
type TokenizeOptions struct {
	Template *chat.Template // required for "messages" examples
	EOS      int            // appended to completions and texts when >= 0
	MaxLen   int            // longer sequences are an error unless Truncate
	Truncate bool           // cut long sequences to MaxLen instead (keeping the start)
}

// Tokenize turns an example into ids and labels with the loss on the completion only
// (the whole text for "text" examples).
func Tokenize(ex Record, tok model.Tokenizer, o TokenizeOptions) (training.Sequence, error) {
	var prompt, target []int
	var encodeErr error
	enc := func(text string, special bool) []int {
		ids, err := tok.Encode(text, special)
		if err != nil && encodeErr == nil {
			encodeErr = err
		}
		return ids
	}
	switch {
	case len(ex.Messages) > 0:
		if o.Template == nil {
			return training.Sequence{}, fmt.Errorf("line %d: a chat example needs the model's chat template", ex.Line)
		}
		head, err := o.Template.Render(ex.Messages[:len(ex.Messages)-1], chat.Options{AddGenerationPrompt: true})
		if err != nil {
			return training.Sequence{}, fmt.Errorf("line %d: %w", ex.Line, err)
		}
		full, err := o.Template.Render(ex.Messages, chat.Options{})
		if err != nil {
			return training.Sequence{}, fmt.Errorf("line %d: %w", ex.Line, err)
		}
		if !strings.HasPrefix(full, head) {
			return training.Sequence{}, fmt.Errorf("line %d: the chat template does not render the conversation as its prefix plus the reply", ex.Line)
		}
		// The template writes its own special tokens, including the end of the turn.
		prompt, target = enc(head, false), enc(full[len(head):], false)
	case ex.Text != "":
		target = enc(ex.Text, true)
		if o.EOS >= 0 {
			target = append(target, o.EOS)
		}
	default:
		prompt, target = enc(ex.Prompt, true), enc(ex.Completion, false)
		if o.EOS >= 0 {
			target = append(target, o.EOS)
		}
	}
	if encodeErr != nil {
		return training.Sequence{}, fmt.Errorf("line %d: %w", ex.Line, encodeErr)
	}
	seq := training.Sequence{Line: ex.Line, IDs: append(append([]int(nil), prompt...), target...)}
	seq.Labels = make([]int, len(seq.IDs))
	for i := range seq.Labels {
		seq.Labels[i] = -100
		if i >= len(prompt) {
			seq.Labels[i] = seq.IDs[i]
		}
	}
	if o.MaxLen > 0 && len(seq.IDs) > o.MaxLen {
		if !o.Truncate {
			return training.Sequence{}, fmt.Errorf("line %d: %d tokens, longer than the context of %d (allow truncation to cut it)", ex.Line, len(seq.IDs), o.MaxLen)
		}
		seq.IDs, seq.Labels = seq.IDs[:o.MaxLen], seq.Labels[:o.MaxLen]
	}
	if len(seq.IDs) < 2 {
		return training.Sequence{}, fmt.Errorf("line %d: fewer than two tokens", ex.Line)
	}
	targets := 0
	for _, l := range seq.Labels[1:] {
		if l != -100 {
			targets++
		}
	}
	if targets == 0 {
		return training.Sequence{}, fmt.Errorf("line %d: no target tokens left (the prompt fills the context?)", ex.Line)
	}
	return seq, nil
}
