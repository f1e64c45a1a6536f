package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Live updates: GET /api/v1/events is a stream of server-sent events that
// the dashboard listens to instead of polling (it polls when the stream
// is down). The daemon publishes into a Hub; each client has a bounded
// buffer, and a client whose buffer is full is dropped (its browser
// reconnects and reloads), so that a slow reader never holds up the
// daemon.

// Event types.
const (
	// EventFinding: a finding was created or updated (EventFindingData).
	EventFinding = "finding"
	// EventBlock: the response pipeline blocked, would block (dry run)
	// or unblocked an address (respond.Outcome).
	EventBlock = "block"
	// EventTraffic: a commit added records to the traffic aggregates
	// ({"records": N}).
	EventTraffic = "traffic"
	// EventSources: every source's status, as GET /api/v1/sources; sent
	// on connecting and every sourcesEvery.
	EventSources = "sources"
)

// EventFindingData is the data of a finding event.
type EventFindingData struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Severity float64   `json:"severity"`
	Title    string    `json:"title"`
	Count    int64     `json:"count"`
	LastSeen time.Time `json:"last_seen"`
	New      bool      `json:"new"`
}

// Bounds of the event stream.
const (
	clientBuffer = 256             // events queued per client before it is dropped
	maxClients   = 64              // streams at once; more are answered 503
	sourcesEvery = 5 * time.Second // how often the sources' status is sent
	writeTimeout = 10 * time.Second
)

// Hub fans events out to the connected clients. Publish never blocks.
// The zero Hub is not usable; use NewHub.
type Hub struct {
	mu      sync.Mutex
	clients map[*client]struct{}
	dropped atomic.Int64
}

type client struct {
	ch   chan []byte
	gone chan struct{} // closed when the hub drops the client
}

// NewHub returns a hub with no client.
func NewHub() *Hub { return &Hub{clients: map[*client]struct{}{}} }

// Publish sends an event to every client; a client whose buffer is full
// is dropped.
func (h *Hub) Publish(typ string, data any) {
	if h == nil {
		return
	}
	h.mu.Lock()
	n := len(h.clients)
	h.mu.Unlock()
	if n == 0 {
		return
	}
	js, err := json.Marshal(data)
	if err != nil {
		js = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	msg := []byte("event: " + typ + "\ndata: " + string(js) + "\n\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		select {
		case c.ch <- msg:
		default:
			delete(h.clients, c)
			close(c.gone)
			h.dropped.Add(1)
		}
	}
}

// Clients returns the number of connected clients.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Dropped returns how many clients were dropped for falling behind.
func (h *Hub) Dropped() int64 { return h.dropped.Load() }

func (h *Hub) subscribe() (*client, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) >= maxClients {
		return nil, false
	}
	c := &client{ch: make(chan []byte, clientBuffer), gone: make(chan struct{})}
	h.clients[c] = struct{}{}
	return c, true
}

func (h *Hub) unsubscribe(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.gone)
	}
}

// events streams the hub's events to one client, with the sources'
// status now and then (which also keeps the connection alive).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	c, ok := s.hub.subscribe()
	if !ok {
		fail(w, http.StatusServiceUnavailable, "too many event streams (%d); poll the API instead", maxClients)
		return
	}
	defer s.hub.unsubscribe(c)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(msg []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	sources := func() []byte {
		js, _ := json.Marshal(s.sourceStatus())
		return []byte("event: " + EventSources + "\ndata: " + string(js) + "\n\n")
	}
	if !send(append([]byte("retry: 3000\n\n"), sources()...)) {
		return
	}
	tick := time.NewTicker(sourcesEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return // fell behind: the browser reconnects and reloads
		case msg := <-c.ch:
			if !send(msg) {
				return
			}
		case <-tick.C:
			if !send(sources()) {
				return
			}
		}
	}
}
