package flowlog

import (
	"fmt"
	"strings"
)

// Format is the ordered list of fields in a flow log record, as given by an
// S3 file's header line, a --format string or the default v2 format.
type Format struct {
	names  []string // as written (AWS names, or unknown names)
	fields []Field  // FieldUnknown for names flowguard does not know
	pos    [NumFields]int16
}

// DefaultFormatString is AWS's default (version 2) format.
const DefaultFormatString = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"

var defaultFormat = MustParseFormat(DefaultFormatString)

// DefaultFormat returns the default v2 format. The result is shared and must
// not be modified.
func DefaultFormat() *Format { return defaultFormat }

// ParseFormat parses a format in AWS's syntax ("${version} ${srcaddr} …") or
// as a header line ("version srcaddr …"). Unknown field names are accepted
// and kept as strings, so that a field AWS adds later does not stop a run.
func ParseFormat(s string) (*Format, error) {
	toks := strings.Fields(s)
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty flow log format")
	}
	f := &Format{names: make([]string, 0, len(toks)), fields: make([]Field, 0, len(toks))}
	for i := range f.pos {
		f.pos[i] = -1
	}
	seen := make(map[string]bool, len(toks))
	for i, tok := range toks {
		name := tok
		if strings.HasPrefix(tok, "${") {
			if !strings.HasSuffix(tok, "}") || len(tok) < 4 {
				return nil, fmt.Errorf("format field %d: %q: expected ${name}", i+1, tok)
			}
			name = tok[2 : len(tok)-1]
		}
		if !validFieldName(name) {
			return nil, fmt.Errorf("format field %d: %q is not a field name", i+1, tok)
		}
		if seen[name] {
			return nil, fmt.Errorf("format field %d: %q appears twice", i+1, name)
		}
		seen[name] = true
		fld, _ := LookupField(name)
		if fld != FieldUnknown {
			name = fld.String()
			f.pos[fld] = int16(i)
		}
		f.names = append(f.names, name)
		f.fields = append(f.fields, fld)
	}
	return f, nil
}

// MustParseFormat is ParseFormat for formats known to be valid.
func MustParseFormat(s string) *Format {
	f, err := ParseFormat(s)
	if err != nil {
		panic(err)
	}
	return f
}

func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return 'a' <= s[0] && s[0] <= 'z'
}

// looksLikeHeader reports whether line is a header line naming fields, as S3
// delivery writes at the top of each file: every token a field name and at
// least one of them a field flowguard knows.
func looksLikeHeader(line []byte) bool {
	if len(line) == 0 || line[0] < 'a' || line[0] > 'z' {
		return false
	}
	known := false
	for tok := range strings.FieldsSeq(string(line)) {
		if !validFieldName(tok) {
			return false
		}
		if _, ok := LookupField(tok); ok {
			known = true
		}
	}
	return known
}

// Len returns the number of fields in a record.
func (f *Format) Len() int { return len(f.fields) }

// Field returns the field at position i.
func (f *Format) Field(i int) Field { return f.fields[i] }

// Name returns the name of the field at position i as the format wrote it.
func (f *Format) Name(i int) string { return f.names[i] }

// Index returns the position of field fld in the format, or -1.
func (f *Format) Index(fld Field) int {
	if fld == FieldUnknown || int(fld) >= NumFields {
		return -1
	}
	return int(f.pos[fld])
}

// IndexName returns the position of the field named name (AWS name, or an
// unknown name as written), or -1.
func (f *Format) IndexName(name string) int {
	for i, n := range f.names {
		if n == name {
			return i
		}
	}
	return -1
}

// Has reports whether the format includes fld.
func (f *Format) Has(fld Field) bool { return f.Index(fld) >= 0 }

// Version returns the flow log version of the format: the highest version
// among its fields, as AWS defines it.
func (f *Format) Version() int {
	v := 2
	for _, fld := range f.fields {
		if fv := fld.Info().Version; fv > v {
			v = fv
		}
	}
	return v
}

// String returns the format in AWS's ${field} syntax.
func (f *Format) String() string {
	var b strings.Builder
	for i, n := range f.names {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("${")
		b.WriteString(n)
		b.WriteByte('}')
	}
	return b.String()
}

// Header returns the format as S3 delivery writes it in a header line.
func (f *Format) Header() string { return strings.Join(f.names, " ") }

// Equal reports whether two formats have the same fields in the same order.
func (f *Format) Equal(g *Format) bool {
	if f == g {
		return true
	}
	if f == nil || g == nil || len(f.names) != len(g.names) {
		return false
	}
	for i := range f.names {
		if f.names[i] != g.names[i] {
			return false
		}
	}
	return true
}
