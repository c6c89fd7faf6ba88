package chat

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// Python str methods. (This file is over 600 lines on purpose: it is one table of the
// str methods chat templates call, each next to the others in the order of Python's
// documentation, so that it can be read against it.) gonja implements most of them, but several of the ones chat
// templates call misbehave in v2.9.1 (split(), strip() and friends without arguments,
// replace without a count, rsplit with maxsplit, center/ljust/rjust without a fill
// character), so this package supplies its own for those and keeps gonja's for the rest.

// gonjaStrMethods are the gonja str methods kept as they are.
var gonjaStrMethods = []string{
	"capitalize", "capwords", "casefold", "encode", "expandtabs", "format", "format_map",
	"isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "islower", "isnumeric",
	"isprintable", "isspace", "istitle", "isupper", "join", "lower", "partition",
	"removeprefix", "removesuffix", "rpartition", "splitlines", "swapcase", "title",
	"upper", "zfill",
}

func strMethods() *exec.MethodSet[string] {
	m := map[string]exec.Method[string]{}
	for _, name := range gonjaStrMethods {
		if f, ok := builtins.Methods.Str.Get(name); ok {
			m[name] = listMethod(f)
		}
	}
	m["split"] = func(s string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		sep, maxsplit, err := splitArgs("split", a)
		if err != nil {
			return nil, err
		}
		return toList(pySplit(s, sep, maxsplit)), nil
	}
	m["rsplit"] = func(s string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		sep, maxsplit, err := splitArgs("rsplit", a)
		if err != nil {
			return nil, err
		}
		return toList(pyRSplit(s, sep, maxsplit)), nil
	}
	strip := func(name string, left, right bool) exec.Method[string] {
		return func(s string, _ *exec.Value, a *exec.VarArgs) (any, error) {
			chars, err := optionalString(name, "chars", a)
			if err != nil {
				return nil, err
			}
			return pyStrip(s, chars, left, right), nil
		}
	}
	m["strip"] = strip("strip", true, true)
	m["lstrip"] = strip("lstrip", true, false)
	m["rstrip"] = strip("rstrip", false, true)
	m["replace"] = func(s string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		var old, new string
		count := -1
		if err := a.Take(
			exec.PositionalArgument("old", nil, exec.StringArgument(&old)),
			exec.PositionalArgument("new", nil, exec.StringArgument(&new)),
			exec.PositionalArgument("count", exec.AsValue(-1), exec.IntArgument(&count)),
		); err != nil {
			return nil, exec.ErrInvalidCall(err)
		}
		return strings.Replace(s, old, new, count), nil
	}
	affix := func(name string, match func(s, affix string) bool) exec.Method[string] {
		return func(s string, _ *exec.Value, a *exec.VarArgs) (any, error) {
			if len(a.Args) < 1 || len(a.Args) > 3 || len(a.KwArgs) > 0 {
				return nil, exec.ErrInvalidCall(fmt.Errorf("%s takes 1 to 3 positional arguments", name))
			}
			sub, err := substr(s, a.Args[1:])
			if err != nil {
				return nil, exec.ErrInvalidCall(fmt.Errorf("%s: %w", name, err))
			}
			want := a.Args[0]
			if want.IsString() {
				return match(sub, want.String()), nil
			}
			if !want.IsList() {
				return nil, exec.ErrInvalidCall(fmt.Errorf("%s first arg must be str or a tuple of str", name))
			}
			for i := 0; i < want.Len(); i++ {
				if match(sub, want.Index(i).String()) {
					return true, nil
				}
			}
			return false, nil
		}
	}
	m["startswith"] = affix("startswith", strings.HasPrefix)
	m["endswith"] = affix("endswith", strings.HasSuffix)
	search := func(name string, last, raise bool) exec.Method[string] {
		return func(s string, _ *exec.Value, a *exec.VarArgs) (any, error) {
			if len(a.Args) < 1 || len(a.Args) > 3 || len(a.KwArgs) > 0 || !a.Args[0].IsString() {
				return nil, exec.ErrInvalidCall(fmt.Errorf("%s takes a string and optional start and end", name))
			}
			start, end, err := bounds(s, a.Args[1:])
			if err != nil {
				return nil, exec.ErrInvalidCall(fmt.Errorf("%s: %w", name, err))
			}
			r := []rune(s)
			sub := string(r[start:end])
			var i int
			if last {
				i = strings.LastIndex(sub, a.Args[0].String())
			} else {
				i = strings.Index(sub, a.Args[0].String())
			}
			if i < 0 {
				if raise {
					return nil, errors.New("substring not found")
				}
				return -1, nil
			}
			return start + utf8.RuneCountInString(sub[:i]), nil
		}
	}
	m["find"] = search("find", false, false)
	m["rfind"] = search("rfind", true, false)
	m["index"] = search("index", false, true)
	m["rindex"] = search("rindex", true, true)
	m["count"] = func(s string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		if len(a.Args) < 1 || len(a.Args) > 3 || len(a.KwArgs) > 0 || !a.Args[0].IsString() {
			return nil, exec.ErrInvalidCall(errors.New("count takes a string and optional start and end"))
		}
		sub, err := substr(s, a.Args[1:])
		if err != nil {
			return nil, exec.ErrInvalidCall(fmt.Errorf("count: %w", err))
		}
		return strings.Count(sub, a.Args[0].String()), nil
	}
	pad := func(name string, where int) exec.Method[string] {
		return func(s string, _ *exec.Value, a *exec.VarArgs) (any, error) {
			width := 0
			fill := " "
			if err := a.Take(
				exec.PositionalArgument("width", nil, exec.IntArgument(&width)),
				exec.PositionalArgument("fillchar", exec.AsValue(" "), exec.StringArgument(&fill)),
			); err != nil {
				return nil, exec.ErrInvalidCall(err)
			}
			if utf8.RuneCountInString(fill) != 1 {
				return nil, exec.ErrInvalidCall(fmt.Errorf("%s: the fill character must be exactly one character long", name))
			}
			n := width - utf8.RuneCountInString(s)
			if n <= 0 {
				return s, nil
			}
			switch where {
			case -1: // ljust
				return s + strings.Repeat(fill, n), nil
			case 1: // rjust
				return strings.Repeat(fill, n) + s, nil
			}
			// center, as CPython: the extra character goes left when n and width are odd
			left := n/2 + (n & width & 1)
			return strings.Repeat(fill, left) + s + strings.Repeat(fill, n-left), nil
		}
	}
	m["ljust"] = pad("ljust", -1)
	m["rjust"] = pad("rjust", 1)
	m["center"] = pad("center", 0)
	return exec.NewMethodSet(m)
}

// splitArgs reads split's (sep=None, maxsplit=-1).
func splitArgs(name string, a *exec.VarArgs) (sep *string, maxsplit int, err error) {
	maxsplit = -1
	vals := map[string]*exec.Value{}
	names := []string{"sep", "maxsplit"}
	if len(a.Args) > 2 {
		return nil, 0, exec.ErrInvalidCall(fmt.Errorf("%s takes at most 2 arguments", name))
	}
	for i, v := range a.Args {
		vals[names[i]] = v
	}
	for k, v := range a.KwArgs {
		if k != "sep" && k != "maxsplit" {
			return nil, 0, exec.ErrInvalidCall(fmt.Errorf("%s got an unexpected keyword argument %q", name, k))
		}
		vals[k] = v
	}
	if v, ok := vals["sep"]; ok && !v.IsNil() {
		if !v.IsString() {
			return nil, 0, exec.ErrInvalidCall(fmt.Errorf("%s: sep must be a string or None", name))
		}
		s := v.String()
		if s == "" {
			return nil, 0, errors.New("empty separator")
		}
		sep = &s
	}
	if v, ok := vals["maxsplit"]; ok {
		if !v.IsInteger() {
			return nil, 0, exec.ErrInvalidCall(fmt.Errorf("%s: maxsplit must be an integer", name))
		}
		maxsplit = v.Integer()
	}
	return sep, maxsplit, nil
}

// optionalString reads a single optional argument that may be None.
func optionalString(name, arg string, a *exec.VarArgs) (*string, error) {
	var v *exec.Value
	switch {
	case len(a.Args) == 1 && len(a.KwArgs) == 0:
		v = a.Args[0]
	case len(a.Args) == 0 && len(a.KwArgs) == 1 && a.KwArgs[arg] != nil:
		v = a.KwArgs[arg]
	case len(a.Args) == 0 && len(a.KwArgs) == 0:
		return nil, nil
	default:
		return nil, exec.ErrInvalidCall(fmt.Errorf("%s takes at most one argument", name))
	}
	if v.IsNil() {
		return nil, nil
	}
	if !v.IsString() {
		return nil, exec.ErrInvalidCall(fmt.Errorf("%s arg must be None or str", name))
	}
	s := v.String()
	return &s, nil
}

// bounds resolves optional Python start/end arguments to rune offsets.
func bounds(s string, args []*exec.Value) (int, int, error) {
	n := utf8.RuneCountInString(s)
	start, end := 0, n
	idx := func(v *exec.Value, dflt int) (int, error) {
		if v.IsNil() {
			return dflt, nil
		}
		if !v.IsInteger() {
			return 0, errors.New("slice indices must be integers or None")
		}
		i := v.Integer()
		if i < 0 {
			i += n
		}
		return min(max(i, 0), n), nil
	}
	var err error
	if len(args) > 0 {
		if start, err = idx(args[0], 0); err != nil {
			return 0, 0, err
		}
	}
	if len(args) > 1 {
		if end, err = idx(args[1], n); err != nil {
			return 0, 0, err
		}
	}
	if end < start {
		end = start
	}
	return start, end, nil
}

func substr(s string, args []*exec.Value) (string, error) {
	start, end, err := bounds(s, args)
	if err != nil {
		return "", err
	}
	if start == 0 && end == utf8.RuneCountInString(s) {
		return s, nil
	}
	return string([]rune(s)[start:end]), nil
}

// isPySpace is Python's str.isspace for one character.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func pyStrip(s string, chars *string, left, right bool) string {
	cut := isPySpace
	if chars != nil {
		set := *chars
		cut = func(r rune) bool { return strings.ContainsRune(set, r) }
	}
	if left {
		s = strings.TrimLeftFunc(s, cut)
	}
	if right {
		s = strings.TrimRightFunc(s, cut)
	}
	return s
}

// pySplit is Python's str.split.
func pySplit(s string, sep *string, maxsplit int) []string {
	if sep != nil {
		if maxsplit < 0 {
			return strings.Split(s, *sep)
		}
		return strings.SplitN(s, *sep, maxsplit+1)
	}
	// Runs of whitespace separate; leading and trailing whitespace is ignored, except
	// that the remainder after maxsplit splits keeps its trailing whitespace.
	out := []string{}
	rest := strings.TrimLeftFunc(s, isPySpace)
	for rest != "" {
		if maxsplit >= 0 && len(out) == maxsplit {
			out = append(out, rest)
			break
		}
		i := strings.IndexFunc(rest, isPySpace)
		if i < 0 {
			out = append(out, rest)
			break
		}
		out = append(out, rest[:i])
		rest = strings.TrimLeftFunc(rest[i:], isPySpace)
	}
	return out
}

// pyRSplit is Python's str.rsplit.
func pyRSplit(s string, sep *string, maxsplit int) []string {
	if maxsplit < 0 {
		return pySplit(s, sep, -1)
	}
	var out []string
	if sep != nil {
		for len(out) < maxsplit {
			i := strings.LastIndex(s, *sep)
			if i < 0 {
				break
			}
			out = append(out, s[i+len(*sep):])
			s = s[:i]
		}
		out = append(out, s)
	} else {
		rest := strings.TrimRightFunc(s, isPySpace)
		for rest != "" {
			if len(out) == maxsplit {
				out = append(out, rest)
				break
			}
			i := strings.LastIndexFunc(rest, isPySpace)
			if i < 0 {
				out = append(out, rest)
				break
			}
			_, w := utf8.DecodeRuneInString(rest[i:])
			out = append(out, rest[i+w:])
			rest = strings.TrimRightFunc(rest[:i], isPySpace)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// --- tuples ------------------------------------------------------------------------------

// pyTuple is a Python tuple: a list that prints as ('a', 1).
type pyTuple []any

func (t pyTuple) String() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, x := range t {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pyRepr(exec.ToValue(x)))
	}
	if len(t) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// pyRepr is Python's repr for the values a template handles.
func pyRepr(v *exec.Value) string {
	switch {
	case v.IsNil():
		return "None"
	case v.IsString():
		s := v.String()
		q := "'"
		if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
			q = `"`
		}
		var b strings.Builder
		b.WriteString(q)
		for _, r := range s {
			switch {
			case r == '\\':
				b.WriteString(`\\`)
			case string(r) == q:
				b.WriteString(`\` + q)
			case r == '\n':
				b.WriteString(`\n`)
			case r == '\r':
				b.WriteString(`\r`)
			case r == '\t':
				b.WriteString(`\t`)
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&b, `\x%02x`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteString(q)
		return b.String()
	case v.IsFloat():
		f := v.Float()
		switch {
		case math.IsNaN(f):
			return "nan"
		case math.IsInf(f, 1):
			return "inf"
		case math.IsInf(f, -1):
			return "-inf"
		}
		return pyFloatRepr(f)
	}
	return v.String()
}

// --- filters that differ ----------------------------------------------------------------

// filterReverse is Jinja's reverse: a string reversed, or the items of a sequence in
// reverse order (gonja's sorts them as well).
func filterReverse(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if err := params.Take(); err != nil {
		return exec.AsValue(exec.ErrInvalidCall(err))
	}
	if in.IsString() {
		r := []rune(in.String())
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return exec.AsValue(string(r))
	}
	out := pyList{}
	switch {
	case in.IsDict():
		for _, p := range pairs(in) {
			out = append(out, p.Key.Interface())
		}
	case in.IsList():
		for i := 0; i < in.Len(); i++ {
			out = append(out, in.Index(i).Interface())
		}
	default:
		return exec.AsValue(fmt.Errorf("reverse: %s is not reversible", in.String()))
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return exec.AsValue(out)
}

// filterRound is Jinja's round(precision=0, method='common'): Python's round (half to
// even on the exact binary value) for 'common', always a float.
func filterRound(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	precision := 0
	method := "common"
	if err := params.Take(
		exec.KeywordArgument("precision", exec.AsValue(0), exec.IntArgument(&precision)),
		exec.KeywordArgument("method", exec.AsValue("common"), exec.StringArgument(&method)),
	); err != nil {
		return exec.AsValue(exec.ErrInvalidCall(err))
	}
	if !in.IsNumber() && !in.IsBool() {
		return exec.AsValue(fmt.Errorf("round: %s is not a number", in.String()))
	}
	f := in.Float()
	if in.IsBool() && in.Bool() {
		f = 1
	}
	scale := math.Pow(10, float64(precision))
	switch method {
	case "common":
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return exec.AsValue(f)
		}
		if precision >= 0 {
			r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', precision, 64), 64)
			return exec.AsValue(r)
		}
		return exec.AsValue(math.RoundToEven(f*scale) / scale)
	case "floor":
		return exec.AsValue(math.Floor(f*scale) / scale)
	case "ceil":
		return exec.AsValue(math.Ceil(f*scale) / scale)
	}
	return exec.AsValue(errors.New("round: method must be 'common', 'ceil' or 'floor'"))
}

// filterDictSort is Jinja's dictsort(case_sensitive=False, by='key', reverse=False): the
// (key, value) pairs of a dict, sorted.
func filterDictSort(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	caseSensitive, reverse := false, false
	by := "key"
	if err := params.Take(
		exec.KeywordArgument("case_sensitive", exec.AsValue(false), exec.BoolArgument(&caseSensitive)),
		exec.KeywordArgument("by", exec.AsValue("key"), exec.StringArgument(&by)),
		exec.KeywordArgument("reverse", exec.AsValue(false), exec.BoolArgument(&reverse)),
	); err != nil {
		return exec.AsValue(exec.ErrInvalidCall(err))
	}
	if !in.IsDict() {
		return exec.AsValue(errors.New("dictsort: want a mapping"))
	}
	if by != "key" && by != "value" {
		return exec.AsValue(errors.New("dictsort: by must be 'key' or 'value'"))
	}
	ps := append([]*exec.Pair(nil), pairs(in)...)
	sortKey := func(p *exec.Pair) *exec.Value {
		v := p.Key
		if by == "value" {
			v = exec.ToValue(p.Value)
		}
		if !caseSensitive && v.IsString() {
			return exec.AsValue(strings.ToLower(v.String()))
		}
		return v
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := sortKey(ps[i]), sortKey(ps[j])
		if reverse {
			a, b = b, a
		}
		return exec.ValuesList{a, b}.Less(0, 1)
	})
	out := make(pyList, len(ps))
	for i, p := range ps {
		out[i] = pyTuple{p.Key.Interface(), p.Value.Interface()}
	}
	return exec.AsValue(out)
}

// --- lists ---------------------------------------------------------------------------

// pyList is a Python list. gonja v2.9.1 resolves x[-n] wrongly when n equals the length
// (so messages[-1] of a one-message conversation is undefined); pyList does its own
// indexing. Lists from the caller, from JSON, and from this package's filters and
// methods and the list-making gonja filters are pyLists.
type pyList []any

// GetItem implements exec.ItemGetter: Python indexing, undefined (nil) out of range.
func (l pyList) GetItem(key any) (*exec.Value, bool) {
	i, ok := key.(int)
	if !ok {
		return exec.AsValue(nil), false
	}
	if i < 0 {
		i += len(l)
	}
	if i < 0 || i >= len(l) {
		return exec.AsValue(nil), false
	}
	return exec.ToValue(l[i]), true
}

// toPyList converts a list value to a pyList (anything else is returned as it is).
func toPyList(v *exec.Value) *exec.Value {
	if v.IsError() || !v.IsList() {
		return v
	}
	switch v.Interface().(type) {
	case pyList, pyTuple, []byte:
		return v
	}
	n := v.Len()
	out := make(pyList, n)
	for i := range n {
		out[i] = v.Index(i).Interface()
	}
	return exec.AsValue(out)
}

// listFilter wraps a gonja filter so that a list it returns is a pyList.
func listFilter(f exec.FilterFunction) exec.FilterFunction {
	return func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		return toPyList(f(e, in, params))
	}
}

// listMethod wraps a gonja str method so that a list it returns is a pyList.
func listMethod(m exec.Method[string]) exec.Method[string] {
	return func(s string, self *exec.Value, a *exec.VarArgs) (any, error) {
		r, err := m(s, self, a)
		if err != nil {
			return r, err
		}
		return toPyList(exec.AsValue(r)).Interface(), nil
	}
}

func toList(ss []string) pyList {
	out := make(pyList, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
