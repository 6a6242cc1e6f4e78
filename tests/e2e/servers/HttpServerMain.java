// Test HTTP/1.1 server for Sonde's end-to-end tests (com.sun.net.httpserver).
//
// Usage: java HttpServerMain.java <port>
//
// Listens on 127.0.0.1:<port>, prints "READY <port>" once accepting, and runs
// until killed. Routes (any method):
//   /status/<code>  -> <code>, body "status <code>\n"
//   /sleep/<ms>     -> sleeps, then 200 "slept <ms>\n"
//   /bytes/<n>      -> 200, n bytes of 'x', Content-Length
//   /chunked/<n>    -> 200, sendResponseHeaders(200, 0) (chunked), n bytes of
//                      'x' in up to 4 write+flush calls
//   /upload         -> reads the whole body, 200 "got <N>\n"
//   anything else   -> 404 "not found\n"
// The request body (Content-Length or chunked) is always read first.
// HEAD responses use sendResponseHeaders(code, -1) and carry the
// Content-Length header of the matching GET, set by hand.

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

public class HttpServerMain {

    static Integer parseTail(String path, String prefix) {
        if (!path.startsWith(prefix)) {
            return null;
        }
        String tail = path.substring(prefix.length());
        if (tail.isEmpty() || tail.length() > 9) {
            return null;
        }
        for (int i = 0; i < tail.length(); i++) {
            char c = tail.charAt(i);
            if (c < '0' || c > '9') {
                return null;
            }
        }
        return Integer.parseInt(tail);
    }

    static long readBody(HttpExchange ex) throws IOException {
        long total = 0;
        byte[] buf = new byte[65536];
        try (InputStream in = ex.getRequestBody()) {
            int n;
            while ((n = in.read(buf)) > 0) {
                total += n;
            }
        }
        return total;
    }

    static boolean isHead(HttpExchange ex) {
        return "HEAD".equalsIgnoreCase(ex.getRequestMethod());
    }

    static void sendFixed(HttpExchange ex, int code, byte[] body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", "text/plain");
        boolean noBody = code == 204 || code == 304;
        if (isHead(ex) || noBody) {
            if (!noBody) {
                ex.getResponseHeaders().set("Content-Length", Integer.toString(body.length));
            }
            ex.sendResponseHeaders(code, -1);
            ex.close();
            return;
        }
        ex.sendResponseHeaders(code, body.length == 0 ? -1 : body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
    }

    static void sendChunked(HttpExchange ex, int n) throws IOException {
        ex.getResponseHeaders().set("Content-Type", "text/plain");
        if (isHead(ex)) {
            ex.getResponseHeaders().set("Transfer-Encoding", "chunked");
            ex.sendResponseHeaders(200, -1);
            ex.close();
            return;
        }
        ex.sendResponseHeaders(200, 0);
        try (OutputStream out = ex.getResponseBody()) {
            final int parts = 4;
            int base = n / parts, extra = n % parts;
            for (int i = 0; i < parts; i++) {
                int size = base + (i < extra ? 1 : 0);
                if (size == 0) {
                    continue;
                }
                byte[] piece = new byte[size];
                Arrays.fill(piece, (byte) 'x');
                out.write(piece);
                out.flush();
            }
        }
    }

    static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    static void handle(HttpExchange ex) throws IOException {
        try {
            long got = readBody(ex);
            String path = ex.getRequestURI().getRawPath();
            Integer v = parseTail(path, "/status/");
            if (v != null && v >= 100 && v <= 599) {
                sendFixed(ex, v, ascii("status " + v + "\n"));
                return;
            }
            v = parseTail(path, "/sleep/");
            if (v != null) {
                try {
                    Thread.sleep(v);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                sendFixed(ex, 200, ascii("slept " + v + "\n"));
                return;
            }
            v = parseTail(path, "/bytes/");
            if (v != null) {
                byte[] body = new byte[v];
                Arrays.fill(body, (byte) 'x');
                sendFixed(ex, 200, body);
                return;
            }
            v = parseTail(path, "/chunked/");
            if (v != null) {
                sendChunked(ex, v);
                return;
            }
            if (path.equals("/upload")) {
                sendFixed(ex, 200, ascii("got " + got + "\n"));
                return;
            }
            sendFixed(ex, 404, ascii("not found\n"));
        } finally {
            ex.close();
        }
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("usage: java HttpServerMain.java <port>");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        // Headers and body go out in separate writes: without TCP_NODELAY,
        // Nagle plus delayed ACK adds about 40 ms to keep-alive requests.
        System.setProperty("sun.net.httpserver.nodelay", "true");
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 128);
        server.createContext("/", HttpServerMain::handle);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        server.setExecutor(pool);
        server.start();
        PrintStream stdout = System.out;
        stdout.println("READY " + port);
        stdout.flush();
    }
}
