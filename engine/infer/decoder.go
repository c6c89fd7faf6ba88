package infer

import (
	"fmt"
	"math"
	"runtime"

	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/model"
)

// Request is one sequence for a Decoder: its prompt, how many tokens it may make and how
// they are chosen. A sampled sequence has a generator of its own, so its tokens depend on
// its seed and not on the sequences decoded beside it.
type Request struct {
	Prompt       []int
	MaxNewTokens int
	Temperature  float64 // 0: greedy (argmax)
	TopK         int     // 0: off
	TopP         float64 // 0 or 1: off
	Seed         uint64
	Tag          int // the sequence's tag in DecoderOptions.SetRows (a server: its adapter)
}

// DecoderOptions configure a Decoder.
type DecoderOptions struct {
	StopTokens []int // a sequence that makes one of these ends (the token is not output)
	PadID      int   // fills padding
	// SetRows, when set, is called before every forward pass with the tag of each row of
	// that pass, in order (lora.Mixture.SetRows, so that each row runs its own adapter).
	SetRows func(tags []int) error
}

// Token is what one Step gave one sequence.
type Token struct {
	Seq    int    // the sequence's id (from Add)
	Token  int    // the new token; -1 when the sequence ended on a stop token
	Reason string // "" while the sequence goes on; "stop_token" or "length" when it ends
}

// sequence is a Decoder's state of one Request.
type sequence struct {
	id      int
	req     Request
	gen     *torch.Generator // sampled sequences only
	cached  int              // tokens in the cache: the prompt and every token fed since
	pending int64            // the last token chosen, fed at the next step
	made    int              // tokens output
	from    int              // its first cache slot: it fills [from, cache.Len())
	joinRow int              // its row in the prefill cache
	ended   bool             // no more tokens: it leaves the cache at its next rebuild
}

// Decoder is continuous batching: sequences join (Add) and leave (a stop token, their
// token limit, or Cancel) between any two steps, decoded together in one key/value cache.
// Each sequence fills the cache's slots up to its end, left-aligned to a common last slot,
// so one decoding step feeds every row one token. When sequences join, a fresh cache
// gathers those that go on and the new ones (prefilled together); a sequence that ends
// stays as an idle row until the next such gathering, or until idle rows are a quarter of
// the cache. A Decoder is not safe for concurrent use; call Step from one OS thread
// (runtime.LockOSThread) where speed matters: libtorch's CPU thread pool belongs to the
// thread that calls it, and pools of several threads compete for the cores.
type Decoder struct {
	m       model.CausalLM
	info    model.Info
	o       DecoderOptions
	stop    map[int]bool
	cache   *model.KVCache
	rows    []*sequence // the cache's rows, in order
	joining []*sequence // added since the last Step
	live    int         // sequences not ended
	nextID  int
}

// NewDecoder returns an empty decoder for m.
func NewDecoder(m model.CausalLM, o DecoderOptions) (*Decoder, error) {
	info := m.Info()
	if o.PadID < 0 || o.PadID >= info.VocabSize {
		return nil, fmt.Errorf("decoder: pad id %d outside the vocabulary of %d", o.PadID, info.VocabSize)
	}
	d := &Decoder{m: m, info: info, o: o, stop: map[int]bool{}}
	for _, t := range o.StopTokens {
		d.stop[t] = true
	}
	return d, nil
}

// Add queues a sequence to join at the next Step and returns its id.
func (d *Decoder) Add(r Request) (int, error) {
	switch {
	case len(r.Prompt) == 0:
		return 0, fmt.Errorf("the prompt is empty")
	case r.MaxNewTokens <= 0:
		return 0, fmt.Errorf("max new tokens must be positive, got %d", r.MaxNewTokens)
	case len(r.Prompt)+r.MaxNewTokens > d.info.MaxPositions:
		return 0, fmt.Errorf("prompt of %d tokens plus %d new exceeds the model's %d positions", len(r.Prompt), r.MaxNewTokens, d.info.MaxPositions)
	case r.Temperature < 0 || math.IsNaN(r.Temperature):
		return 0, fmt.Errorf("temperature must be >= 0, got %v", r.Temperature)
	case r.TopK < 0:
		return 0, fmt.Errorf("top-k must be >= 0, got %d", r.TopK)
	case r.TopP < 0 || r.TopP > 1 || math.IsNaN(r.TopP):
		return 0, fmt.Errorf("top-p must be in [0, 1], got %v", r.TopP)
	}
	for _, id := range r.Prompt {
		if id < 0 || id >= d.info.VocabSize {
			return 0, fmt.Errorf("the prompt has token %d outside the vocabulary of %d", id, d.info.VocabSize)
		}
	}
	q := &sequence{id: d.nextID, req: r}
	q.req.Prompt = append([]int(nil), r.Prompt...)
	if r.Temperature > 0 {
		g, err := torch.NewGenerator(r.Seed, d.m.Device())
		if err != nil {
			return 0, err
		}
		q.gen = g
	}
	d.nextID++
	d.joining = append(d.joining, q)
	d.live++
	return q.id, nil
}

// Cancel ends a sequence: it gets no more tokens. Unknown or ended ids are ignored.
func (d *Decoder) Cancel(id int) {
	for _, list := range [][]*sequence{d.joining, d.rows} {
		for _, q := range list {
			if q.id == id && !q.ended {
				d.end(q)
			}
		}
	}
}

// Len is the number of sequences decoding or waiting to join.
func (d *Decoder) Len() int { return d.live }

// Rows is the number of rows the cache decodes at each step (the sequences in it,
// including ended ones not yet dropped).
func (d *Decoder) Rows() int { return len(d.rows) }

func (d *Decoder) end(q *sequence) {
	q.ended = true
	d.live--
	if q.gen != nil {
		q.gen.Close()
		q.gen = nil
	}
}

// Close frees the cache and the generators.
func (d *Decoder) Close() {
	for _, q := range append(d.joining, d.rows...) {
		if !q.ended {
			d.end(q)
		}
	}
	d.rows, d.joining = nil, nil
	if d.cache != nil {
		d.cache.Close()
		d.cache = nil
	}
}

// Step prefills the sequences that joined (each gets its first token), gathers the cache
// when its rows change, and decodes one token for every sequence in it. It returns the
// tokens made, in order (a sequence that joined gets two).
func (d *Decoder) Step() ([]Token, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var out []Token
	err := torch.NoGrad(func() error {
		var joiners []*sequence
		for _, q := range d.joining {
			if !q.ended {
				joiners = append(joiners, q)
			}
		}
		d.joining = nil
		var joined []*sequence
		var jcache *model.KVCache
		if len(joiners) > 0 {
			var err error
			if jcache, err = d.prefill(joiners, &out); err != nil {
				return err
			}
			defer jcache.Close()
			for _, q := range joiners {
				if !q.ended {
					joined = append(joined, q)
				}
			}
		}
		idle := 0
		for _, q := range d.rows {
			if q.ended {
				idle++
			}
		}
		if len(joined) > 0 || (idle > 0 && (idle == len(d.rows) || 4*idle >= len(d.rows))) {
			if err := d.gather(joined, jcache); err != nil {
				return err
			}
		}
		if d.live == 0 || len(d.rows) == 0 {
			return nil
		}
		return d.decode(&out)
	})
	if err != nil {
		return out, fmt.Errorf("decoder: %w", err)
	}
	return out, nil
}

// accept takes a sequence's new token.
func (d *Decoder) accept(q *sequence, tok int, out *[]Token) {
	if d.stop[tok] {
		*out = append(*out, Token{Seq: q.id, Token: -1, Reason: "stop_token"})
		d.end(q)
		return
	}
	q.made++
	q.pending = int64(tok)
	t := Token{Seq: q.id, Token: tok}
	if q.made >= q.req.MaxNewTokens {
		t.Reason = "length"
		d.end(q)
	}
	*out = append(*out, t)
}

// prefill runs the joiners' prompts, left-padded, through a cache of their own and
// chooses each one's first token.
func (d *Decoder) prefill(js []*sequence, out *[]Token) (*model.KVCache, error) {
	B, P := len(js), 0
	for _, q := range js {
		P = max(P, len(q.req.Prompt))
	}
	cache, err := d.m.NewCache(B, P)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, B*P)
	pos := make([]int64, B*P)
	mask := make([]bool, B*P*P)
	tags := make([]int, B)
	for b, q := range js {
		pad := P - len(q.req.Prompt)
		for j := 0; j < P; j++ {
			ids[b*P+j] = int64(d.o.PadID)
			if j >= pad {
				ids[b*P+j] = int64(q.req.Prompt[j-pad])
				pos[b*P+j] = int64(j - pad)
			}
		}
		// causal over real tokens; a padding query sees itself so that its softmax row
		// is never empty (its output is never read)
		for i := 0; i < P; i++ {
			for j := 0; j <= i; j++ {
				mask[(b*P+i)*P+j] = j >= pad || i == j
			}
		}
		q.cached, q.from, q.joinRow, tags[b] = len(q.req.Prompt), pad, b, q.req.Tag
	}
	if d.o.SetRows != nil {
		if err := d.o.SetRows(tags); err != nil {
			cache.Close()
			return nil, err
		}
	}
	s := torch.NewScope()
	defer s.Close()
	dev := d.m.Device()
	shape := []int64{int64(B), int64(P)}
	last := d.m.Step(s, s.Int64s(ids, shape, dev), s.Int64s(pos, shape, dev), s.Bools(mask, []int64{int64(B), 1, int64(P), int64(P)}, dev), cache)
	chosen, err := d.choose(s, last, js)
	if err != nil {
		cache.Close()
		return nil, fmt.Errorf("prefill: %w", err)
	}
	for b, q := range js {
		d.accept(q, int(chosen[b]), out)
	}
	return cache, nil
}

// gather builds a fresh cache of the sequences that go on and those that joined (in
// jcache), each row's slots ending at the same last slot, and drops ended rows.
func (d *Decoder) gather(joined []*sequence, jcache *model.KVCache) error {
	var kept []*sequence
	var keptRows []int
	for i, q := range d.rows {
		if !q.ended {
			kept = append(kept, q)
			keptRows = append(keptRows, i)
		}
	}
	L, need := 0, 0
	for _, q := range append(append([]*sequence(nil), kept...), joined...) {
		L = max(L, q.cached)
		need = max(need, q.req.MaxNewTokens-q.made)
	}
	old := d.cache
	if len(kept)+len(joined) == 0 {
		if old != nil {
			old.Close()
		}
		d.cache, d.rows = nil, nil
		return nil
	}
	nc, err := d.m.NewCache(len(kept)+len(joined), L+need)
	if err != nil {
		return err
	}
	// Every kept row ends at old's last slot: one shift moves them all to end at L.
	if len(kept) > 0 {
		S, from := old.Len(), old.Len()
		for _, q := range kept {
			from = min(from, q.from)
		}
		shift := L - S
		if err := old.CopyTo(nc, keptRows, from, S, 0, from+shift); err != nil {
			nc.Close()
			return err
		}
		for _, q := range kept {
			q.from += shift
		}
	}
	if len(joined) > 0 {
		P, from := jcache.Len(), jcache.Len()
		rows := make([]int, 0, len(joined))
		for _, q := range joined {
			from = min(from, q.from)
		}
		for _, q := range joined {
			rows = append(rows, q.joinRow)
		}
		shift := L - P
		if err := jcache.CopyTo(nc, rows, from, P, len(kept), from+shift); err != nil {
			nc.Close()
			return err
		}
		for _, q := range joined {
			q.from += shift
		}
	}
	if err := nc.SetLen(L); err != nil {
		nc.Close()
		return err
	}
	if old != nil {
		old.Close()
	}
	d.cache, d.rows = nc, append(kept, joined...)
	return nil
}

// decode feeds every row its pending token (an ended row: padding that sees only
// itself) and chooses each sequence's next token.
func (d *Decoder) decode(out *[]Token) error {
	B, S := len(d.rows), d.cache.Len()
	ids := make([]int64, B)
	pos := make([]int64, B)
	mask := make([]bool, B*(S+1))
	tags := make([]int, B)
	for b, q := range d.rows {
		ids[b], tags[b] = int64(d.o.PadID), q.req.Tag
		mask[b*(S+1)+S] = true
		if q.ended {
			continue
		}
		ids[b], pos[b] = q.pending, int64(q.cached)
		for j := q.from; j < S; j++ {
			mask[b*(S+1)+j] = true
		}
	}
	if d.o.SetRows != nil {
		if err := d.o.SetRows(tags); err != nil {
			return err
		}
	}
	s := torch.NewScope()
	defer s.Close()
	dev := d.m.Device()
	shape := []int64{int64(B), 1}
	last := d.m.Step(s, s.Int64s(ids, shape, dev), s.Int64s(pos, shape, dev), s.Bools(mask, []int64{int64(B), 1, 1, int64(S + 1)}, dev), d.cache)
	chosen, err := d.choose(s, last, d.rows)
	if err != nil {
		return err
	}
	for b, q := range d.rows {
		if q.ended {
			continue
		}
		q.cached++
		d.accept(q, int(chosen[b]), out)
	}
	return nil
}

// choose picks each row's token from logits (B, V): one argmax for the greedy rows, a
// draw from its own generator for each sampled row.
func (d *Decoder) choose(s *torch.Scope, logits *torch.Tensor, rows []*sequence) ([]int64, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	out, err := s.Argmax(logits, -1, false).Int64s()
	if err != nil {
		return nil, err
	}
	for b, q := range rows {
		if q.ended || q.req.Temperature == 0 {
			continue
		}
		o := GenerateOptions{Temperature: q.req.Temperature, TopK: q.req.TopK, TopP: q.req.TopP}
		t, err := choose(s, s.Slice(logits, 0, int64(b), int64(b+1), 1), o, q.gen)
		if err != nil {
			return nil, err
		}
		out[b] = t[0]
	}
	return out, nil
}
