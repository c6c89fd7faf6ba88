package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// jsonOptions are the json.dumps arguments transformers' tojson filter exposes.
type jsonOptions struct {
	ensureASCII     bool
	sortKeys        bool
	indent          string
	hasIndent       bool
	itemSep, keySep string // the separators argument, when hasSeps
	hasSeps         bool

	itemSepResolved, keySepResolved string // what pyJSON writes
}

// pyJSON serializes a template value the way Python's json.dumps does: ", " and ": "
// separators ("," and ": " with an indent), floats as Python's repr, strings escaped as
// Python escapes them, ordered dicts in order and Go maps by sorted key.
func pyJSON(v *exec.Value, o jsonOptions) (string, error) {
	o.itemSepResolved, o.keySepResolved = ", ", ": "
	if o.hasIndent {
		o.itemSepResolved = ","
	}
	if o.hasSeps {
		o.itemSepResolved, o.keySepResolved = o.itemSep, o.keySep
	}
	var b strings.Builder
	if err := writeJSON(&b, v, &o, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeJSON(b *strings.Builder, v *exec.Value, o *jsonOptions, level int) error {
	if level > 200 {
		return errors.New("tojson: value nested too deeply (circular?)")
	}
	if v.IsError() {
		return errors.New(v.Error())
	}
	switch {
	case v.IsNil():
		b.WriteString("null")
		return nil
	case v.IsBool():
		if v.Bool() {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
		return nil
	case v.IsInteger():
		b.WriteString(v.String())
		return nil
	case v.IsFloat():
		b.WriteString(pyFloatJSON(v.Float()))
		return nil
	case v.IsString():
		writeJSONString(b, v.String(), o.ensureASCII)
		return nil
	case v.IsDict():
		ps := pairs(v)
		if o.sortKeys {
			ps = append([]*exec.Pair(nil), ps...)
			sort.SliceStable(ps, func(i, j int) bool { return ps[i].Key.String() < ps[j].Key.String() })
		}
		if len(ps) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteByte('{')
		for i, p := range ps {
			if i > 0 {
				b.WriteString(o.itemSepResolved)
			}
			newline(b, o, level+1)
			key, err := jsonKey(p.Key)
			if err != nil {
				return err
			}
			writeJSONString(b, key, o.ensureASCII)
			b.WriteString(o.keySepResolved)
			if err := writeJSON(b, exec.ToValue(p.Value), o, level+1); err != nil {
				return err
			}
		}
		newline(b, o, level)
		b.WriteByte('}')
		return nil
	case v.IsList():
		n := v.Len()
		if n == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(o.itemSepResolved)
			}
			newline(b, o, level+1)
			if err := writeJSON(b, exec.ToValue(v.Index(i)), o, level+1); err != nil {
				return err
			}
		}
		newline(b, o, level)
		b.WriteByte(']')
		return nil
	}
	return fmt.Errorf("tojson: object of type %T is not JSON serializable", v.Interface())
}

func newline(b *strings.Builder, o *jsonOptions, level int) {
	if !o.hasIndent {
		return
	}
	b.WriteByte('\n')
	for range level {
		b.WriteString(o.indent)
	}
}

// jsonKey converts a dict key as json.dumps does: strings as they are, numbers, bools
// and None to their JSON text.
func jsonKey(k *exec.Value) (string, error) {
	switch {
	case k.IsString():
		return k.String(), nil
	case k.IsNil():
		return "null", nil
	case k.IsBool():
		if k.Bool() {
			return "true", nil
		}
		return "false", nil
	case k.IsInteger():
		return k.String(), nil
	case k.IsFloat():
		return pyFloatJSON(k.Float()), nil
	}
	return "", fmt.Errorf("tojson: keys must be str, int, float, bool or None, not %T", k.Interface())
}

// pyFloatJSON formats a float as Python's json.dumps does (float.__repr__, with NaN and
// Infinity spelled out).
func pyFloatJSON(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return pyFloatRepr(f)
}

// pyFloatRepr is Python's repr(float): the shortest digits that round-trip, in
// positional notation when the decimal exponent is in [-4, 16), else d.ddde±XX.
func pyFloatRepr(f float64) string {
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // e.g. -1.2345e+06
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	mant, expText, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
	}
	point := exp + 1 // digits before the decimal point
	var out string
	switch {
	case point <= 0:
		out = "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		out = digits + strings.Repeat("0", point-len(digits)) + ".0"
	default:
		out = digits[:point] + "." + digits[point:]
	}
	return sign + out
}

// writeJSONString writes s as a JSON string literal the way Python's json module does.
func writeJSONString(b *strings.Builder, s string, ensureASCII bool) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || (ensureASCII && r > 0x7e):
				if r > 0xffff {
					r -= 0x10000
					fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
				} else {
					fmt.Fprintf(b, `\u%04x`, r)
				}
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// --- Go values in, template values out -------------------------------------------------

// normalize converts a caller's value into what templates see: json.RawMessage is
// decoded with object key order kept (as ordered dicts), json.Number becomes an int or
// a float, maps with string keys and slices are converted element by element, and any
// other type (structs) goes through encoding/json and back, keeping field order (a
// float field holding a whole number then reads as an int: 2, not Python's 2.0).
func normalize(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return x, nil
	case json.RawMessage:
		return decodeOrdered(x)
	case json.Number:
		return numberValue(x), nil
	case *exec.Dict, *exec.Value, pyList:
		return x, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		if rv.Elem().Kind() != reflect.Struct {
			return normalize(rv.Elem().Interface())
		}
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint(), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, nil
		}
		out := make(pyList, rv.Len())
		for i := range out {
			e, err := normalize(rv.Index(i).Interface())
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map keys must be strings, got %s", rv.Type())
		}
		if rv.IsNil() {
			return nil, nil
		}
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			e, err := normalize(iter.Value().Interface())
			if err != nil {
				return nil, err
			}
			out[iter.Key().String()] = e
		}
		return out, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeOrdered(data)
}

// decodeOrdered decodes JSON text into template values, objects as ordered dicts.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := &exec.Dict{Pairs: []*exec.Pair{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", kt)
				}
				val, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				// A repeated key keeps its first position and takes the last value, as
				// Python's json.loads does.
				replaced := false
				for _, p := range d.Pairs {
					if p.Key.String() == key {
						p.Value, replaced = exec.AsValue(val), true
						break
					}
				}
				if !replaced {
					d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(key), Value: exec.AsValue(val)})
				}
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return d, nil
		case '[':
			list := pyList{}
			for dec.More() {
				val, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, val)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return list, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return numberValue(t), nil
	default: // string, bool, nil
		return t, nil
	}
}

// numberValue makes a JSON number an int when it is written as one (as Python does) and
// a float otherwise.
func numberValue(n json.Number) any {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return int(i)
		}
	}
	f, _ := strconv.ParseFloat(s, 64)
	return f
}
