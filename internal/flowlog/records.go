package flowlog

import "fmt"

// RecordFormat returns the format of batches filled from records that are
// not flow logs (CloudTrail records, for the query engine): the names are
// kept as written (nested JSON names with dots, any case), each a string
// field, except start, which holds the record's time in Unix seconds
// (@timestamp reads it).
func RecordFormat(names []string) (*Format, error) {
	f := &Format{names: make([]string, 0, len(names)), fields: make([]Field, 0, len(names))}
	for i := range f.pos {
		f.pos[i] = -1
	}
	seen := make(map[string]bool, len(names))
	for i, name := range names {
		if name == "" || seen[name] {
			return nil, fmt.Errorf("record field %d: %q is empty or appears twice", i+1, name)
		}
		seen[name] = true
		fld := FieldUnknown
		if name == "start" {
			fld = FieldStart
			f.pos[fld] = int16(i)
		}
		f.names = append(f.names, name)
		f.fields = append(f.fields, fld)
	}
	return f, nil
}

// SetMessages gives the records of a batch filled with ResetColumns their
// text, which RawLine (and @message) then return: a CloudTrail record's
// JSON. It must be called after ResetColumns, with b.N messages.
func (b *Batch) SetMessages(msgs [][]byte) { b.msgs = msgs }
