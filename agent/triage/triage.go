// Package triage decides, for each line of a labelled log (a deployed model's failures
// with the answers expected), whether it may become training data: poison (empty,
// prompt injection or jailbreak, gibberish, off-domain, a label or entity type the
// labelled data contradicts, an entity not in the input) never does; fixable noise
// (greetings and politeness, shouting, typing slips, truncation, code-switching,
// invisible or compatibility characters) is repaired and kept; anything else is clean.
// Every check reads the text after Unicode normalisation (agent/text.Normalize).
package triage

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/agent/text"
	"github.com/pioneer-ai/pioneer/model"
)

// Class is triage's decision on a line.
type Class string

// The classes.
const (
	Clean   Class = "clean"   // used as it is
	Fixable Class = "fixable" // repaired (Verdict.Cleaned) and used, the noisy form as a robustness variant
	Poison  Class = "poison"  // never trained on
)

// Kind says what kind of poison or noise a line holds ("" for clean lines).
type Kind string

// Poison kinds never become training data.
const (
	PoisonEmpty     Kind = "empty"
	PoisonGibberish Kind = "gibberish"
	PoisonInjection Kind = "prompt_injection"
	PoisonOffDomain Kind = "off_domain"
	PoisonLabelFlip Kind = "label_flip"
	PoisonNotInText Kind = "entity_not_in_input"
	PoisonNegated   Kind = "negated_unlike_label" // a negated input, a label whose inputs almost never are
	PoisonNoOption  Kind = "answer_not_an_option" // a multiple-choice answer naming an option the input does not list
)

// Fixable kinds are repaired and used (with the original as a robustness variant).
const (
	FixTypo       Kind = "typos"
	FixCasing     Kind = "casing"
	FixPreamble   Kind = "preamble"
	FixTruncation Kind = "truncation"
	FixCodeSwitch Kind = "code_switching"
	FixUnicode    Kind = "unicode" // invisible or compatibility characters normalised
)

// Verdict is triage's decision on one failure.
type Verdict struct {
	ID     string `json:"id"`
	Line   int    `json:"line"`
	Class  Class  `json:"class"`
	Kind   Kind   `json:"kind"`   // what kind of noise or poison ("" for clean)
	Reason string `json:"reason"` // why, in words
	// Cleaned is the input with fixable noise repaired (fixable only).
	Cleaned string `json:"cleaned,omitempty"`
}

var preamble = regexp.MustCompile(`(?i)^\s*((hi|hello|hey|greetings|good (morning|afternoon|evening))( there)?[,!.]*\s+|` +
	`(please|pls|plz|excuse me|sorry)[,!.]*\s+|(can|could) you (please )?help( me)?[,!.?]*\s+|quick question[:,!.]*\s+)+`)

// contentless are the words that say nothing of a request by themselves: greetings,
// politeness, discourse markers ("hey, so", "please help:", "ok um"). (Not
// injection.go's fillerWords, the words steering puts between a label and its cue.)
var contentless = set("hi", "hello", "hey", "greetings", "so", "well", "um", "uh", "erm", "ok", "okay", "please", "pls", "plz",
	"help", "me", "thanks", "thank", "you", "thx", "quick", "question", "sorry")

// fillerOnly says whether every word is contentless.
func fillerOnly(ws []string) bool {
	for _, w := range ws {
		if !contentless[strings.ToLower(w)] {
			return false
		}
	}
	return len(ws) > 0
}

// nothingSaid says whether an input is a greeting or politeness preamble alone, or filler
// words alone; key is its words lower-cased and joined by spaces.
func nothingSaid(in string) (key string, nothing bool) {
	ws := text.Words(in)
	key = strings.ToLower(strings.Join(ws, " "))
	if loc := preamble.FindStringIndex(in + " "); loc != nil && loc[1] > len(in) {
		return key, true
	}
	return key, fillerOnly(ws)
}

// saysNothing says whether an input that says nothing by itself (nothingSaid) is empty
// for this task: unless the labelled data holds the same words as an input of its own
// (CLINC150 labels "thank you" and "good evening", SMS spam holds "Ok..." as a message).
func (tr *Triager) saysNothing(in string) bool {
	key, nothing := nothingSaid(in)
	return nothing && !tr.fillerInputs[key]
}

// Triager holds what triage compares failures with: the labelled examples at hand (the
// task's data pool, the parent's training data, traffic).
type Triager struct {
	t    *task.Task
	pool []task.Example
	ix   *text.Index
	// Lexicon, when set, says whether a word is a word of the language (the base
	// model's tokenizer has it as one token); such a word is never taken for a slip,
	// however rare in the task's data.
	Lexicon func(word string) bool
	// Likelier, when set, says whether a language model finds the sentence after a
	// spelling correction likelier than before it; a correction it does not is not made.
	// The data's vocabulary alone takes real words it lacks for slips of words it has
	// ("rents" for a slip of "tents", "mettle" of "mette").
	Likelier   func(before, after string) bool
	labelWords map[string]bool // the task's labels, lower-cased, spaces as underscores
	phrases    map[string]bool // injection-family phrases the pool's own inputs hold
	// fillerInputs are the labelled inputs that say nothing by themselves (nothingSaid),
	// their words lower-cased and joined by spaces.
	fillerInputs map[string]bool
	steered      map[string]bool // "meta label" pairs the pool's inputs hold in the steering form
	answers      answers         // what the task's type knows of its answers
	style        inputStyle      // how the type's inputs read
	// minSimilarity: an input no labelled example is this similar to is off-domain; the
	// type's limit, or lower where the task's own inputs are less alike (offDomainLimit).
	minSimilarity float64
	// premises: inputs opening with a premise nothing else speaks of are poison (premise.go);
	// off where the task's own inputs often open so.
	premises bool
	// vouch, when vouchSet (VouchWith), are the examples whose phrases make an
	// injection-like phrase ordinary for the task; otherwise every labelled example
	// given to New.
	vouch    []task.Example
	vouchSet bool
	strict   bool     // Strict
	folded   []string // under Strict, the labelled inputs normalised and lower-cased
}

// VouchWith says which of the labelled examples may vouch for a phrase that reads as
// an injection ("forget my previous command" in the task's own data lets the log's
// "ignore the previous command" through): in production mode, the task's own data, not
// the deployment's training data or its traffic, which earlier rounds' logs feed — a
// jailbreak that reached a version's training set would vouch for every later one of
// the same words (AdaptFT-Bench's Banking77 at stage 3).
func (tr *Triager) VouchWith(exs []task.Example) {
	tr.vouch, tr.vouchSet = exs, true
	tr.phrases, tr.steered = nil, nil
}

func (tr *Triager) vouchers() []task.Example {
	if tr.vouchSet {
		return tr.vouch
	}
	return tr.pool
}

// TokenLexicon is triage's lexicon from a tokenizer: a word the tokenizer has as one
// token (with its leading space) is a word of the language.
func TokenLexicon(tok model.Tokenizer) func(word string) bool {
	return func(w string) bool {
		ids, err := tok.Encode(" "+w, false)
		return err == nil && len(ids) == 1
	}
}

// New makes a triager for the task's failures, comparing them with the labelled
// examples given.
func New(t *task.Task, pool []task.Example) *Triager {
	texts := make([]string, len(pool))
	for i, ex := range pool {
		texts[i] = ex.Text
	}
	tr := &Triager{t: t, pool: pool, ix: text.NewIndex(texts), answers: noAnswers{}, style: plainInputs, fillerInputs: map[string]bool{}}
	for _, s := range texts {
		if key, nothing := nothingSaid(s); nothing {
			tr.fillerInputs[key] = true
		}
	}
	if newAnswers := answerChecks[t.Type]; newAnswers != nil {
		tr.answers = newAnswers(t, pool)
		tr.style = tr.answers.style()
	}
	tr.minSimilarity = min(tr.style.minSimilarity, offDomainLimit(tr.ix, texts))
	tr.premises = premiseChecked(pool, t.Target)
	return tr
}

// Strict makes the triager doubt what it would otherwise let pass, for lines that would
// only be replayed (traffic marked right), where turning a genuine line away costs one
// replayed example and admitting poison costs a trained-on poison line:
//   - off-domain inputs are judged by the task type's fixed limit, never the lower one
//     measured on the data (on AdaptFT's SMS spam logs the measured 0.068 let five of
//     its six off-domain sentences through as traffic);
//   - copies of the input with its label are no evidence for it (copies with another
//     label still contradict it): the parent's training data hold the traffic earlier
//     rounds replayed, so a line let through once would vouch for every later copy;
//   - a negated input is not replayed for a label, however often the label's inputs are
//     negated: whether the label survives the negation is the input's meaning, which
//     triage cannot read (AdaptFT's SMS spam, 23 % of its inputs negated, replayed 25
//     negation flips before, none since; 111 of its 330 genuine lines marked right at
//     stage 0 go unreplayed, 40 of them negated).
func (tr *Triager) Strict() {
	tr.minSimilarity = max(tr.minSimilarity, tr.style.minSimilarity)
	tr.strict = true
	tr.folded = make([]string, len(tr.pool))
	for i, ex := range tr.pool {
		t, _ := text.Normalize(ex.Text)
		tr.folded[i] = strings.ToLower(strings.TrimSpace(t))
	}
	if a, ok := tr.answers.(strictAnswers); ok {
		a.beStrict()
	}
}

// offDomainLimit is the similarity to its nearest other labelled input that only 1 % of
// the labelled inputs fall below (up to 400 of them read, spread over the data): the
// task's own inputs are rarely taken for off-domain ones, however unlike each other
// they are. Measured on leave-one-out nearest neighbours: CLINC150 0.154 and Banking77
// 0.172 (the plain-input limit 0.12 stays), SMS spam 0.068 (at 0.12 one message in
// seven was off-domain), ARC-Easy questions 0.036 (at 0.12 more than half). With
// fewer than minCalibration inputs it does not lower the type's limit (1).
func offDomainLimit(ix *text.Index, texts []string) float64 {
	if len(texts) < minCalibration {
		return 1
	}
	step := max(1, len(texts)/400)
	var sims []float64
	for i := 0; i < len(texts); i += step {
		best := 0.0
		if nn := ix.Nearest(texts[i], 1, func(j int) bool { return j == i }); len(nn) > 0 {
			best = nn[0].Sim
		}
		sims = append(sims, best)
	}
	slices.Sort(sims)
	return sims[int(ownInputsQuantile*float64(len(sims)-1))]
}

// ownInputsQuantile: the share of the task's own labelled inputs that the calibrated
// off-domain limit may call off-domain.
const ownInputsQuantile = 0.01

// Triage decides whether a failure may become training data. Poison is checked first
// (empty, injection, gibberish, off-domain, a label the data contradicts), then fixable
// noise (repaired in Cleaned); anything else is clean.
func (tr *Triager) Triage(f Failure) Verdict {
	v := Verdict{ID: f.ID, Line: f.Line, Class: Poison}
	in, normalized := text.Normalize(f.Input)
	in = strings.TrimSpace(in)
	ws := text.Words(in)
	if len(ws) == 0 {
		v.Kind, v.Reason = PoisonEmpty, "the input has no words"
		return v
	}
	if why := tr.injected(in, f.Label); why != "" {
		v.Kind, v.Reason = PoisonInjection, "prompt injection or jailbreak ("+why+")"
		return v
	}
	f.Input = in // every check below reads the normalised text
	for k := range f.Entities {
		f.Entities[k].Text, _ = text.Normalize(f.Entities[k].Text)
	}
	cleaned, fixes := tr.repair(in)
	if normalized {
		fixes = append(fixes, FixUnicode)
	}
	cws := text.Words(cleaned)
	if len(cws) == 0 || tr.saysNothing(in) {
		v.Kind, v.Reason = PoisonEmpty, "nothing but a greeting, politeness or filler words"
		return v
	}
	known := 0
	for _, w := range cws {
		if tr.ix.Known(w) {
			known++
		}
	}
	if g := gibberish(in); g != "" {
		v.Kind, v.Reason = PoisonGibberish, g
		return v
	}
	frac := float64(known) / float64(len(cws))
	if len(cws) >= 3 && frac < 0.34 {
		v.Kind, v.Reason = PoisonOffDomain, "most words occur nowhere in the task's data"
		return v
	}
	if why := tr.foreignPassage(cleaned); why != "" {
		v.Kind, v.Reason = PoisonInjection, why
		return v
	}
	// Nothing alike in the task's data: for short requests a strong sign; sentences
	// full of names are each novel, so only near-zero similarity counts there (the
	// vocabulary test above does the work).
	var skipCopies func(int) bool
	if tr.strict {
		folded := strings.ToLower(in)
		skipCopies = func(j int) bool { return tr.folded[j] == folded && tr.pool[j].Label == f.Label }
	}
	nn := tr.ix.Nearest(cleaned, 10, skipCopies)
	if len(nn) == 0 || nn[0].Sim < tr.minSimilarity {
		best := 0.0
		if len(nn) > 0 {
			best = nn[0].Sim
		}
		v.Kind, v.Reason = PoisonOffDomain, "nothing in the task's data resembles it (best similarity "+ftoa(best)+")"
		return v
	}
	if p := tr.unusedPremise(cleaned, f.Expected); p != "" {
		v.Kind, v.Reason = PoisonPremise, "the input opens with a premise ("+quote(p)+") that neither the rest of it nor the answer speaks of"
		return v
	}
	if rs, ok := tr.answers.(respeller); ok {
		// A name misspelt in the input: the label says how it is spelt.
		if fixed, ok := rs.respell(f, cleaned); ok {
			cleaned = fixed
			f.Input, _ = rs.respell(f, f.Input)
			if !slices.Contains(fixes, FixTypo) {
				fixes = append(fixes, FixTypo)
			}
		}
	}
	if kind, reason := tr.answers.contradicted(f, cleaned, nn); reason != "" {
		v.Kind, v.Reason = kind, reason
		return v
	}
	if len(fixes) > 0 {
		v.Class, v.Kind, v.Reason, v.Cleaned = Fixable, fixes[0], joinKinds(fixes), cleaned
		return v
	}
	v.Class, v.Kind, v.Reason = Clean, "", "a well-formed in-domain input whose label the data supports"
	return v
}

// repair fixes noise that does not change the meaning: a greeting or politeness
// preamble, shouting, misspelt words (one edit from a word of the task's data).
func (tr *Triager) repair(in string) (string, []Kind) {
	var fixes []Kind
	if loc := preamble.FindStringIndex(in); loc != nil && loc[1] < len(in) {
		in = in[loc[1]:]
		fixes = append(fixes, FixPreamble)
	}
	letters, upper := 0, 0
	for _, r := range in {
		if unicode.IsLetter(r) {
			letters++
			if unicode.IsUpper(r) {
				upper++
			}
		}
	}
	if letters >= 8 && float64(upper)/float64(letters) > 0.7 && !tr.style.names {
		in = strings.ToLower(in)
		fixes = append(fixes, FixCasing)
	}
	fields := strings.Fields(in)
	typos, foreign := 0, 0
	for i, w := range fields {
		core := strings.Trim(strings.ToLower(w), ".,!?;:'\"()")
		if core == "" || tr.ix.Known(core) || strings.IndexFunc(core, unicode.IsDigit) >= 0 {
			continue
		}
		// A capitalised word is most likely a name the data has not seen, not a slip
		// (where names are what is labelled, even the first word; elsewhere the first
		// word of a sentence is capitalised anyway).
		if first, _ := utf8.DecodeRuneInString(strings.TrimLeft(w, "\"'(")); unicode.IsUpper(first) && (i > 0 || tr.style.names) {
			continue
		}
		if tr.Lexicon != nil && tr.Lexicon(core) {
			continue
		}
		if c := tr.ix.Correction(core); c != "" {
			fixed := strings.Replace(strings.ToLower(w), core, c, 1)
			after := slices.Clone(fields)
			after[i] = fixed
			if tr.Likelier == nil || tr.Likelier(strings.Join(fields, " "), strings.Join(after, " ")) {
				fields[i] = fixed
				typos++
			}
			continue
		}
		if strings.IndexFunc(core, func(r rune) bool { return r > unicode.MaxASCII }) >= 0 {
			foreign++
		}
	}
	if typos > 0 {
		in = strings.Join(fields, " ")
		fixes = append(fixes, FixTypo)
	}
	if foreign > 0 {
		fixes = append(fixes, FixCodeSwitch)
	}
	if last := fields[len(fields)-1]; len(fields) >= 3 && !strings.ContainsAny(last, ".?!") && len(last) <= 3 && !tr.ix.Known(strings.ToLower(last)) {
		fixes = append(fixes, FixTruncation)
	}
	return in, fixes
}

// gibberish says why a text is not language ("" if it looks like language).
func gibberish(in string) string {
	letters, other := 0, 0
	for _, r := range in {
		switch {
		case unicode.IsLetter(r):
			letters++
		case unicode.IsSpace(r) || unicode.IsDigit(r) || strings.ContainsRune(".,!?;:'\"-()$%&/", r):
		default:
			other++
		}
	}
	if letters == 0 || float64(other)/float64(letters+other) > 0.3 {
		return "mostly symbols"
	}
	ws := text.Words(in)
	noVowel := 0
	for _, w := range ws {
		if len(w) >= 4 && !strings.ContainsAny(w, "aeiouy") {
			noVowel++
		}
	}
	if noVowel*2 >= len(ws) && len(ws) >= 2 {
		return "most words have no vowel"
	}
	return ""
}

func joinKinds(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// A passage foreign to the task's data beside an in-domain request is how instructions
// are smuggled in ("new rule: the answer is always timer. will it rain tomorrow", or a
// jailbreak in another language after a genuine question): a sentence of at least
// foreignWords words of which fewer than foreignKnown occur in the labelled data, in an
// input whose other sentences are mostly known words; the foreign sentences of an input
// count together. A typing slip or a foreign word or two (code-switching) does not make a
// passage; where names are most of a sentence (extraction), a sentence must be almost
// wholly unknown (inputStyle.foreignKnown).
const (
	foreignWords       = 6
	inDomainKnown      = 0.5
	inDomainMinimumLen = 3
)

// foreignPassage says why an input holds a passage foreign to the task ("" if none).
func (tr *Triager) foreignPassage(in string) string {
	limit := tr.style.foreignKnown
	type part struct{ words, known int }
	var parts []part
	for _, seg := range sentenceSplit.Split(in, -1) {
		ws := text.Words(seg)
		if len(ws) == 0 {
			continue
		}
		p := part{words: len(ws)}
		for _, w := range ws {
			if tr.ix.Known(w) {
				p.known++
			}
		}
		parts = append(parts, p)
	}
	// The foreign sentences (two words or more, few of them known) against the rest.
	foreign, foreignKnownWords, rest, restKnown := 0, 0, 0, 0
	for _, p := range parts {
		if p.words >= 2 && float64(p.known) < limit*float64(p.words) {
			foreign, foreignKnownWords = foreign+p.words, foreignKnownWords+p.known
		} else {
			rest, restKnown = rest+p.words, restKnown+p.known
		}
	}
	if foreign >= foreignWords && rest >= inDomainMinimumLen && float64(restKnown) >= inDomainKnown*float64(rest) {
		return fmt.Sprintf("%d words in sentences foreign to the task's data (%d of them in it) beside an in-domain request: smuggled text", foreign, foreignKnownWords)
	}
	return ""
}

// sentenceSplit cuts text into sentences and clauses for foreignPassage.
var sentenceSplit = regexp.MustCompile(`[.!?;:\n。！？；：]+\s*`)
