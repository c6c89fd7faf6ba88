package chat

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// rootName is the loader path of the template; nothing else can be included.
const rootName = "/chat_template"

var (
	envOnce sync.Once
	envCfg  *config.Config
	env     *exec.Environment
	envErr  error // the first failure while building the environment
)

// environment builds, once, the Jinja environment transformers uses for chat templates:
// trim_blocks and lstrip_blocks on, gonja's builtins, and this package's replacements
// for the builtins that behave differently from Python (see the package comment). The
// gonja default sets are copied, never modified.
func environment() (*config.Config, *exec.Environment, error) {
	envOnce.Do(func() {
		c := config.New()
		c.TrimBlocks = true
		c.LeftStripBlocks = true
		c.KeepTrailingNewline = false
		c.AutoEscape = false

		filters := exec.NewFilterSet(map[string]exec.FilterFunction{})
		filters.Update(builtins.Filters)
		must(filters.Replace("tojson", filterToJSON))
		must(filters.Replace("items", filterItems))
		must(filters.Replace("reverse", filterReverse))
		must(filters.Replace("round", filterRound))
		must(filters.Replace("dictsort", filterDictSort))
		for _, name := range []string{"batch", "list", "map", "reject", "rejectattr", "select", "selectattr", "slice", "sort", "unique"} {
			f, ok := builtins.Filters.Get(name)
			if !ok {
				must(fmt.Errorf("gonja has no %s filter", name))
				continue
			}
			must(filters.Replace(name, listFilter(f)))
		}

		tests := exec.NewTestSet(map[string]exec.TestFunction{})
		tests.Update(builtins.Tests)
		must(tests.Replace("true", testTrue))
		must(tests.Replace("false", testFalse))
		must(tests.Replace("boolean", testBoolean))
		must(tests.Replace("sequence", testSequence))
		must(tests.Replace("number", testNumber))

		controls := exec.NewControlStructureSet(map[string]parser.ControlStructureParser{})
		controls.Update(builtins.ControlStructures)
		must(controls.Register("generation", generationParser))

		methods := builtins.Methods
		methods.Dict = dictMethods()
		methods.List = listMethods()
		methods.Str = strMethods()

		ctx := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
		ctx.Set("strftime_now", strftimeNow)
		ctx.Set("range", pyRange)

		envCfg = c
		env = &exec.Environment{
			Context:           ctx,
			Filters:           filters,
			Tests:             tests,
			ControlStructures: controls,
			Methods:           methods,
		}
	})
	return envCfg, env, envErr
}

// must records the first error of the environment's set-up (a gonja version without a
// builtin this package replaces, say); compile then reports it.
func must(err error) {
	if err != nil && envErr == nil {
		envErr = fmt.Errorf("chat: setting up the template environment: %w", err)
	}
}

// compile parses a template source.
func compile(src string) (*exec.Template, error) {
	c, e, err := environment()
	if err != nil {
		return nil, err
	}
	loader, err := loaders.NewMemoryLoader(map[string]string{rootName: prepareSource(src)})
	if err != nil {
		return nil, err
	}
	tpl, err := exec.NewTemplate(rootName, c, loader, e)
	if err != nil {
		// gonja wraps the parser error in a message that repeats the whole source.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return nil, fmt.Errorf("template syntax error: %w", err)
	}
	return tpl, nil
}

// execute renders the template with the given variables, turning a raise_exception
// call into a *TemplateError and an engine panic into an error.
func (t *Template) execute(vars map[string]any) (out string, err error) {
	var raised *TemplateError
	vars["raise_exception"] = func(args *exec.VarArgs) (any, error) {
		msg := ""
		if len(args.Args) > 0 {
			msg = args.Args[0].String()
		}
		raised = &TemplateError{Message: msg}
		return nil, raised
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("chat: template engine panicked: %v", r)
		}
	}()
	out, err = t.tpl.ExecuteToString(exec.NewContext(vars))
	if err != nil {
		if raised != nil {
			return "", raised
		}
		return "", fmt.Errorf("chat: rendering template: %w", trimErrorPrefix(err))
	}
	return out, nil
}

// strftimeNow is transformers' strftime_now(format) global: the local time formatted
// with Python strftime directives.
func strftimeNow(args *exec.VarArgs) (string, error) {
	if len(args.Args) != 1 || !args.Args[0].IsString() {
		return "", errors.New("strftime_now takes one string argument")
	}
	return strftime(time.Now(), args.Args[0].String())
}

// maxRange is the sandbox's limit on range() lengths (jinja2.sandbox.MAX_RANGE).
const maxRange = 100000

// pyRange is Python's range(stop) / range(start, stop[, step]) as a list. gonja's
// produces the numbers from a goroutine that stays blocked, leaked, when the range is
// not iterated to the end.
func pyRange(args *exec.VarArgs) (pyList, error) {
	if len(args.KwArgs) > 0 {
		return nil, errors.New("range() takes no keyword arguments")
	}
	n := make([]int, len(args.Args))
	for i, a := range args.Args {
		if !a.IsInteger() {
			return nil, fmt.Errorf("range() argument %d is not an integer: %s", i+1, a.String())
		}
		n[i] = a.Integer()
	}
	start, stop, step := 0, 0, 1
	switch len(n) {
	case 1:
		stop = n[0]
	case 2:
		start, stop = n[0], n[1]
	case 3:
		start, stop, step = n[0], n[1], n[2]
	default:
		return nil, fmt.Errorf("range expected 1 to 3 arguments, got %d", len(n))
	}
	if step == 0 {
		return nil, errors.New("range() arg 3 must not be zero")
	}
	count := 0
	if step > 0 && stop > start {
		count = (stop - start + step - 1) / step
	} else if step < 0 && stop < start {
		count = (start - stop - step - 1) / -step
	}
	if count > maxRange {
		return nil, fmt.Errorf("range too big: the sandbox blocks ranges larger than %d", maxRange)
	}
	out := make(pyList, count)
	for i := range out {
		out[i] = start + i*step
	}
	return out, nil
}

// --- tests ------------------------------------------------------------------------

// Python's "x is true"/"x is false" are identity checks against the booleans; gonja's
// versions answer true for "None is false".
func testTrue(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
	return in.IsBool() && in.Bool(), nil
}

func testFalse(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
	return in.IsBool() && !in.Bool(), nil
}

func testBoolean(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
	return in.IsBool(), nil
}

// In Jinja anything with a length and items is a sequence: strings and dicts too.
func testSequence(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
	return in.IsList() || in.IsString() || in.IsDict(), nil
}

// Python bools are numbers.
func testNumber(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) {
	return in.IsNumber() || in.IsBool(), nil
}

// --- the {% generation %} block -----------------------------------------------------

// generationBlock is transformers' {% generation %}...{% endgeneration %} tag, which
// marks assistant text for return_assistant_tokens_mask; for rendering it is just its
// body.
type generationBlock struct {
	location *tokens.Token
	body     *nodes.Wrapper
}

func (g *generationBlock) Position() *tokens.Token { return g.location }

func (g *generationBlock) String() string {
	return fmt.Sprintf("generation(Line=%d Col=%d)", g.location.Line, g.location.Col)
}

func (g *generationBlock) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	return r.ExecuteWrapper(g.body)
}

func generationParser(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	g := &generationBlock{location: p.Current()}
	if !args.End() {
		return nil, args.Error("generation takes no arguments", args.Current())
	}
	body, end, err := p.WrapUntil("endgeneration")
	if err != nil {
		return nil, err
	}
	if !end.End() {
		return nil, end.Error("endgeneration takes no arguments", end.Current())
	}
	g.body = body
	return g, nil
}

// --- dict and list methods -------------------------------------------------------------

// pairs returns a dict's entries: in insertion order for an ordered dict (JSON decoded
// by this package, or a dict literal in the template), sorted by key for a Go map.
func pairs(v *exec.Value) []*exec.Pair {
	if d := asDict(v); d != nil {
		return d.Pairs
	}
	var out []*exec.Pair
	rv := reflect.ValueOf(v.Interface())
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Map {
		return nil
	}
	for _, k := range rv.MapKeys() {
		out = append(out, &exec.Pair{Key: exec.ToValue(k), Value: exec.ToValue(rv.MapIndex(k))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

// asDict returns the ordered dict behind v, or nil.
func asDict(v *exec.Value) *exec.Dict {
	switch d := v.Interface().(type) {
	case *exec.Dict:
		return d
	case exec.Dict:
		return &d
	}
	return nil
}

// dictMethods are the non-mutating Python dict methods, keeping insertion order. The
// mutating ones (update, pop, setdefault, clear) are absent: transformers' sandbox is
// immutable and refuses them too.
func dictMethods() *exec.MethodSet[map[string]any] {
	noArgs := func(args *exec.VarArgs) error {
		if err := args.Take(); err != nil {
			return exec.ErrInvalidCall(err)
		}
		return nil
	}
	return exec.NewMethodSet(map[string]exec.Method[map[string]any]{
		"keys": func(_ map[string]any, self *exec.Value, args *exec.VarArgs) (any, error) {
			if err := noArgs(args); err != nil {
				return nil, err
			}
			out := pyList{}
			for _, p := range pairs(self) {
				out = append(out, p.Key.Interface())
			}
			return out, nil
		},
		"values": func(_ map[string]any, self *exec.Value, args *exec.VarArgs) (any, error) {
			if err := noArgs(args); err != nil {
				return nil, err
			}
			out := pyList{}
			for _, p := range pairs(self) {
				out = append(out, p.Value.Interface())
			}
			return out, nil
		},
		"items": func(_ map[string]any, self *exec.Value, args *exec.VarArgs) (any, error) {
			if err := noArgs(args); err != nil {
				return nil, err
			}
			out := pyList{}
			for _, p := range pairs(self) {
				out = append(out, pyTuple{p.Key.Interface(), p.Value.Interface()})
			}
			return out, nil
		},
		"get": func(_ map[string]any, self *exec.Value, args *exec.VarArgs) (any, error) {
			if len(args.Args) < 1 || len(args.Args) > 2 || len(args.KwArgs) > 0 {
				return nil, exec.ErrInvalidCall(errors.New("get() takes 1 or 2 positional arguments"))
			}
			for _, p := range pairs(self) {
				if p.Key.EqualValueTo(args.Args[0]) {
					return p.Value.Interface(), nil
				}
			}
			if len(args.Args) == 2 {
				return args.Args[1].Interface(), nil
			}
			return nil, nil
		},
		"copy": func(_ map[string]any, self *exec.Value, args *exec.VarArgs) (any, error) {
			if err := noArgs(args); err != nil {
				return nil, err
			}
			return &exec.Dict{Pairs: append([]*exec.Pair(nil), pairs(self)...)}, nil
		},
	})
}

// listMethods are the non-mutating Python list methods (the sandbox refuses append,
// reverse, sort, ...).
func listMethods() *exec.MethodSet[[]any] {
	return exec.NewMethodSet(map[string]exec.Method[[]any]{
		"copy": func(self []any, _ *exec.Value, args *exec.VarArgs) (any, error) {
			if err := args.Take(); err != nil {
				return nil, exec.ErrInvalidCall(err)
			}
			return append(pyList{}, self...), nil
		},
		"count": func(self []any, _ *exec.Value, args *exec.VarArgs) (any, error) {
			if len(args.Args) != 1 || len(args.KwArgs) > 0 {
				return nil, exec.ErrInvalidCall(errors.New("count() takes exactly one argument"))
			}
			n := 0
			for _, x := range self {
				if exec.ToValue(x).EqualValueTo(args.Args[0]) {
					n++
				}
			}
			return n, nil
		},
		"index": func(self []any, _ *exec.Value, args *exec.VarArgs) (any, error) {
			if len(args.Args) != 1 || len(args.KwArgs) > 0 {
				return nil, exec.ErrInvalidCall(errors.New("index() takes exactly one argument"))
			}
			for i, x := range self {
				if exec.ToValue(x).EqualValueTo(args.Args[0]) {
					return i, nil
				}
			}
			return nil, fmt.Errorf("%s is not in list", args.Args[0].String())
		},
	})
}

// --- filters -------------------------------------------------------------------------

// filterItems is Jinja's items filter: the (key, value) pairs of a dict, in order.
func filterItems(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if err := params.Take(); err != nil {
		return exec.AsValue(exec.ErrInvalidCall(err))
	}
	if in.IsNil() {
		return exec.AsValue(pyList{})
	}
	if !in.IsDict() {
		return exec.AsValue(errors.New("items filter: want a mapping, got " + in.String()))
	}
	out := pyList{}
	for _, p := range pairs(in) {
		out = append(out, pyTuple{p.Key.Interface(), p.Value.Interface()})
	}
	return exec.AsValue(out)
}

// filterToJSON is transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False), which unlike Jinja's own does not HTML-escape.
func filterToJSON(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	o := jsonOptions{}
	names := []string{"ensure_ascii", "indent", "separators", "sort_keys"}
	if len(params.Args) > len(names) {
		return exec.AsValue(exec.ErrInvalidCall(errors.New("tojson takes at most 4 arguments")))
	}
	args := map[string]*exec.Value{}
	for i, a := range params.Args {
		args[names[i]] = a
	}
	for k, v := range params.KwArgs {
		if _, dup := args[k]; dup {
			return exec.AsValue(exec.ErrInvalidCall(fmt.Errorf("tojson got multiple values for %s", k)))
		}
		args[k] = v
	}
	for k, v := range args {
		switch k {
		case "ensure_ascii":
			o.ensureASCII = v.IsTrue()
		case "sort_keys":
			o.sortKeys = v.IsTrue()
		case "indent":
			switch {
			case v.IsNil():
			case v.IsInteger():
				o.indent, o.hasIndent = strings.Repeat(" ", max(0, v.Integer())), true
			case v.IsString():
				o.indent, o.hasIndent = v.String(), true
			default:
				return exec.AsValue(exec.ErrInvalidCall(errors.New("tojson: indent must be an integer or a string")))
			}
		case "separators":
			if v.IsNil() {
				break
			}
			if !v.IsList() || v.Len() != 2 {
				return exec.AsValue(exec.ErrInvalidCall(errors.New("tojson: separators must be a pair of strings")))
			}
			o.itemSep, o.keySep, o.hasSeps = v.Index(0).String(), v.Index(1).String(), true
		default:
			return exec.AsValue(exec.ErrInvalidCall(fmt.Errorf("tojson got an unexpected keyword argument %q", k)))
		}
	}
	s, err := pyJSON(in, o)
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsSafeValue(s)
}
