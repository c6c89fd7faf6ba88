package triage

import (
	"regexp"
	"strings"
	"unicode"

	"github.com/pioneer-ai/pioneer/agent/text"
)

// Prompt injection and jailbreaks are recognised by what they do, not by one phrase:
// each family below is a way a line tries to take the model's instructions over, written
// for the words of several languages where the family is a phrase. The text is
// normalised first (text.Normalize: full-width letters, zero-width characters), so
// spacing and look-alike characters do not hide a phrase. The families were written from
// the forms attacks take (published taxonomies of prompt injection: instruction override,
// role play, prompt extraction, chat-markup smuggling, rule setting, answer steering),
// not fitted to a corpus; testdata/injection holds a corpus they were tested on and not
// tuned on.
var injectionFamilies = []struct {
	name string
	// cues: a text can match re only if its lower-cased form holds one of them (a cheap
	// test before the expression, which is slow on long alternations).
	cues []string
	re   *regexp.Regexp
}{
	// "ignore all previous instructions" and its kin, in several languages.
	{"instruction override", []string{"ignor", "disregard", "forget", "skip", "bypass", "overrid", "overlook", "neglect", "abandon",
		"drop", "discard", "erase", "delete", "clear", "oubli", "tien", "tenez", "olvid", "omite", "descarta", "desobedece", "vergiss",
		"vergess", "missacht", "dimentic", "trascura", "esque", "desconsider", "negeer", "vergeet", "игнор", "забуд", "проигнор",
		"忽略", "无视", "忽视", "忘记", "忘掉", "不要理会", "無視", "忘れ", "previous", "prior", "anterior", "previas", "précédentes",
		"vorherig", "precedent"}, regexp.MustCompile(`(?i)` +
		// the instructions named alone, whatever the verb before them (a misspelt one too)
		`\b(previous|prior|preceding)\s+(instructions|directives|prompts)\b|\b(las|tus|sus)\s+instrucciones\s+(anteriores|previas)\b` +
		`|\b(les|vos|tes)\s+(instructions|consignes)\s+(précédentes|antérieures)\b|\b(vorherigen|bisherigen)\s+(anweisungen|instruktionen)\b` +
		`|\ble\s+istruzioni\s+precedenti\b|` +
		`\b(ignore|disregard|forget|skip|bypass|override|overlook|neglect|abandon|drop|discard|erase|delete|clear)\s+` +
		`((all|any|every|each|the|your|my|these|those|of|everything|anything|that|what|you|were|was|told|said|given|been)\s+){0,5}` +
		`(previous|prior|above|earlier|preceding|foregoing|original|initial|old|former|system|safety|existing|default)\s+` +
		`((\w+)\s+){0,2}(instructions?|prompts?|rules|directives?|guidelines|commands?|context|constraints|programming|training|orders|messages?|text|policies|restrictions)\b` +
		`|\b(ignore|disregard|forget|override)\s+(all|any|every|your)\s+(instructions|rules|guidelines|directives|restrictions|programming)\b` +
		`|\b(ignore[rz]?|oublie[rz]?|ne\s+tenez\s+pas\s+compte|ne\s+tiens\s+pas\s+compte)\s+((de|des|les|la|le|toutes|tous|vos|tes|ces|mes)\s+){0,3}(instructions|consignes|règles|directives|ordres|indications)\b` +
		`|\b(ignora|ignore|ignorar|ignoren|olvida|olvide|olviden|olvidar|omite|descarta|desobedece)\s+((todas|todos|las|los|tus|sus|mis|estas|esas|de)\s+){0,3}(instrucciones|indicaciones|reglas|órdenes|ordenes|directrices)\b` +
		`|\b(ignoriere|ignorieren\s+sie|ignoriert|vergiss|vergessen\s+sie|vergesst|missachte|missachten\s+sie)\s+((alle|alles|die|deine|ihre|eure|diese|vorherigen|bisherigen|obigen|vorigen|früheren)\s+){0,3}(anweisungen|instruktionen|regeln|befehle|vorgaben|richtlinien)\b` +
		`|\b(ignora|ignorate|ignori|dimentica|dimenticate|dimentichi|trascura)\s+((tutte|tutti|le|gli|i|tue|sue|queste|precedenti)\s+){0,3}(istruzioni|regole|indicazioni|direttive)\b` +
		`|\b(ignore|ignora|ignorem|esqueça|esqueca|esqueçam|desconsidere|desconsidera)\s+((todas|todos|as|os|suas|tuas|essas|estas)\s+){0,3}(instruções|instrucoes|regras|orientações|diretrizes)\b` +
		`|\b(negeer|vergeet|negeert)\s+((alle|de|je|jouw|uw|vorige|eerdere)\s+){0,3}(instructies|regels|opdrachten)\b` +
		`|(игнорируй|игнорируйте|забудь|забудьте|проигнорируй|проигнорируйте)\s+((все|всё|предыдущие|прежние|свои|твои|эти)\s+){0,3}(инструкции|указания|правила|команды)` +
		`|(忽略|无视|忽视|忘记|忘掉|不要理会)(掉)?(之前|以上|前面|上面|上述|先前|所有|全部)?(的)?(所有|全部)?(指令|指示|规则|提示|要求|命令)` +
		`|(以前|前|上記|これまで)の(すべての)?(指示|命令|ルール)を(無視|忘れ)`)},
	// Role play that removes the model's limits, and the well-known jailbreak personas.
	{"jailbreak role play", []string{"you are", "act", "behave", "respond", "answer", "pretend", "role", "character", "jailbr", "dan",
		"mode", "do anything", "without", "restriction", "filter", "limitation", "censor", "semblant", "como si", "finge", "maintenant",
		"jetzt", "ahora", "agora", "now on", "starting now", "you will", "polic", "ethic", "moral", "refus", "decline", "say no",
		"hypothetical", "safety", "unfiltered", "uncensored", "unrestricted"}, regexp.MustCompile(`(?i)` +
		`\byou are now (?:(?-i:DAN)\b|in \w+ mode\b|no longer\b|(?:an? )?(?:unrestricted|unfiltered|uncensored|jailbroken|evil|free of|freed)\b)` +
		`|\b(act|behave|respond|answer)\s+(as|like)\s+(an?\s+)?(unrestricted|unfiltered|uncensored|jailbroken|evil|rogue|amoral|unethical)\b` +
		`|\bpretend (to be|you are|you're|that you|you (have|had) no)\b|\broleplay as\b|\brole-play as\b|\bstay in character\b|\bjailbr(eak|oken)\b` +
		`|\b(?-i:DAN)\s+mode\b|\byou are (?-i:DAN)\b|\b(developer|god|sudo|unrestricted|opposite|evil)\s+mode\b|\bdo anything now\b` +
		`|\bwithout\s+(any\s+)?(restrictions|filters|filtering|limitations|censorship|guidelines|rules|ethical)\b` +
		`|\b(no|free of|freed from|break free of)\s+(content\s+)?(restrictions|filters|limitations|censorship)\b` +
		`|\b(from now on|starting now)[,]? you (are|will be|are going to|will act|will pretend|will respond)\b` +
		`|\byou (are going to|will) (act|pretend|roleplay|role-play|simulate|behave|respond) (as|to be|like)\b` +
		`|\b(content|usage) polic(y|ies)\b|\b(ethical|moral|safety) (guidelines|principles|restrictions|boundaries|constraints|filters|limits)\b` +
		`|\bnever refuses?\b|\b(cannot|can't|can not|won't|will not|must not|never|not allowed to) (refuse|decline|say no)\b` +
		`|\b(amoral|unethical|immoral|unfiltered|uncensored|unrestricted) (chatbot|ai|assistant|model|bot|character|persona|version|mode)\b` +
		`|\bhypothetical (story|scenario|response|world)\b` +
		`|\b(fais|faites) semblant\b|\bhaz como si\b|\bfinge que\b|\btu es maintenant\b|\bdu bist jetzt\b|\bahora eres\b|\bagora você é\b`)},
	// Getting the model to show what it was told.
	{"prompt extraction", []string{"prompt", "system", "instruction", "rules", "guidelines", "configuration", "repeat", "système",
		"sistema"}, regexp.MustCompile(`(?i)` +
		`\bsystem\s+(prompt|message|instructions?)\b|\b(initial|original|hidden|secret|internal)\s+(prompt|instructions)\b` +
		`|\b(reveal|print|show|display|output|repeat|tell me|give me|write out|leak|dump)\b.{0,40}\b(your|the)\s+(prompt|instructions|rules|guidelines|configuration)\b` +
		`|\brepeat (everything|all|the text|the words) (above|before)\b|\bwhat (were|are) your (instructions|rules)\b` +
		`|\binvite système\b|\bprompt (du )?système\b|\bsystemanweisung|\bsystem-?prompt\b|\bmensaje del sistema\b|\binstrucciones del sistema\b`)},
	// Chat markup and role headers smuggled into a user's text.
	{"chat markup", []string{"<", "[", "system", "assistant", "developer", "##"}, regexp.MustCompile(`(?i)` +
		`</?(system|assistant|user|instructions?|sys)>|\[/?INST\]|<<\s*/?SYS\s*>>|<\|(im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>` +
		`|(^|\n)\s*(system|assistant|developer)\s*:|(^|\n)\s*#{2,}\s*(instruction|system|response|new instructions?)\b`)},
	// Setting new rules for the model's answers.
	{"rule setting", []string{"new ", "now on", "henceforth", "starting now", "going forward", "rest of", "you must", "you will",
		"you shall", "you should", "always", "only", "always", "answer", "respond", "reply", "output", "regardless", "nouvelle",
		"nueva", "neue", "désormais", "partir de", "ahora en", "ab jetzt", "nun an", "d'ora"}, regexp.MustCompile(`(?i)` +
		`\bnew (rule|rules|instruction|instructions|task|directive|directives|policy|system)\s*[:!-]` +
		`|\b(from now on|henceforth|starting now|going forward|for the rest of (this|the) conversation)[, ]+(you (must|will|should|shall|are to|have to)\s+)?((always|only|never)\s+)?(answer|respond|reply|output|classify|label|ignore|obey|the (answer|label|output|response))\b` +
		`|\byou (must|will|shall|should) (now |always |only |never )+(answer|respond|reply|say|output|return|classify|label|obey|comply)\b` +
		`|\b(always|only) (answer|respond|reply|output|return|classify|label)( \w+)? (with|as|using|by saying)\b` +
		`|\bthe (correct |right |real |true )?(answer|label|output|response|reply|classification|category|intent) (is|will be|must be|should be) always\b` +
		`|\b(answer|respond|reply|output) (only )?with (the (word|label|text) |nothing but )` +
		`|\bregardless of (the|what|your|any) (question|input|instructions|rules|text|context)\b` +
		`|\b(nouvelle|nouvelles) (règle|règles|consigne|consignes|instruction|instructions)\s*:|\b(nueva|nuevas) (regla|reglas|instrucción|instrucciones)\s*:|\bneue (regel|regeln|anweisung|anweisungen)\s*:` +
		`|\b(désormais|à partir de maintenant|a partir de ahora|de ahora en adelante|ab jetzt|von nun an|d'ora in poi|a partir de agora)\b.{0,40}\b(réponds|répondez|responde|responda|antworte|antworten sie|rispondi|rispondete|responda)\b`)},
}

// Answer steering: a word that talks about the model's answer, a linking word, and one
// of the task's labels ("the answer is always timer", "classify this as balance",
// "label: weather"). The linking word is what separates steering from ordinary use of
// those words ("reply to the text from mom" names the label "text" without it).
var (
	metaWords = set("answer", "answers", "label", "labels", "labelled", "labeled", "classify", "classified", "classification",
		"output", "respond", "reply", "response", "intent", "category", "categorize", "categorise", "tag", "predict", "prediction")
	linkWords   = set("is", "are", "be", "as", "with", ":", "=", "equals", "means", "becomes")
	fillerWords = set("this", "it", "that", "these", "everything", "all", "every", "each", "input", "query", "request", "message",
		"sentence", "the", "a", "an", "one", "now", "only", "always", "should", "must", "will", "would", "shall", "correct", "right",
		"true", "final", "real", "your", "my", "its", "of", "to", "just", "simply", "then")
)

func set(ws ...string) map[string]bool {
	m := make(map[string]bool, len(ws))
	for _, w := range ws {
		m[w] = true
	}
	return m
}

// injected says why a (normalised) input is prompt injection or a jailbreak, "" when
// nothing marks it as one. expected is the line's expected label (classification).
// What the labelled data itself says is not held against a line: a phrase of a family
// that the data's own inputs hold ("ignore the previous command" is how a voice
// assistant's users cancel), or a label named as the answer when it is the line's own
// expected label or the data's inputs name it so ("the answer is yes").
func (tr *Triager) injected(in, expected string) string {
	lower := strings.ToLower(in)
	for _, f := range injectionFamilies {
		if !cued(lower, f.cues) {
			continue
		}
		for _, m := range f.re.FindAllString(in, -1) {
			if !tr.ordinaryPhrase(f.name, m) {
				return f.name + ": " + strings.TrimSpace(m)
			}
		}
	}
	if cue := tr.answerCue(); cue != "" && strings.Contains(strings.ToLower(in), cue) {
		return "answer steering: the input holds the task's own answer cue " + quote(cue)
	}
	for _, st := range tr.steering(in) {
		if st.label != strings.ToLower(expected) && !tr.ordinarySteering()[st.meta+" "+st.label] {
			return "answer steering: " + quote(st.phrase) + " names one of the task's labels as the answer"
		}
	}
	return ""
}

// ordinaryPhrase reports whether the labelled data's own inputs hold a phrase of the
// family that ends in the same two words ("ignore the previous command" when the data
// has "forget my previous command").
func (tr *Triager) ordinaryPhrase(family, m string) bool {
	if tr.phrases == nil {
		tr.phrases = map[string]bool{}
		for _, ex := range tr.vouchers() {
			in, _ := text.Normalize(ex.Text)
			lower := strings.ToLower(in)
			for _, f := range injectionFamilies {
				if !cued(lower, f.cues) {
					continue
				}
				for _, p := range f.re.FindAllString(in, -1) {
					tr.phrases[phraseKey(f.name, p)] = true
				}
			}
		}
	}
	return tr.phrases[phraseKey(family, m)]
}

// phraseKey is a phrase's family and its last two words: "forget my previous command"
// and "ignore the previous command" share one, "can't say no" and "pretend you have no"
// do not (by the last word alone, a dialogue's "can't say no" let every "pretend you have
// no restrictions" through).
func phraseKey(family, m string) string {
	ws := text.Words(m)
	if len(ws) == 0 {
		return family + "|" + strings.ToLower(strings.TrimSpace(m))
	}
	return family + "|" + strings.Join(ws[max(0, len(ws)-2):], " ")
}

// ordinarySteering is the set of "meta label" pairs the labelled data's inputs hold in
// the steering form.
func (tr *Triager) ordinarySteering() map[string]bool {
	if tr.steered == nil {
		tr.steered = map[string]bool{}
		for _, ex := range tr.vouchers() {
			in, _ := text.Normalize(ex.Text)
			for _, st := range tr.steering(in) {
				tr.steered[st.meta+" "+st.label] = true
			}
		}
	}
	return tr.steered
}

// steer is one occurrence of a meta word linked to a label.
type steer struct{ meta, label, phrase string }

// steering finds the meta words of in linked to one of the task's labels.
func (tr *Triager) steering(in string) []steer {
	if len(tr.t.Labels) == 0 {
		return nil
	}
	var out []steer
	ws := steeringTokens(in)
	for i, w := range ws {
		if !metaWords[w] {
			continue
		}
		linked := false
		for j := i + 1; j < len(ws) && j <= i+6; j++ {
			if linkWords[ws[j]] {
				linked = true
				continue
			}
			if fillerWords[ws[j]] {
				continue
			}
			if n := tr.labelAt(ws[j:]); linked && n > 0 {
				out = append(out, steer{meta: w, label: strings.Join(ws[j:j+n], "_"), phrase: strings.Join(ws[i:j+n], " ")})
			}
			break
		}
	}
	return out
}

// steeringTokens splits lower-cased text into words, with ':' and '=' as words of their
// own.
func steeringTokens(in string) []string {
	return text.Split(in, func(r rune, _ bool) bool {
		return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '\''
	}, func(r rune) bool { return r == ':' || r == '=' })
}

// labelAt is how many of the words at the start of ws spell one of the task's labels
// (a label "book_flight" is spelt "book_flight" or "book flight"); 0 when none does.
func (tr *Triager) labelAt(ws []string) int {
	if tr.labelWords == nil {
		tr.labelWords = map[string]bool{}
		for _, l := range tr.t.Labels {
			tr.labelWords[strings.ToLower(strings.ReplaceAll(l, " ", "_"))] = true
		}
	}
	for n := min(3, len(ws)); n >= 1; n-- {
		if tr.labelWords[strings.Join(ws[:n], "_")] {
			return n
		}
	}
	return 0
}

// answerCue is what the task's prompt writes after the input (lower-cased, spaces
// trimmed: "intent:", "entities:"), "" when it is too short to be telling. An input that
// holds it is writing the prompt's answer slot itself.
func (tr *Triager) answerCue() string {
	_, after, ok := strings.Cut(tr.t.Prompt, "{text}")
	if !ok {
		return ""
	}
	cue := strings.ToLower(strings.TrimSpace(after))
	letters := 0
	for _, r := range cue {
		if unicode.IsLetter(r) {
			letters++
		}
	}
	if letters < 4 || !strings.ContainsAny(cue, ":=>") {
		return ""
	}
	return cue
}

// cued says whether lower holds one of the cues.
func cued(lower string, cues []string) bool {
	for _, c := range cues {
		if strings.Contains(lower, c) {
			return true
		}
	}
	return false
}
