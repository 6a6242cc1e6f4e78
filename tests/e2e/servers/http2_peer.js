// HTTP/2 server and client in Node's node:http2 for Sonde's end-to-end tests
// (Node's OpenSSL is built into /usr/bin/node and works on memory BIOs).
//
//   node http2_peer.js server PORT [--tls CERT KEY]
//     http2.createSecureServer (h2 by ALPN) with --tls, else http2.createServer
//     (h2c, prior knowledge). Prints "READY PORT". Routes:
//       /status/<code>  -> that status, body "status <code>\n"
//       /bytes/<n>      -> 200 with n 'x' bytes
//       anything else   -> 404 "not found\n"
//     A request body is read whole before the answer.
//   node http2_peer.js client BASE_URL CAFILE|- PLAN_JSON
//     One session (one connection) for the whole plan, [[method, path, body|null], ...],
//     requests one after the other; prints "<status> <local port>" per request.
'use strict';
const fs = require('fs');
const http2 = require('http2');

function serve(port, tls) {
  const onStream = (stream, headers) => {
    const path = headers[':path'];
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      let status = 404, body = 'not found\n', m;
      if ((m = /^\/status\/(\d{3})$/.exec(path))) {
        status = Number(m[1]);
        body = `status ${status}\n`;
      } else if ((m = /^\/bytes\/(\d+)$/.exec(path))) {
        status = 200;
        body = 'x'.repeat(Number(m[1]));
      }
      if (status === 204 || status === 304) {
        stream.respond({':status': status}, {endStream: true});  // no body, no length
        return;
      }
      stream.respond({':status': status, 'content-type': 'text/plain',
                      'content-length': Buffer.byteLength(body)});
      stream.end(body);
    });
  };
  listen(port, tls, onStream);
}

// Serves `onStream` on 127.0.0.1:PORT (over TLS with tls=[CERT, KEY]), prints
// "READY PORT" and runs until SIGTERM or SIGINT.
function listen(port, tls, onStream) {
  const server = tls
    ? http2.createSecureServer({cert: fs.readFileSync(tls[0]), key: fs.readFileSync(tls[1])})
    : http2.createServer();
  server.on('stream', onStream);
  server.on('sessionError', () => {});
  server.listen(port, '127.0.0.1', () => console.log(`READY ${port}`));
  const stop = () => { server.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function client(base, cafile, plan) {
  const ca = cafile === '-' ? undefined : fs.readFileSync(cafile);
  const session = http2.connect(base, {ca});
  await new Promise((resolve, reject) => { session.once('connect', resolve); session.once('error', reject); });
  const localPort = session.socket.localPort;
  for (const [method, path, body] of plan) {
    await new Promise((resolve, reject) => {
      const headers = {':method': method, ':path': path};
      if (body !== null) headers['content-length'] = Buffer.byteLength(body);
      const req = session.request(headers, {endStream: body === null});
      let status = 0;
      req.on('response', (h) => { status = h[':status']; });
      req.on('data', () => {});
      req.on('end', () => { console.log(`${status} ${localPort}`); resolve(); });
      req.on('error', reject);
      if (body !== null) req.end(body);
    });
  }
  session.close();
}

module.exports = {listen};

const [mode, ...args] = require.main === module ? process.argv.slice(2) : ['module'];
if (mode === 'module') {
  // required by another peer for listen()
} else if (mode === 'server') {
  serve(Number(args[0]), args[1] === '--tls' ? [args[2], args[3]] : null);
} else if (mode === 'client') {
  client(args[0], args[1], JSON.parse(args[2])).catch((err) => {
    console.error(String(err));
    process.exit(1);
  });
} else {
  console.error('usage: http2_peer.js server PORT [--tls CERT KEY] | client BASE CAFILE|- PLAN_JSON');
  process.exit(2);
}
