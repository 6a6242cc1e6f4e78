// Test HTTP/1.1 server for Sonde's end-to-end tests (Go net/http, stdlib only).
//
// Build: GO111MODULE=off GOCACHE=<dir> go build -o <out> http_server.go
// Usage: <out> <port>
//
// Listens on 127.0.0.1:<port>, prints "READY <port>" once accepting, and runs
// until killed. Routes (any method):
//
//	/status/<code>  -> <code>, body "status <code>\n"
//	/sleep/<ms>     -> sleeps, then 200 "slept <ms>\n"
//	/bytes/<n>      -> 200, n bytes of 'x', Content-Length
//	/chunked/<n>    -> 200, n bytes of 'x' in up to 4 Write+Flush calls and
//	                   no Content-Length, so net/http sends it chunked
//	/upload         -> reads the whole body, 200 "got <N>\n"
//	anything else   -> 404 "not found\n"
//
// The request body (Content-Length or chunked) is always read first.
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func parseTail(path, prefix string) (int, bool) {
	if !strings.HasPrefix(path, prefix) {
		return 0, false
	}
	tail := path[len(prefix):]
	if tail == "" {
		return 0, false
	}
	for _, c := range tail {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(tail)
	if err != nil {
		return 0, false
	}
	return n, true
}

func sendFixed(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	noBody := code == 204 || code == 304
	if !noBody {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(code)
	// net/http drops the body of a HEAD response by itself.
	if !noBody && len(body) > 0 {
		w.Write(body)
	}
}

func sendChunked(w http.ResponseWriter, n int) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	const parts = 4
	base, extra := n/parts, n%parts
	for i := 0; i < parts; i++ {
		size := base
		if i < extra {
			size++
		}
		if size == 0 {
			continue
		}
		w.Write(bytes.Repeat([]byte{'x'}, size))
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func handle(w http.ResponseWriter, r *http.Request) {
	got, err := io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if err != nil {
		w.Header().Set("Connection", "close")
		sendFixed(w, http.StatusBadRequest, []byte("bad body\n"))
		return
	}
	path := r.URL.Path
	if code, ok := parseTail(path, "/status/"); ok && code >= 100 && code <= 599 {
		sendFixed(w, code, []byte(fmt.Sprintf("status %d\n", code)))
		return
	}
	if ms, ok := parseTail(path, "/sleep/"); ok {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		sendFixed(w, http.StatusOK, []byte(fmt.Sprintf("slept %d\n", ms)))
		return
	}
	if n, ok := parseTail(path, "/bytes/"); ok {
		sendFixed(w, http.StatusOK, bytes.Repeat([]byte{'x'}, n))
		return
	}
	if n, ok := parseTail(path, "/chunked/"); ok {
		sendChunked(w, n)
		return
	}
	if path == "/upload" {
		sendFixed(w, http.StatusOK, []byte(fmt.Sprintf("got %d\n", got)))
		return
	}
	sendFixed(w, http.StatusNotFound, []byte("not found\n"))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: http_server <port>")
		os.Exit(2)
	}
	port, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad port:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler:     http.HandlerFunc(handle),
		IdleTimeout: 60 * time.Second,
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		os.Exit(0)
	}()
	// os.Stdout is unbuffered: the line is written at once.
	fmt.Fprintf(os.Stdout, "READY %d\n", port)
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
	}
}
