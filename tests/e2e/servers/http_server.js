'use strict';
// Test HTTP/1.1 server for Sonde's end-to-end tests (Node `http` module).
//
// Usage: node http_server.js <port> [--tls CERT KEY]
//
// Listens on 127.0.0.1:<port>, prints "READY <port>" once accepting, and runs
// until killed. With --tls it serves HTTPS (`https.createServer`, TLS by the
// OpenSSL statically linked into the node binary) with the PEM certificate
// and key files given. Routes (any method):
//   /status/<code>  -> <code>, body "status <code>\n"
//   /sleep/<ms>     -> sleeps, then 200 "slept <ms>\n"
//   /bytes/<n>      -> 200, n bytes of 'x', Content-Length
//   /chunked/<n>    -> 200, n bytes of 'x' via res.write() in up to 4 pieces,
//                      no Content-Length, so Node sends it chunked
//   /upload         -> reads the whole body, 200 "got <N>\n"
//   anything else   -> 404 "not found\n"
// The request body (Content-Length or chunked) is always read first.

const fs = require('fs');
const http = require('http');
const https = require('https');

const NO_BODY_STATUSES = new Set([204, 304]);

function parseTail(path, prefix) {
  if (!path.startsWith(prefix)) return null;
  const tail = path.slice(prefix.length);
  if (!/^[0-9]+$/.test(tail)) return null;
  return parseInt(tail, 10);
}

function sendFixed(res, code, body) {
  const headers = { 'Content-Type': 'text/plain' };
  if (!NO_BODY_STATUSES.has(code)) headers['Content-Length'] = String(body.length);
  res.writeHead(code, headers);
  // For HEAD, Node sends the headers only and drops the body.
  res.end(NO_BODY_STATUSES.has(code) ? undefined : body);
}

function sendChunked(res, n) {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  const parts = 4;
  const base = Math.floor(n / parts);
  const extra = n % parts;
  for (let i = 0; i < parts; i++) {
    const size = base + (i < extra ? 1 : 0);
    if (size > 0) res.write(Buffer.alloc(size, 'x'));
  }
  res.end();
}

function route(req, res, got) {
  const path = req.url.split('?', 1)[0];
  let v = parseTail(path, '/status/');
  if (v !== null && v >= 100 && v <= 599) {
    sendFixed(res, v, Buffer.from(`status ${v}\n`));
    return;
  }
  v = parseTail(path, '/sleep/');
  if (v !== null) {
    const ms = v;
    setTimeout(() => sendFixed(res, 200, Buffer.from(`slept ${ms}\n`)), ms);
    return;
  }
  v = parseTail(path, '/bytes/');
  if (v !== null) {
    sendFixed(res, 200, Buffer.alloc(v, 'x'));
    return;
  }
  v = parseTail(path, '/chunked/');
  if (v !== null) {
    sendChunked(res, v);
    return;
  }
  if (path === '/upload') {
    sendFixed(res, 200, Buffer.from(`got ${got}\n`));
    return;
  }
  sendFixed(res, 404, Buffer.from('not found\n'));
}

function main() {
  const args = process.argv.slice(2);
  const port = parseInt(args[0], 10);
  const tls = args[1] === '--tls' && args.length === 4;
  if (!(port > 0) || !(args.length === 1 || tls)) {
    process.stderr.write('usage: node http_server.js <port> [--tls CERT KEY]\n');
    process.exit(2);
  }
  const handler = (req, res) => {
    let got = 0;
    req.on('data', (chunk) => { got += chunk.length; });
    req.on('end', () => route(req, res, got));
    req.on('error', () => res.destroy());
  };
  const server = tls
    ? https.createServer({ cert: fs.readFileSync(args[2]), key: fs.readFileSync(args[3]) },
      handler)
    : http.createServer(handler);
  server.keepAliveTimeout = 60000;
  server.headersTimeout = 65000;
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`READY ${port}\n`);
  });
  const stop = () => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
