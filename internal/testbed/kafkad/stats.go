package main

import (
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// requestStats counts the Kafka requests the brokers receive, by API, with
// the bytes of the requests and of their responses, from the framing of
// each connection's byte streams: a request starts with its size, API key,
// version and correlation id; a response with its size and correlation id.
type requestStats struct {
	mu    sync.Mutex
	byKey map[int16]*RequestCount
	conns int64
}

// RequestCount is what the stats say of one API; the testbed reads it as
// JSON.
type RequestCount struct {
	Requests      int64 `json:"requests"`
	RequestBytes  int64 `json:"request_bytes"`
	ResponseBytes int64 `json:"response_bytes"`
}

func newRequestStats() *requestStats { return &requestStats{byKey: map[int16]*RequestCount{}} }

// listen is a kfake.ListenFn whose connections count what they carry.
func (s *requestStats) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return &countingListener{Listener: ln, s: s}, nil
}

// ServeHTTP answers with the counts so far, by API name, and the
// connections accepted under "connections".
func (s *requestStats) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := map[string]any{"connections": s.conns}
	for k, c := range s.byKey {
		out[kmsg.NameForKey(k)] = *c
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *requestStats) count(key int16, req, resp int) {
	s.mu.Lock()
	c := s.byKey[key]
	if c == nil {
		c = &RequestCount{}
		s.byKey[key] = c
	}
	if req > 0 {
		c.Requests++
		c.RequestBytes += int64(req)
	}
	c.ResponseBytes += int64(resp)
	s.mu.Unlock()
}

type countingListener struct {
	net.Listener
	s *requestStats
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.conns++
	l.s.mu.Unlock()
	cc := &countingConn{Conn: c, s: l.s, keys: map[int32]int16{}}
	cc.in.need, cc.out.need = 12, 8
	return cc, nil
}

// countingConn parses the frames of the requests it reads and of the
// responses it writes; a response is counted under its request's API,
// found by correlation id.
type countingConn struct {
	net.Conn
	s       *requestStats
	in, out framer // in: read by the connection's reader; out: by its writer
	mu      sync.Mutex
	keys    map[int32]int16 // correlation id to API key of requests not answered yet
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.feed(p[:n], func(hdr []byte, size int) {
		key := int16(binary.BigEndian.Uint16(hdr[4:]))
		corr := int32(binary.BigEndian.Uint32(hdr[8:]))
		c.mu.Lock()
		c.keys[corr] = key
		c.mu.Unlock()
		c.s.count(key, size, 0)
	})
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.feed(p[:n], func(hdr []byte, size int) {
		corr := int32(binary.BigEndian.Uint32(hdr[4:]))
		c.mu.Lock()
		key, ok := c.keys[corr]
		delete(c.keys, corr)
		c.mu.Unlock()
		if ok {
			c.s.count(key, 0, size)
		}
	})
	return n, err
}

// framer follows the size-prefixed frames of one direction of a
// connection: it collects the first need bytes of each frame and skips the
// rest.
type framer struct {
	need int
	hdr  [12]byte
	n    int // header bytes collected
	left int // bytes of the frame after its header still to come
}

// feed reads p, calling done with each frame's header and its whole size
// (the size field included) once the header is in.
func (f *framer) feed(p []byte, done func(hdr []byte, size int)) {
	for len(p) > 0 {
		if f.n < f.need {
			k := copy(f.hdr[f.n:f.need], p)
			f.n += k
			p = p[k:]
			if f.n < f.need {
				return
			}
			size := 4 + int(binary.BigEndian.Uint32(f.hdr[:4]))
			f.left = size - f.need
			done(f.hdr[:f.need], size)
			if f.left <= 0 {
				f.n = 0
			}
			continue
		}
		k := min(f.left, len(p))
		f.left -= k
		p = p[k:]
		if f.left == 0 {
			f.n = 0
		}
	}
}
