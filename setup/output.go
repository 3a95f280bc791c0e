package main

import (
	"bytes"
	"io"
	"sync"
)

// lineWriter prefixes each line written to it. Lines from several writers
// sharing one destination (parallel VM bring-up) are never interleaved.
type lineWriter struct {
	mu     *sync.Mutex
	dst    io.Writer
	prefix string
	buf    []byte
}

var outputMu sync.Mutex

func prefixWriter(dst io.Writer, prefix string) io.Writer {
	return &lineWriter{mu: &outputMu, dst: dst, prefix: prefix}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := append([]byte(w.prefix), w.buf[:i+1]...)
		w.buf = w.buf[i+1:]
		if _, err := w.dst.Write(line); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}
