// HTTP client for Sonde's end-to-end tests (Go net/http, stdlib only).
//
// Build: GO111MODULE=off GOCACHE=<dir> go build -o <out> client_go.go
// Usage: <out> <url> [<url>...]
//
// GETs each URL with a fresh http.Client (and its own Transport, so no
// connection is reused between URLs), reads the whole body and prints
// "<status> <url>". Error statuses are not failures: the exit status is 0
// unless a request could not be made at all (then 1).
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: client_go <url> [<url>...]")
		os.Exit(2)
	}
	rc := 0
	for _, url := range os.Args[1:] {
		transport := &http.Transport{}
		client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
		resp, err := client.Get(url)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", url, err)
			rc = 1
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		transport.CloseIdleConnections()
		fmt.Printf("%d %s\n", resp.StatusCode, url)
	}
	os.Exit(rc)
}
