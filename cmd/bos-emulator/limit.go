package main

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// connCap is a listener that keeps at most max connections open, so idle
// or slow clients cannot take the process to its file-descriptor limit. At
// the cap, a new connection takes the place of the one that has waited
// longest without a request under way (connected but silent, or idle
// between requests): a client that sends its request is served, however
// many idle connections others hold. When every connection is in the middle
// of a request, Accept waits until one closes; their deadlines bound that
// wait.
type connCap struct {
	net.Listener
	max    int
	mu     sync.Mutex
	open   map[*capConn]struct{}
	freed  chan struct{} // a connection closed; capacity 1
	closed chan struct{}
	once   sync.Once
}

func newConnCap(ln net.Listener, max int) *connCap {
	return &connCap{Listener: ln, max: max, open: map[*capConn]struct{}{},
		freed: make(chan struct{}, 1), closed: make(chan struct{})}
}

// capConn is one accepted connection; Close gives its place back.
type capConn struct {
	net.Conn
	l    *connCap
	once sync.Once
	// busy and since are guarded by l.mu: busy while a request is under
	// way (or the connection is hijacked), since when it last stopped being.
	busy  bool
	since time.Time
}

func (c *capConn) Close() error {
	c.once.Do(func() { c.l.release(c) })
	return c.Conn.Close()
}

func (l *connCap) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &capConn{Conn: nc, l: l, since: time.Now()}
	for {
		l.mu.Lock()
		if len(l.open) < l.max {
			l.open[c] = struct{}{}
			l.mu.Unlock()
			return c, nil
		}
		victim := l.longestIdle()
		l.mu.Unlock()
		if victim != nil {
			victim.Close()
			continue
		}
		select {
		case <-l.freed:
		case <-l.closed:
			nc.Close()
			return nil, net.ErrClosed
		}
	}
}

// longestIdle is the connection without a request under way that has
// waited longest, or nil. l.mu is held.
func (l *connCap) longestIdle() *capConn {
	var oldest *capConn
	for c := range l.open {
		if !c.busy && (oldest == nil || c.since.Before(oldest.since)) {
			oldest = c
		}
	}
	return oldest
}

func (l *connCap) release(c *capConn) {
	l.mu.Lock()
	delete(l.open, c)
	l.mu.Unlock()
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

func (l *connCap) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// track is the http.Server's ConnState hook: it tells the cap which
// connections are in the middle of a request.
func (l *connCap) track(nc net.Conn, state http.ConnState) {
	c, ok := nc.(*capConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateActive, http.StateHijacked:
		c.busy = true
	case http.StateIdle:
		c.busy, c.since = false, time.Now()
	}
}

// count and busy are how many connections are open, and in the middle of a
// request, for tests.
func (l *connCap) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

func (l *connCap) busy() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for c := range l.open {
		if c.busy {
			n++
		}
	}
	return n
}
