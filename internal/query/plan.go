package query

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// Program is a compiled query, ready to run over flow logs.
type Program struct {
	maxRows  int // rows returned at most; 0: all
	pipes    []*pipeline
	columns  []string // the columns shown, in order
	warnings []string
}

// pipeline is a run of per-row stages ending in a sink. The first reads
// flow log batches; each later one reads the table the previous produced.
type pipeline struct {
	stream bool
	reads  *fieldReads // stream pipelines: the flow log fields read
	nodes  int
	slots  int
	stages []stage
	stats  *statsSpec
	rows   *rowsSpec
}

// stage transforms a frame: filter, fields, parse.
type stage interface{ run(w *wctx, f *frame) }

type filterStage struct{ cond node }

func (s *filterStage) run(w *wctx, f *frame) {
	if sn, ok := s.cond.(selector); ok {
		f.sel = sn.selectRows(w, f, w.selBuf(len(f.sel)))
		return
	}
	v := s.cond.eval(w, f)
	out := w.selBuf(len(f.sel))
	for _, i := range f.sel {
		if truth(v, int(i)) {
			out = append(out, i)
		}
	}
	f.sel = out
}

type slotStage struct {
	slot int
	x    node
}

func (s *slotStage) run(w *wctx, f *frame) { f.slots[s.slot] = s.x.eval(w, f) }

type parseStage struct {
	src   node
	re    *regexp.Regexp
	fast  *fastMatcher // nil: regexp matches every line
	slots []int
	ids   []int
}

func (s *parseStage) run(w *wctx, f *frame) {
	src := s.src.eval(w, f)
	outs := make([]*Vec, len(s.slots))
	for k := range s.slots {
		outs[k] = w.out(s.ids[k], TString, f.n)
		outs[k].validity(f.n, &w.valid[s.ids[k]])
	}
	loc := w.locBuf(2 * (s.re.NumSubexp() + 1))
	for _, i := range f.sel {
		ok := false
		var text string
		if !src.IsNull(int(i)) {
			if src.T == TString {
				text = src.S[src.idx(int(i))]
			} else {
				text = src.Value(int(i)).String()
			}
			ok = s.match(text, loc)
		}
		for k, o := range outs {
			g := 2 * (k + 1)
			if !ok || g >= len(loc) || loc[g] < 0 {
				o.Valid[i] = false
				continue
			}
			o.S[i], o.Valid[i] = text[loc[g]:loc[g+1]], true
		}
	}
	for k, slot := range s.slots {
		f.slots[slot] = outs[k]
	}
}

// match matches one value, filling loc as FindStringSubmatchIndex does.
func (s *parseStage) match(text string, loc []int) bool {
	if s.fast != nil {
		switch s.fast.match(text, loc) {
		case matched:
			return true
		case noMatch:
			return false
		}
	}
	m := s.re.FindStringSubmatchIndex(text)
	if m == nil {
		return false
	}
	copy(loc, m)
	return true
}

// Options tune Compile.
type Options struct {
	// MaxRows bounds the rows of a query without limit, as Logs Insights
	// does (10,000); 0 means no bound.
	MaxRows int
}

// Compile parses and compiles a query.
func Compile(src string, opts Options) (*Program, error) {
	q, err := Parse(src)
	if err != nil {
		return nil, err
	}
	return compileQuery(q, opts)
}

// Warnings returns what the compiler noticed but accepted, such as a name
// that is not a flow log field.
func (p *Program) Warnings() []string { return p.warnings }

// Columns returns the names of the result columns.
func (p *Program) Columns() []string { return p.columns }

type compiler struct {
	p       *Program
	env     *env
	pipe    *pipeline
	visible []keySpec // nil: the default columns
}

func compileQuery(q *Query, opts Options) (*Program, error) {
	c := &compiler{p: &Program{}}
	c.newPipe(true, nil)
	cmds := q.Commands
	for i := 0; i < len(cmds); i++ {
		var err error
		switch cmd := cmds[i].(type) {
		case *FilterCmd:
			var n node
			if n, err = c.env.compile(cmd.Cond); err == nil {
				c.pipe.stages = append(c.pipe.stages, &filterStage{cond: n})
			}
		case *FieldsCmd:
			if c.visible == nil {
				c.visible = []keySpec{}
			}
			for _, it := range cmd.Items {
				var k keySpec
				if k, err = c.project(it); err != nil {
					break
				}
				c.visible = appendColumn(c.visible, k)
			}
		case *DisplayCmd:
			var vis []keySpec
			for _, it := range cmd.Items {
				var k keySpec
				if k, err = c.project(it); err != nil {
					break
				}
				vis = appendColumn(vis, k)
			}
			c.visible = vis
		case *ParseCmd:
			err = c.parse(cmd)
		case *StatsCmd:
			err = c.stats(cmd)
		case *SortCmd:
			spec := &rowsSpec{limit: -1}
			for _, k := range cmd.Keys {
				var n node
				if n, err = c.env.compile(k.Expr); err != nil {
					break
				}
				spec.sort = append(spec.sort, sortSpec{x: n, desc: k.Desc})
			}
			if err == nil {
				if i+1 < len(cmds) {
					if l, ok := cmds[i+1].(*LimitCmd); ok {
						spec.limit = l.N
						i++
					}
				}
				err = c.endRows(spec, cmds[i+1:])
			}
		case *LimitCmd:
			err = c.endRows(&rowsSpec{limit: cmd.N}, cmds[i+1:])
		case *DedupCmd:
			spec := &rowsSpec{limit: -1}
			for _, fr := range cmd.Fields {
				var n node
				if n, err = c.env.compile(fr); err != nil {
					break
				}
				spec.dedup = append(spec.dedup, n)
			}
			if err == nil && c.env.stream {
				// Records no sort has ordered: Logs Insights dedups
				// them in descending @timestamp order, so the latest
				// record of each combination is kept.
				ts, _ := c.env.resolve(&FieldRef{P: cmd.P, Name: "@timestamp"})
				spec.sort = []sortSpec{{x: ts, desc: true}}
				spec.best = true
			}
			if err == nil {
				if i+1 < len(cmds) {
					if l, ok := cmds[i+1].(*LimitCmd); ok {
						spec.limit = l.N
						i++
					}
				}
				err = c.endRows(spec, cmds[i+1:])
			}
		default:
			err = errorf(cmd.Position(), "unsupported command %s", cmd)
		}
		if err != nil {
			return nil, err
		}
	}
	c.p.maxRows = opts.MaxRows
	if len(c.pipe.stages) == 0 && len(c.p.pipes) > 1 {
		// The query ended with stats, sort, limit or dedup: the last
		// pipeline is empty. A sort or dedup without a limit returns
		// MaxRows rows, as the end of any other query does (a sort then
		// keeps only that many while it runs).
		c.p.pipes = c.p.pipes[:len(c.p.pipes)-1]
		if last := c.p.pipes[len(c.p.pipes)-1]; last.rows != nil && last.rows.limit < 0 && opts.MaxRows > 0 {
			last.rows.limit = opts.MaxRows
		}
	} else {
		limit := -1
		if opts.MaxRows > 0 {
			limit = opts.MaxRows
		}
		if err := c.endRows(&rowsSpec{limit: limit}, nil); err != nil {
			return nil, err
		}
		c.p.pipes = c.p.pipes[:len(c.p.pipes)-1]
	}
	for i, pipe := range c.p.pipes {
		if pipe.stats != nil {
			next := (*pipeline)(nil)
			if i+1 < len(c.p.pipes) {
				next = c.p.pipes[i+1]
			}
			pipe.stats.ordered = next == nil || next.rows == nil || len(next.rows.sort) == 0
		}
	}
	for _, k := range c.visible {
		c.p.columns = append(c.p.columns, k.name)
	}
	if c.visible == nil {
		for _, s := range c.env.slots {
			c.p.columns = append(c.p.columns, s.name)
		}
	}
	return c.p, nil
}

func appendColumn(cols []keySpec, k keySpec) []keySpec {
	for i := range cols {
		if cols[i].name == k.name {
			cols[i] = k
			return cols
		}
	}
	return append(cols, k)
}

// newPipe starts a pipeline; a table pipeline's frame columns are the
// previous table's.
func (c *compiler) newPipe(stream bool, cols []slot) {
	if c.pipe != nil {
		c.pipe.nodes = c.env.nodes
		c.pipe.slots = len(c.env.slots)
	}
	c.env = &env{stream: stream, slots: cols}
	c.env.warn = func(msg string) { c.p.warnings = append(c.p.warnings, msg) }
	c.pipe = &pipeline{stream: stream}
	if stream {
		c.pipe.reads = &fieldReads{}
		c.env.reads = c.pipe.reads
	}
	c.p.pipes = append(c.p.pipes, c.pipe)
}

// project compiles an item of fields or display.
func (c *compiler) project(it Projection) (keySpec, error) {
	n, err := c.env.compile(it.Expr)
	if err != nil {
		return keySpec{}, err
	}
	name := it.Name()
	if _, plain := it.Expr.(*FieldRef); plain && it.Alias == "" {
		return keySpec{name: name, x: n}, nil
	}
	slot := c.env.addSlot(name, n.typ())
	c.pipe.stages = append(c.pipe.stages, &slotStage{slot: slot, x: n})
	return keySpec{name: name, x: &slotRef{slot: slot, t: n.typ()}}, nil
}

func (c *compiler) parse(cmd *ParseCmd) error {
	src, err := c.env.compile(cmd.Source)
	if err != nil {
		return err
	}
	var re *regexp.Regexp
	if cmd.IsRegex {
		pat := strings.ReplaceAll(cmd.Regex, "(?<", "(?P<")
		if re, err = regexp.Compile(pat); err != nil {
			return errorf(cmd.P, "bad regular expression: %v", err)
		}
	} else if re, err = globRegexp(cmd.Glob); err != nil {
		return errorf(cmd.P, "bad pattern: %v", err)
	}
	if re.NumSubexp() < len(cmd.Names) {
		return errorf(cmd.P, "parse names %d fields but the pattern captures %d", len(cmd.Names), re.NumSubexp())
	}
	ps := &parseStage{src: src, re: re, fast: compileFast(re)}
	for _, name := range cmd.Names {
		ps.slots = append(ps.slots, c.env.addSlot(name, TString))
		ps.ids = append(ps.ids, c.env.id())
	}
	c.pipe.stages = append(c.pipe.stages, ps)
	return nil
}

// globRegexp turns parse's glob ("user=* ip=*") into a regular expression:
// each * captures as little as it can, except a final one, which takes the
// rest of the value.
func globRegexp(glob string) (*regexp.Regexp, error) {
	parts := strings.Split(glob, "*")
	var b strings.Builder
	b.WriteString("(?s)")
	for i, p := range parts {
		b.WriteString(regexp.QuoteMeta(p))
		if i < len(parts)-1 {
			if i == len(parts)-2 && parts[len(parts)-1] == "" {
				b.WriteString("(.*)")
			} else {
				b.WriteString("(.*?)")
			}
		}
	}
	return regexp.Compile(b.String())
}

func (c *compiler) stats(cmd *StatsCmd) error {
	spec := &statsSpec{}
	for _, b := range cmd.By {
		n, err := c.env.compile(b.Expr)
		if err != nil {
			return err
		}
		spec.by = append(spec.by, keySpec{name: b.Name(), x: n})
	}
	cols, err := c.compileStatsItems(spec, cmd.Aggs)
	if err != nil {
		return err
	}
	c.pipe.stats = spec
	c.newPipe(false, cols)
	c.visible = nil
	return nil
}

// endRows ends the pipeline with a sink that keeps rows: the visible
// columns, and the fields later commands read.
func (c *compiler) endRows(spec *rowsSpec, later []Command) error {
	vis := c.visible
	if vis == nil {
		if c.env.stream {
			for _, name := range []string{"@timestamp", "@message"} {
				n, _ := c.env.resolve(&FieldRef{Name: name})
				vis = append(vis, keySpec{name: name, x: n})
			}
		} else {
			for i, s := range c.env.slots {
				vis = append(vis, keySpec{name: s.name, x: &slotRef{slot: i, t: s.t}})
			}
		}
	}
	spec.cols = append(spec.cols, vis...)
	for _, name := range laterRefs(later) {
		if hasColumn(spec.cols, name) {
			continue
		}
		n, err := c.env.resolve(&FieldRef{Name: name})
		if err != nil {
			continue
		}
		spec.cols = append(spec.cols, keySpec{name: name, x: n})
	}
	c.pipe.rows = spec
	var cols []slot
	for _, k := range spec.cols {
		cols = append(cols, slot{k.name, k.x.typ()})
	}
	c.newPipe(false, cols)
	c.visible = nil
	for i := range vis {
		c.visible = append(c.visible, keySpec{name: vis[i].name, x: &slotRef{slot: i, t: cols[i].t}})
	}
	return nil
}

func hasColumn(cols []keySpec, name string) bool {
	for _, k := range cols {
		if strings.EqualFold(k.name, name) {
			return true
		}
	}
	return false
}

// laterRefs lists the field names read by commands up to the next stats.
func laterRefs(cmds []Command) []string {
	var names []string
	var walk func(Expr)
	walk = func(x Expr) {
		switch x := x.(type) {
		case *FieldRef:
			names = append(names, x.Name)
		case *CallExpr:
			if x.Name == "bin" {
				names = append(names, "@timestamp")
			}
			for _, a := range x.Args {
				walk(a)
			}
		case *UnaryExpr:
			walk(x.X)
		case *BinaryExpr:
			walk(x.L)
			walk(x.R)
		case *InExpr:
			walk(x.X)
			for _, a := range x.List {
				walk(a)
			}
		}
	}
	for _, c := range cmds {
		switch c := c.(type) {
		case *FilterCmd:
			walk(c.Cond)
		case *FieldsCmd:
			for _, it := range c.Items {
				walk(it.Expr)
			}
		case *DisplayCmd:
			for _, it := range c.Items {
				walk(it.Expr)
			}
		case *ParseCmd:
			walk(c.Source)
		case *SortCmd:
			for _, k := range c.Keys {
				walk(k.Expr)
			}
		case *DedupCmd:
			for _, f := range c.Fields {
				walk(f)
			}
		case *StatsCmd:
			for _, it := range c.Aggs {
				walk(it.Expr)
			}
			for _, it := range c.By {
				walk(it.Expr)
			}
			return names
		}
	}
	return names
}

// Run executes the program over flow log inputs.
func (p *Program) Run(ctx context.Context, sc *flowlog.Scanner, inputs []flowlog.Input) (*Table, error) {
	return p.run(ctx, &scannerSource{sc: sc, inputs: inputs})
}

// run executes the program over the batches of src.
func (p *Program) run(ctx context.Context, src batchSource) (*Table, error) {
	t, err := p.pipes[0].runStream(ctx, src)
	if err != nil {
		return nil, err
	}
	for _, pipe := range p.pipes[1:] {
		t = pipe.runTable(t)
	}
	return project(t, p.columns, p.maxRows), nil
}

// project keeps the named columns of t, in that order, and at most max
// rows (0: all).
func project(t *Table, cols []string, max int) *Table {
	t.materialize(max)
	if max > 0 && len(t.Rows) > max {
		t.Rows = t.Rows[:max]
	}
	idx := make([]int, len(cols))
	same := len(cols) == len(t.Names)
	out := &Table{Names: cols, Types: make([]Type, len(cols))}
	for i, name := range cols {
		idx[i] = t.Column(name)
		if idx[i] >= 0 {
			out.Types[i] = t.Types[idx[i]]
		}
		same = same && idx[i] == i
	}
	if same { // every column, in order: the rows as they are
		out.Rows = t.Rows
		return out
	}
	out.Rows = make([][]Value, len(t.Rows))
	for r, row := range t.Rows {
		nr := make([]Value, len(cols))
		for i, j := range idx {
			if j >= 0 {
				nr[i] = row[j]
			}
		}
		out.Rows[r] = nr
	}
	return out
}

// workerState is one scanning worker's frame, scratch and sink.
type workerState struct {
	w      *wctx
	f      frame
	groups *groupTable
	rows   *rowSink
}

// newWorker makes a worker's state; like is the first worker's, whose
// shared parts the others use (nil for the first).
func (p *pipeline) newWorker(like *workerState) *workerState {
	st := &workerState{w: newWctx(p.nodes)}
	if p.stats != nil {
		var first *groupTable
		if like != nil {
			first = like.groups
		}
		st.groups = newGroupTable(p.stats, first)
	} else if p.rows != nil {
		st.rows = newRowSink(p.rows)
	}
	return st
}

func (p *pipeline) runStages(st *workerState) {
	for _, s := range p.stages {
		if len(st.f.sel) == 0 {
			return
		}
		s.run(st.w, &st.f)
		st.f.dropBad()
	}
}

func batchOrder(b *flowlog.Batch) func(uint32) [4]int {
	return func(i uint32) [4]int { return [4]int{b.Input, b.Seq, b.Part, int(i)} }
}

func (p *pipeline) runStream(ctx context.Context, src batchSource) (*Table, error) {
	nw := src.workers()
	fields := p.reads.list() // the decoder locates only the fields the query reads
	states := make([]*workerState, nw)
	states[0] = p.newWorker(nil)
	var mu sync.Mutex
	state := func(w int) *workerState {
		if states[w] == nil {
			mu.Lock()
			states[w] = p.newWorker(states[0])
			mu.Unlock()
		}
		return states[w]
	}
	if p.rows != nil && p.rows.ordered() {
		final := newRowSink(p.rows)
		err := src.scanOrdered(ctx, fields, func(w int, b *flowlog.Batch) []row {
			st := state(w)
			st.w.startFrame(&st.f, b, p.slots)
			p.runStages(st)
			if len(st.f.sel) == 0 {
				return nil
			}
			return p.rows.extract(st.w, &st.f, batchOrder(b))
		}, final.add)
		if err != nil && !errors.Is(err, errEnough) {
			return nil, err
		}
		return final.table(), nil
	}
	err := src.scan(ctx, fields, func(w int, b *flowlog.Batch) error {
		st := state(w)
		st.w.startFrame(&st.f, b, p.slots)
		p.runStages(st)
		if len(st.f.sel) == 0 {
			return nil
		}
		if st.groups != nil {
			st.groups.consume(st.w, &st.f)
			return nil
		}
		return p.rows.collect(st.w, &st.f, batchOrder(b), st.rows)
	})
	if err != nil {
		return nil, err
	}
	// Workers fold what they still hold, in parallel.
	var fin sync.WaitGroup
	for _, st := range states {
		if st != nil && st.groups != nil {
			fin.Add(1)
			go func() { defer fin.Done(); st.groups.finish() }()
		}
	}
	fin.Wait()
	var first *workerState
	for _, st := range states {
		if st == nil {
			continue
		}
		if first == nil {
			first = st
			continue
		}
		if first.groups != nil {
			first.groups.merge(st.groups)
		} else {
			first.rows.merge(st.rows)
		}
	}
	if first == nil {
		first = p.newWorker(nil)
	}
	if first.groups != nil {
		return p.stats.finish(first.groups.table()), nil
	}
	return first.rows.table(), nil
}

func (p *pipeline) runTable(t *Table) *Table {
	st := p.newWorker(nil)
	f := t.frame(st.w)
	if len(f.slots) < p.slots {
		f.slots = append(f.slots, make([]*Vec, p.slots-len(f.slots))...)
	}
	st.f = *f
	p.runStages(st)
	order := func(i uint32) [4]int { return [4]int{0, 0, 0, int(i)} }
	if st.groups != nil {
		st.groups.consume(st.w, &st.f)
		st.groups.finish()
		return p.stats.finish(st.groups.table())
	}
	_ = p.rows.collect(st.w, &st.f, order, st.rows)
	return st.rows.table()
}
