package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/flowguard/flowguard/internal/suggest"
	"gopkg.in/yaml.v3"
)

var (
	configType      = reflect.TypeOf(Config{})
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// tree is a parsed file with its aliases expanded, and where each key
// path is written.
type tree struct {
	// pos holds, for each key path, the node that names it: the key of a
	// mapping entry, or the item of a sequence.
	pos map[string]*yaml.Node
	// val holds the value node of each key path.
	val map[string]*yaml.Node
	// copied holds, for a node copied in from an anchor, the alias it
	// was copied through and the node as written.
	copied map[*yaml.Node]copyOf
}

type copyOf struct {
	alias    string // the anchor's name
	original *yaml.Node
}

func newTree() *tree {
	return &tree{pos: map[string]*yaml.Node{}, val: map[string]*yaml.Node{}, copied: map[*yaml.Node]copyOf{}}
}

// errorAt returns an error about node n of key path path: at n's line and
// column, which for a node copied from an anchor are those of the alias
// that brought it in, with a word on where the anchor's value is written.
func (t *tree) errorAt(name, path string, n *yaml.Node, msg string) *Error {
	e := &Error{File: name, Path: path, Msg: msg}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
		if c, ok := t.copied[n]; ok {
			e.Msg += fmt.Sprintf("; through the alias *%s, the value written at line %d", c.alias, c.original.Line)
		}
	}
	return e
}

// maxExpandedNodes bounds alias expansion beyond the file's own nodes, so
// that a file of nested aliases (a "billion laughs") cannot exhaust memory.
const maxExpandedNodes = 100_000

// expander replaces alias nodes by copies of the nodes they refer to. The
// copies take the alias's line and column, so that every later error
// (unknown key, wrong type, invalid value) points at the place in the file
// where the value is used, not at the anchor, and names the key path it is
// used under.
type expander struct {
	t      *tree
	name   string
	left   int
	active map[*yaml.Node]bool // anchors being expanded: a cycle check
}

func expandAliases(doc *yaml.Node, t *tree, name string) (*yaml.Node, error) {
	x := &expander{t: t, name: name, left: 2*countNodes(doc) + maxExpandedNodes, active: map[*yaml.Node]bool{}}
	return x.expand(doc, nil, "")
}

func countNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

// expand returns n with its aliases replaced; at is the alias being
// expanded (nil outside one) and anchor its name.
func (x *expander) expand(n *yaml.Node, at *yaml.Node, anchor string) (*yaml.Node, error) {
	if x.left--; x.left < 0 {
		return nil, x.t.errorAt(x.name, "", at, "the aliases expand to too many values (an alias bomb?)")
	}
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil {
			return nil, x.t.errorAt(x.name, "", n, fmt.Sprintf("unknown anchor %q", n.Value))
		}
		if x.active[target] {
			return nil, x.t.errorAt(x.name, "", n, fmt.Sprintf("the alias *%s is inside its own anchor's value", n.Value))
		}
		x.active[target] = true
		defer delete(x.active, target)
		if at == nil { // an alias inside an anchor's value keeps the outer alias's place
			at, anchor = n, n.Value
		}
		return x.expand(target, at, anchor)
	}
	if at == nil && !hasAlias(n) {
		return n, nil
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		var err error
		if c.Content[i], err = x.expand(k, at, anchor); err != nil {
			return nil, err
		}
	}
	if at != nil {
		c.Line, c.Column = at.Line, at.Column
		x.t.copied[&c] = copyOf{alias: anchor, original: n}
	}
	return &c, nil
}

func hasAlias(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		return true
	}
	return slices.ContainsFunc(n.Content, hasAlias)
}

// checker walks the document against the Go types it decodes into. It
// stops at the first key no type knows (with a suggestion), collects the
// numbers that are not finite, and records where each key path is.
type checker struct {
	t    *tree
	name string
	errs []error
}

func (c *checker) check(n *yaml.Node, t reflect.Type, path string) *Error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // the type reads its own node
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // the decoder reports the type mismatch
		}
		return c.pairs(n, path, structKeys(t), nil)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		return c.pairs(n, path, nil, t.Elem())
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			c.t.pos[p], c.t.val[p] = v, v
			if err := c.check(v, t.Elem(), p); err != nil {
				return err
			}
		}
	case reflect.Float32, reflect.Float64:
		c.finite(n, path)
	}
	return nil
}

// pairs checks the entries of mapping n: the fields of a struct (fields
// non-nil) or the values of a map (elem). Merge keys (<<: *anchor) bring
// in the entries of the mappings they name, which the entries written
// beside them override, as YAML's merge key does.
func (c *checker) pairs(n *yaml.Node, path string, fields map[string]reflect.Type, elem reflect.Type) *Error {
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			continue
		}
		switch v.Kind {
		case yaml.MappingNode:
			merged = append(merged, v)
		case yaml.SequenceNode:
			for j := len(v.Content) - 1; j >= 0; j-- { // earlier mappings win
				if v.Content[j].Kind == yaml.MappingNode {
					merged = append(merged, v.Content[j])
				}
			}
		}
	}
	for _, m := range merged {
		if err := c.pairs(m, path, fields, elem); err != nil {
			return err
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue
		}
		p := join(path, k.Value)
		t := elem
		if fields != nil {
			ft, ok := fields[k.Value]
			if !ok {
				return c.t.errorAt(c.name, p, k, unknownKey(k.Value, fields))
			}
			t = ft
		}
		c.t.pos[p], c.t.val[p] = k, v
		if err := c.check(v, t, p); err != nil {
			return err
		}
	}
	return nil
}

func unknownKey(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	msg := fmt.Sprintf("unknown key %q", key)
	if s := suggest.Closest(key, names); s != "" {
		return msg + fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + " (known here: " + strings.Join(names, ", ") + ")"
}

// finite records an error when a number read into a float is not finite:
// YAML's .nan, .inf and -.inf are floats, and every comparison with NaN
// is false, so a NaN threshold or severity would silently turn its check
// off.
func (c *checker) finite(n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!float" {
		return
	}
	var f float64
	if n.Decode(&f) != nil || !math.IsNaN(f) && !math.IsInf(f, 0) {
		return
	}
	at := c.t.pos[path]
	if at == nil {
		at = n
	}
	c.errs = append(c.errs, c.t.errorAt(c.name, path, at, fmt.Sprintf("%s is not a number: want a finite number", n.Value)))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structKeys returns the YAML keys of struct type t, inline fields
// flattened.
func structKeys(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range structKeys(ft) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}
