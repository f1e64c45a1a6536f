package config

import (
	"fmt"
	"github.com/flowguard/flowguard/internal/suggest"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	configType      = reflect.TypeOf(Config{})
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// checkKeys walks the document against the Go types it decodes into and
// reports the first key no type knows, with its line and column and a
// suggestion. It records where each key path is, for later errors.
func checkKeys(n *yaml.Node, t reflect.Type, path string, pos map[string]*yaml.Node) *Error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // the type reads its own node
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // the decoder reports the type mismatch
		}
		fields := structKeys(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				slices.Sort(names)
				msg := fmt.Sprintf("unknown key %q", k.Value)
				if s := suggest.Closest(k.Value, names); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				} else {
					msg += " (known here: " + strings.Join(names, ", ") + ")"
				}
				return &Error{Line: k.Line, Column: k.Column, Path: p, Msg: msg}
			}
			pos[p] = k
			if err := checkKeys(v, ft, p, pos); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			pos[p] = v
			if err := checkKeys(v, t.Elem(), p, pos); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			pos[p] = n.Content[i]
			if err := checkKeys(n.Content[i+1], t.Elem(), p, pos); err != nil {
				return err
			}
		}
	}
	return nil
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

// closest returns the known name nearest to s (edit distance at most 3),
// or "".
