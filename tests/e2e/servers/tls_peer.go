// The peer of scripts/uprobe-hits.py: HTTPS over Go's crypto/tls, which does not use
// OpenSSL, so Sonde's TLS probes count only the other side's calls.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func server(port, cert, key string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.HasPrefix(r.URL.Path, "/bytes/") {
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/bytes/"))
			w.Header().Set("Content-Length", strconv.Itoa(n))
			w.Write([]byte(strings.Repeat("x", n)))
			return
		}
		w.Header().Set("Content-Length", "11")
		w.Write([]byte("status 200\n"))
	})
	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: mux,
		// An empty map turns HTTP/2 off: HTTP/1.1 only, like the other peers.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	go func() {
		for {
			if c, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{InsecureSkipVerify: true}); err == nil {
				c.Close()
				fmt.Println("READY " + port)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	fmt.Fprintln(os.Stderr, srv.ListenAndServeTLS(cert, key))
	os.Exit(1)
}

func client(url, cafile string, n int) {
	pem, err := os.ReadFile(cafile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 1}}
	get := func() {
		resp, err := c.Get(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get()
	fmt.Println("WARM")
	bufio.NewReader(os.Stdin).ReadString('\n')
	for i := 0; i < n; i++ {
		get()
	}
	fmt.Println("DONE")
}

func main() {
	if len(os.Args) == 5 && os.Args[1] == "server" {
		server(os.Args[2], os.Args[3], os.Args[4])
	} else if len(os.Args) == 5 && os.Args[1] == "client" {
		n, _ := strconv.Atoi(os.Args[4])
		client(os.Args[2], os.Args[3], n)
	}
	fmt.Fprintln(os.Stderr, "usage: peer server PORT CERT KEY | peer client URL CAFILE N")
	os.Exit(2)
}
