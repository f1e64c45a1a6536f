package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// trafficSchema holds what the dashboard draws without reading the logs
// again, for every kind of source: per-minute traffic counts, bounded
// per-minute top tables, and each finding's explanation (the rule,
// thresholds and sample records flowguard detect --explain prints). The
// daemon adds to them in the commit transaction that saves the positions
// of the records they count (StreamCommit.Traffic), so that a crash
// neither loses nor repeats them.
const trafficSchema = `CREATE TABLE traffic_minutes (
	minute  INTEGER NOT NULL,
	source  TEXT NOT NULL,
	action  TEXT NOT NULL,
	records INTEGER NOT NULL,
	bytes   INTEGER NOT NULL,
	PRIMARY KEY (minute, source, action)
);
CREATE TABLE traffic_top (
	minute INTEGER NOT NULL,
	kind   TEXT NOT NULL,
	key    TEXT NOT NULL,
	n      INTEGER NOT NULL,
	bytes  INTEGER NOT NULL,
	p0 INTEGER NOT NULL DEFAULT 0, p1 INTEGER NOT NULL DEFAULT 0,
	p2 INTEGER NOT NULL DEFAULT 0, p3 INTEGER NOT NULL DEFAULT 0,
	p4 INTEGER NOT NULL DEFAULT 0, p5 INTEGER NOT NULL DEFAULT 0,
	p6 INTEGER NOT NULL DEFAULT 0, p7 INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (minute, kind, key)
);
CREATE TABLE finding_explanations (
	finding_id TEXT PRIMARY KEY REFERENCES findings(id) ON DELETE CASCADE,
	body       TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);`

// The top tables kept per minute (TrafficTop.Kind).
const (
	// TopRejectedSources: Key is a source address, Count its rejected
	// records, Ports the destination ports they tried.
	TopRejectedSources = "rejected_sources"
	// TopTalkers: Key is "source destination", ranked by Bytes; Count
	// is the flows.
	TopTalkers = "top_talkers"
	// TopDstPorts: Key is a destination port, Count the flows.
	TopDstPorts = "dst_ports"
)

// TopKinds are the top tables, in the order the dashboard shows them.
var TopKinds = []string{TopRejectedSources, TopTalkers, TopDstPorts}

// TrafficTopKeep is how many rows of each top table the store keeps per
// minute; the rest of a minute's keys are dropped when rows are added.
const TrafficTopKeep = 50

// PortSet is a linear-counting sketch of a set of ports: 512 bits, one
// set per port's hash. Sets merge by OR. Estimate's standard error is
// about 1% at 20 ports, 3% at 100, 5% at 1,000 and 11% at 2,000; past
// about 3,000 it saturates.
type PortSet [8]uint64

// Add puts port in the set.
func (p *PortSet) Add(port uint16) {
	h := uint64(port) + 1 // murmur3's finaliser: ports next to each other land anywhere
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	h >>= 64 - 9
	p[h>>6] |= 1 << (h & 63)
}

// Merge adds o's ports to p.
func (p *PortSet) Merge(o PortSet) {
	for i := range p {
		p[i] |= o[i]
	}
}

// Estimate returns the number of distinct ports added (linear counting).
func (p *PortSet) Estimate() int64 {
	set := 0
	for _, w := range p {
		set += bits.OnesCount64(w)
	}
	const m = 512
	if set == m {
		return int64(math.Round(m * math.Log(m))) // saturated: a lower bound
	}
	return int64(math.Round(-m * math.Log(float64(m-set)/m)))
}

// TrafficCount is the records and bytes of one minute, source and action
// ("ACCEPT", "REJECT" or "" when the records have none).
type TrafficCount struct {
	Minute  time.Time
	Source  string
	Action  string
	Records int64
	Bytes   int64
}

// TrafficTop is one row of a minute's top table.
type TrafficTop struct {
	Minute time.Time
	Kind   string
	Key    string
	Count  int64
	Bytes  int64
	Ports  PortSet
}

// TrafficDelta is traffic to add to the per-minute aggregates.
type TrafficDelta struct {
	Counts []TrafficCount
	Top    []TrafficTop
	// PruneBefore, when set, drops the minutes before it (retention).
	PruneBefore time.Time
}

// rank is the column a top table is sorted by.
func rank(kind string) string {
	if kind == TopTalkers {
		return "bytes"
	}
	return "n"
}

// addTraffic adds d to the aggregates inside a commit transaction, keeps
// the TrafficTopKeep first rows of each minute's top tables it touched,
// and prunes the minutes before d.PruneBefore.
func addTraffic(ctx context.Context, tx *sql.Tx, d *TrafficDelta) error {
	if d == nil {
		return nil
	}
	for _, c := range d.Counts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO traffic_minutes(minute, source, action, records, bytes) VALUES (?,?,?,?,?)
			ON CONFLICT(minute, source, action) DO UPDATE SET records=records+excluded.records, bytes=bytes+excluded.bytes`,
			c.Minute.Unix(), c.Source, c.Action, c.Records, c.Bytes); err != nil {
			return fmt.Errorf("cannot add the traffic of minute %s: %w", c.Minute.UTC().Format(time.RFC3339), err)
		}
	}
	if len(d.Top) > 0 {
		// Many rows a statement: the statement's cost, not the row's,
		// dominates a commit.
		const perStmt = 100
		touched := map[[2]any]bool{}
		args := make([]any, 0, perStmt*13)
		for start := 0; start < len(d.Top); start += perStmt {
			rows := d.Top[start:min(start+perStmt, len(d.Top))]
			args = args[:0]
			for _, t := range rows {
				args = append(args, t.Minute.Unix(), t.Kind, t.Key, t.Count, t.Bytes)
				for _, w := range t.Ports {
					args = append(args, int64(w))
				}
				touched[[2]any{t.Minute.Unix(), t.Kind}] = true
			}
			q := `INSERT INTO traffic_top(minute, kind, key, n, bytes, p0, p1, p2, p3, p4, p5, p6, p7) VALUES ` +
				strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,?,?,?,?),", len(rows)), ",") + `
				ON CONFLICT(minute, kind, key) DO UPDATE SET n=n+excluded.n, bytes=bytes+excluded.bytes,
				p0=p0|excluded.p0, p1=p1|excluded.p1, p2=p2|excluded.p2, p3=p3|excluded.p3,
				p4=p4|excluded.p4, p5=p5|excluded.p5, p6=p6|excluded.p6, p7=p7|excluded.p7`
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("cannot add to the top tables of minute %s: %w", rows[0].Minute.UTC().Format(time.RFC3339), err)
			}
		}
		for k := range touched {
			kind := k[1].(string)
			if _, err := tx.ExecContext(ctx, `DELETE FROM traffic_top WHERE minute = ?1 AND kind = ?2 AND key NOT IN
				(SELECT key FROM traffic_top WHERE minute = ?1 AND kind = ?2 ORDER BY `+rank(kind)+` DESC, key LIMIT ?3)`,
				k[0], kind, TrafficTopKeep); err != nil {
				return fmt.Errorf("cannot trim the %s: %w", kind, err)
			}
		}
	}
	if !d.PruneBefore.IsZero() {
		cut := d.PruneBefore.Unix()
		for _, q := range []string{`DELETE FROM traffic_minutes WHERE minute < ?`, `DELETE FROM traffic_top WHERE minute < ?`} {
			if _, err := tx.ExecContext(ctx, q, cut); err != nil {
				return fmt.Errorf("cannot drop the traffic before %s: %w", d.PruneBefore.UTC().Format(time.RFC3339), err)
			}
		}
	}
	return nil
}

// TrafficBin is the traffic of one time bin and action.
type TrafficBin struct {
	Time    time.Time
	Action  string
	Records int64
	Bytes   int64
}

// TrafficSeries returns the traffic of the minutes in [since, until) by
// bin (a whole number of minutes; less is one minute) and action, in time
// order.
func (s *Store) TrafficSeries(ctx context.Context, since, until time.Time, bin time.Duration) ([]TrafficBin, error) {
	b := max(int64(bin/time.Minute), 1) * 60
	rows, err := s.r.QueryContext(ctx, `SELECT (minute / ?1) * ?1 AS t, action, SUM(records), SUM(bytes) FROM traffic_minutes
		WHERE minute >= ?2 AND minute < ?3 GROUP BY t, action ORDER BY t, action`, b, since.Unix(), until.Unix())
	if err != nil {
		return nil, fmt.Errorf("cannot read the traffic: %w", err)
	}
	defer rows.Close()
	var out []TrafficBin
	for rows.Next() {
		var t int64
		var r TrafficBin
		if err := rows.Scan(&t, &r.Action, &r.Records, &r.Bytes); err != nil {
			return nil, fmt.Errorf("cannot read the traffic: %w", err)
		}
		r.Time = time.Unix(t, 0).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// TrafficBySource returns the records and bytes of each source (the
// daemon's sources: names) and action in [since, until).
func (s *Store) TrafficBySource(ctx context.Context, since, until time.Time) ([]TrafficCount, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT source, action, SUM(records), SUM(bytes) FROM traffic_minutes
		WHERE minute >= ? AND minute < ? GROUP BY source, action ORDER BY source, action`, since.Unix(), until.Unix())
	if err != nil {
		return nil, fmt.Errorf("cannot read the traffic by source: %w", err)
	}
	defer rows.Close()
	var out []TrafficCount
	for rows.Next() {
		var c TrafficCount
		if err := rows.Scan(&c.Source, &c.Action, &c.Records, &c.Bytes); err != nil {
			return nil, fmt.Errorf("cannot read the traffic by source: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// TrafficTops returns the first limit keys of a top table over the
// minutes in [since, until): each key's counts summed and its ports
// merged over the minutes that kept it. A key that fell out of some
// minute's first TrafficTopKeep is counted only in the others, so the
// sums are lower bounds; they are exact when no minute had more keys.
func (s *Store) TrafficTops(ctx context.Context, kind string, since, until time.Time, limit int) ([]TrafficTop, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key, n, bytes, p0, p1, p2, p3, p4, p5, p6, p7 FROM traffic_top
		WHERE kind = ? AND minute >= ? AND minute < ?`, kind, since.Unix(), until.Unix())
	if err != nil {
		return nil, fmt.Errorf("cannot read the %s: %w", kind, err)
	}
	defer rows.Close()
	byKey := map[string]*TrafficTop{}
	for rows.Next() {
		var r TrafficTop
		var p [8]int64
		if err := rows.Scan(&r.Key, &r.Count, &r.Bytes, &p[0], &p[1], &p[2], &p[3], &p[4], &p[5], &p[6], &p[7]); err != nil {
			return nil, fmt.Errorf("cannot read the %s: %w", kind, err)
		}
		t := byKey[r.Key]
		if t == nil {
			t = &TrafficTop{Kind: kind, Key: r.Key}
			byKey[r.Key] = t
		}
		t.Count += r.Count
		t.Bytes += r.Bytes
		for i, w := range p {
			t.Ports[i] |= uint64(w)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the %s: %w", kind, err)
	}
	out := make([]TrafficTop, 0, len(byKey))
	for _, t := range byKey {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b TrafficTop) int {
		if kind == TopTalkers {
			if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
				return c
			}
		}
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(b.Bytes, a.Bytes), strings.Compare(a.Key, b.Key))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// saveExplanations records each finding's explanation (a JSON document),
// replacing the one it had. A finding that has no row (a trusted actor's,
// dropped by the policy) gets none.
func saveExplanations(ctx context.Context, tx *sql.Tx, ex map[string][]byte, now time.Time) error {
	for _, id := range slices.Sorted(maps.Keys(ex)) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO finding_explanations(finding_id, body, updated_at)
			SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM findings WHERE id = ?1)
			ON CONFLICT(finding_id) DO UPDATE SET body=excluded.body, updated_at=excluded.updated_at`,
			id, string(ex[id]), nanos(now)); err != nil {
			return fmt.Errorf("cannot record the explanation of finding %s: %w", id, err)
		}
	}
	return nil
}

// Explanation returns the explanation recorded for a finding (the JSON
// document StreamCommit.Explanations gave), or nil when it has none.
func (s *Store) Explanation(ctx context.Context, id string) ([]byte, error) {
	var body string
	err := s.r.QueryRowContext(ctx, `SELECT body FROM finding_explanations WHERE finding_id = ?`, id).Scan(&body)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the explanation of finding %s: %w", id, err)
	}
	return []byte(body), nil
}
