package compile

import (
	"reflect"
	"strconv"
	"strings"
)

// decoder fills the typed views from a tree, strictly: unknown fields and
// wrong types are issues at their JSON pointer.
type decoder struct {
	// file selects yaml tag names (stored files) instead of json tag
	// names (API bodies) and allows scalars where strings are expected.
	file bool
	is   *issues
}

// fieldName is the name of a struct field in the current format, "" if the
// field is not part of it.
func (d *decoder) fieldName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	if d.file {
		tag = f.Tag.Get("yaml")
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func (d *decoder) mappingWord() string {
	if d.file {
		return "a mapping"
	}
	return "an object"
}

func (d *decoder) describe(n *tnode) string {
	switch n.kind {
	case nodeMap:
		return d.mappingWord()
	case nodeSeq:
		return "a list"
	case nodeNull:
		return "null"
	}
	switch n.typ {
	case scalarBool:
		return "a boolean"
	case scalarInt, scalarFloat:
		return "a number"
	}
	return "a string"
}

func (d *decoder) wrongType(n *tnode, ptr, want string) {
	d.is.add(ptr, CodeInvalidType, "%s must be %s, not %s", fieldLabel(ptr), want, d.describe(n))
}

// fieldLabel names the field at ptr for messages.
func fieldLabel(ptr string) string {
	if ptr == "" {
		return "the document"
	}
	i := strings.LastIndexByte(ptr, '/')
	last := unescapePointer(ptr[i+1:])
	if _, err := strconv.Atoi(last); err == nil && i > 0 {
		j := strings.LastIndexByte(ptr[:i], '/')
		return unescapePointer(ptr[j+1:i]) + "[" + last + "]"
	}
	return last
}

// decode stores n into v (addressable), reporting problems at ptr.
func (d *decoder) decode(n *tnode, ptr string, v reflect.Value) {
	if n.kind == nodeNull {
		v.SetZero()
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, ptr, v.Elem())
	case reflect.Struct:
		d.decodeStruct(n, ptr, v)
	case reflect.String:
		if n.kind != nodeScalar || (n.typ != scalarString && !d.file) {
			d.wrongType(n, ptr, "a string")
			return
		}
		if n.typ != scalarString {
			v.SetString(n.raw)
			return
		}
		v.SetString(n.value)
	case reflect.Bool:
		if n.kind != nodeScalar || n.typ != scalarBool {
			d.wrongType(n, ptr, "a boolean")
			return
		}
		v.SetBool(n.value == "true")
	case reflect.Int:
		if n.kind != nodeScalar || n.typ != scalarInt {
			d.wrongType(n, ptr, "an integer")
			return
		}
		i, err := strconv.ParseInt(n.value, 10, 64)
		if err != nil || v.OverflowInt(i) {
			d.is.add(ptr, CodeInvalidValue, "%s is out of range", fieldLabel(ptr))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		if n.kind != nodeScalar || (n.typ != scalarInt && n.typ != scalarFloat) {
			d.wrongType(n, ptr, "a number")
			return
		}
		f, err := strconv.ParseFloat(n.value, 64)
		if err != nil {
			d.is.add(ptr, CodeInvalidValue, "%s is out of range", fieldLabel(ptr))
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		if n.kind != nodeSeq {
			d.wrongType(n, ptr, "a list")
			return
		}
		if len(n.items) == 0 {
			v.SetZero() // empty and absent lists are the same view
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.items), len(n.items))
		for i, item := range n.items {
			d.decode(item, ptr+"/"+strconv.Itoa(i), s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.kind != nodeMap {
			d.wrongType(n, ptr, d.mappingWord())
			return
		}
		if len(n.keys) == 0 {
			v.SetZero() // empty and absent maps are the same view
			return
		}
		if v.Type().Elem().Kind() == reflect.Interface {
			v.Set(reflect.ValueOf(toAny(n)))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.keys))
		for i, k := range n.keys {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(n.vals[i], ptr+"/"+escapePointer(k), e)
			m.SetMapIndex(reflect.ValueOf(k), e)
		}
		v.Set(m)
	default:
		d.is.add(ptr, CodeInvalidType, "%s has an unsupported type", fieldLabel(ptr))
	}
}

func (d *decoder) decodeStruct(n *tnode, ptr string, v reflect.Value) {
	if n.kind != nodeMap {
		d.wrongType(n, ptr, d.mappingWord())
		return
	}
	t := v.Type()
	index := map[string]int{}
	for i := range t.NumField() {
		if name := d.fieldName(t.Field(i)); name != "" {
			index[name] = i
		}
	}
	allowed := ""
	for i, k := range n.keys {
		kptr := ptr + "/" + escapePointer(k)
		fi, ok := index[k]
		if !ok {
			if allowed == "" {
				allowed = strings.Join(sortedKeys(index), ", ")
			}
			d.is.add(kptr, CodeUnknownField, "unknown field %q (allowed: %s)", k, allowed)
			continue
		}
		d.decode(n.vals[i], kptr, v.Field(fi))
	}
}
