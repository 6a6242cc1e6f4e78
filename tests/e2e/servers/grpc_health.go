// The gRPC health service (grpc.health.v1.Health/Check) of Sonde's HTTP/2
// end-to-end tests: server and client in grpc-go (1.33, Debian's
// golang-google-grpc-dev, built in GOPATH mode; no protoc needed), over h2c.
//
//	grpc_health server PORT
//	    Serves grpc.health.v1.Health on 127.0.0.1:PORT and prints "READY PORT".
//	    Known services: "" and "sonde.Serving" (SERVING), "sonde.Down"
//	    (NOT_SERVING); Check of any other service answers NOT_FOUND.
//	grpc_health client PORT SERVICE...
//	    One connection; one Check per SERVICE (an "-" stands for the empty
//	    name); prints "<service> <status code> <serving status> <local port>"
//	    per call, the status code as its number (0 OK, 5 NOT_FOUND, ...).
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func serve(port int) {
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fail("listen: %v", err)
	}
	srv := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus("sonde.Serving", healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus("sonde.Down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, h)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		srv.Stop()
	}()
	fmt.Printf("READY %d\n", port)
	if err := srv.Serve(lis); err != nil {
		fail("serve: %v", err)
	}
}

func client(port int, services []string) {
	var local int
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			local = c.LocalAddr().(*net.TCPAddr).Port
		}
		return c, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, fmt.Sprintf("127.0.0.1:%d", port), grpc.WithInsecure(),
		grpc.WithBlock(), grpc.WithContextDialer(dialer))
	if err != nil {
		fail("dial: %v", err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	for _, name := range services {
		service := name
		if service == "-" {
			service = ""
		}
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		serving := "-"
		if resp != nil {
			serving = resp.Status.String()
		}
		code := codes.OK
		if err != nil {
			code = status.Code(err)
		}
		fmt.Printf("%s %d %s %d\n", name, uint32(code), serving, local)
	}
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: grpc_health server PORT | client PORT SERVICE...")
	}
	port, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fail("bad port %q", os.Args[2])
	}
	switch os.Args[1] {
	case "server":
		serve(port)
	case "client":
		client(port, os.Args[3:])
	default:
		fail("unknown mode %q", os.Args[1])
	}
}
