package etcdtest

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Link is one client's own path to the cluster: a loopback TCP proxy per
// member, which the test can cut (every connection dropped, new ones
// closed at once) and restore, to partition that client alone. TLS passes
// through untouched (the certificates name 127.0.0.1).
type Link struct {
	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	ls    []net.Listener
	urls  []string
	wg    sync.WaitGroup
	bytes atomic.Int64
}

// Bytes is how many bytes went through the link, both ways.
func (l *Link) Bytes() int64 { return l.bytes.Load() }

// NewLink starts the proxies; they stop when the test ends.
func (c *Cluster) NewLink(t testing.TB) *Link {
	t.Helper()
	l := &Link{conns: map[net.Conn]struct{}{}}
	for _, m := range c.Members {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.ls = append(l.ls, ln)
		l.urls = append(l.urls, "https://"+ln.Addr().String())
		target := strings.TrimPrefix(m.ClientURL, "https://")
		l.wg.Add(1)
		go l.serve(ln, target)
	}
	t.Cleanup(l.close)
	return l
}

// Endpoints are the proxies' URLs.
func (l *Link) Endpoints() []string { return l.urls }

// Cut drops every connection and refuses new ones (true), or lets them
// through again (false).
func (l *Link) Cut(v bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = v
	if v {
		for c := range l.conns {
			c.Close()
		}
	}
}

func (l *Link) close() {
	for _, ln := range l.ls {
		ln.Close()
	}
	l.Cut(true)
	l.wg.Wait()
}

func (l *Link) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		c.Close()
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *Link) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	c.Close()
}

func (l *Link) serve(ln net.Listener, target string) {
	defer l.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !l.track(c) {
			continue
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			l.untrack(c)
			continue
		}
		if !l.track(up) {
			l.untrack(c)
			continue
		}
		l.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer l.wg.Done()
			_, _ = io.Copy(counter{dst, &l.bytes}, src)
			l.untrack(dst)
			l.untrack(src)
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// counter counts what is written through it.
type counter struct {
	w io.Writer
	n *atomic.Int64
}

func (c counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}
