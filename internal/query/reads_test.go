package query

import (
	"slices"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// TestFieldsRead checks the fields a query tells the decoder it reads: a
// field left out would be located late (slower), a field added needlessly
// makes every line cost more, and nil means every field.
func TestFieldsRead(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  []flowlog.Field // nil: every field
	}{
		{`parse @message /^\S+ \S+ (?<eni>\S+) \S+ \S+ \S+ (?<port>\d+) / | stats count() as n by port`, []flowlog.Field{}},
		{`stats count()`, []flowlog.Field{}},
		{`stats sum(bytes) as b by srcAddr, dstAddr | sort b desc | limit 10`, []flowlog.Field{flowlog.FieldBytes, flowlog.FieldSrcAddr, flowlog.FieldDstAddr}},
		{`filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc`, []flowlog.Field{flowlog.FieldAction, flowlog.FieldSrcAddr}},
		{`stats count() by bin(5m)`, []flowlog.Field{flowlog.FieldStart}},
		{`fields @logStream`, []flowlog.Field{flowlog.FieldInterfaceID}},
		{`stats count() by myCustomField`, nil},
	} {
		p, err := Compile(tc.query, Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		got := p.pipes[0].reads.list()
		slices.Sort(got)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if (got == nil) != (tc.want == nil) || !slices.Equal(slices.Compact(got), want) {
			t.Errorf("%s: reads %v (nil %v), want %v (nil %v)", tc.query, got, got == nil, tc.want, tc.want == nil)
		}
	}
}
