package daemon

import (
	"sync"
	"time"

	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/server"
	"github.com/flowguard/flowguard/internal/source"
)

// recentRing keeps the raw data the sources other than files delivered
// (Kinesis, Firehose, Kafka, SQS/S3 text chunks, CloudWatch Logs), so
// that queries and the actor timeline can read records the daemon holds
// no file of. It is bounded by total bytes (server.query_buffer) and
// drops the oldest entries first; it lives in memory only, so a restart
// empties it.
type recentRing struct {
	mu      sync.Mutex
	limit   int64
	size    int64
	entries []server.RecentChunk // oldest first, from head
	head    int
}

func newRecentRing(limit int64) *recentRing { return &recentRing{limit: limit} }

// recentLimit is server.query_buffer, or its default.
func recentLimit(cfg *config.Config) int64 {
	if cfg.Server != nil && cfg.Server.QueryBuffer > 0 {
		return int64(cfg.Server.QueryBuffer)
	}
	return config.DefaultQueryBuffer
}

// setLimit changes the bound (a reload), dropping the oldest entries over it.
func (r *recentRing) setLimit(limit int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limit = limit
	r.trim()
}

// objectRef is what an object kept by reference counts against the
// bound besides its size (an object of unknown size counts this only).
const objectRef = 1 << 10

// entrySize is what an entry counts against the bound: its bytes, or for
// an object kept by reference the size a query will read.
func entrySize(e *server.RecentChunk) int64 {
	if e.Open != nil {
		return max(e.Size, 0) + objectRef
	}
	return int64(len(e.Data) + len(e.Header))
}

// add keeps a copy of a chunk's data with its header line, arrival time
// and source; an object read whole (an S3 object) is kept by reference,
// to be read again by a query. A chunk larger than the whole bound is not
// kept.
func (r *recentRing) add(src string, c source.Chunk) {
	if c.Open == nil && len(c.Data) == 0 {
		return
	}
	arrived := c.Arrived
	if arrived.IsZero() {
		arrived = time.Now()
	}
	if c.Open != nil {
		e := server.RecentChunk{Source: src, Name: c.Name, Arrived: arrived, Open: c.Open, Size: c.Size}
		r.mu.Lock()
		defer r.mu.Unlock()
		if n := entrySize(&e); n <= r.limit {
			r.entries = append(r.entries, e)
			r.size += n
			r.trim()
		}
		return
	}
	n := int64(len(c.Data) + len(c.Header))
	r.mu.Lock()
	defer r.mu.Unlock()
	if n > r.limit {
		return
	}
	// A copy: the chunk's slice may hold on to a larger buffer than the
	// bound counts.
	e := server.RecentChunk{Source: src, Name: c.Name, Arrived: arrived, Data: append([]byte(nil), c.Data...)}
	if len(c.Header) > 0 {
		e.Header = append([]byte(nil), c.Header...)
	}
	r.entries = append(r.entries, e)
	r.size += n
	r.trim()
}

// trim drops the oldest entries while the ring is over its bound.
func (r *recentRing) trim() {
	for r.size > r.limit && r.head < len(r.entries) {
		e := &r.entries[r.head]
		r.size -= entrySize(e)
		*e = server.RecentChunk{}
		r.head++
	}
	if r.head > 0 && r.head >= len(r.entries)/2 {
		r.entries = append(r.entries[:0], r.entries[r.head:]...)
		r.head = 0
	}
}

// since returns the entries that arrived at or after t, oldest first.
// Their bytes are never changed: callers may read them without the lock.
func (r *recentRing) since(t time.Time) []server.RecentChunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []server.RecentChunk
	for _, e := range r.entries[r.head:] {
		if !e.Arrived.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

// bytes returns the total size kept.
func (r *recentRing) bytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.size
}

// Recent returns the raw data the sources other than files delivered
// since t and the daemon still keeps (server.query_buffer): what queries
// read besides the followed files.
func (d *Daemon) Recent(t time.Time) []server.RecentChunk { return d.recent.since(t) }
