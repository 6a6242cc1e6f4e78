// HTTP/2 server and client in Node's node:http2 for Sonde's privacy end-to-end
// test: secrets everywhere an application puts them, so the test can prove
// none of them leaves the agent.
//
//   node privacy_h2_peer.js server PORT MARKER [--tls CERT KEY]
//     h2 by ALPN with --tls, else h2c (prior knowledge). Prints "READY PORT".
//     Any request: the body is read whole, then the status of a /status/<code>
//     path (else 200), response headers set-cookie, x-secret-response and
//     www-authenticate holding MARKER plus a tag naming the place, the body
//     "<MARKER>respbody " followed by the request body, and the trailer
//     x-secret-trailer.
//   node privacy_h2_peer.js client BASE_URL CAFILE|- PLAN_JSON
//     First opens and closes one TCP connection to the server, prints
//     "CONNECTED" and waits for a line on stdin (the test waits until the agent
//     instruments this process). Then one session for the plan, [{method, path, headers, body|null}, ...]: the
//     :path is sent exactly as given (a fragment, an absolute form), requests
//     one after the other; prints "<status>" per request, "reset" when the
//     server reset the stream (Node's server refuses an absolute-form :path).
'use strict';
const fs = require('fs');
const http2 = require('http2');
const net = require('net');
const {listen} = require('./http2_peer.js');

function serve(port, marker, tls) {
  const onStream = (stream, headers) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      const m = /^\/status\/(\d{3})/.exec(headers[':path'] || '');
      const status = m ? Number(m[1]) : 200;
      const body = Buffer.concat([Buffer.from(`${marker}respbody `), ...chunks]);
      stream.respond({
        ':status': status, 'content-type': 'text/plain', 'content-length': body.length,
        'set-cookie': `session=${marker}respcookie; HttpOnly`,
        'x-secret-response': `${marker}respheader`,
        'www-authenticate': `Bearer realm="${marker}respauth"`,
      }, {waitForTrailers: true});
      stream.on('wantTrailers', () => stream.sendTrailers({'x-secret-trailer': `${marker}resptrailer`}));
      stream.end(body);
    });
  };
  listen(port, tls, onStream);
}

async function client(base, cafile, plan) {
  const ca = cafile === '-' ? undefined : fs.readFileSync(cafile);
  const url = new URL(base);
  await new Promise((resolve, reject) => {
    const probe = net.connect(Number(url.port), url.hostname, () => { probe.end(); resolve(); });
    probe.on('error', reject);
  });
  console.log('CONNECTED');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
  const session = http2.connect(base, {ca});
  await new Promise((resolve, reject) => { session.once('connect', resolve); session.once('error', reject); });
  for (const {method, path, headers, body} of plan) {
    await new Promise((resolve) => {
      const all = {...headers, ':method': method, ':path': path};
      if (body !== null) all['content-length'] = Buffer.byteLength(body);
      const req = session.request(all, {endStream: body === null});
      let status = 0;
      req.on('response', (h) => { status = h[':status']; });
      req.on('data', () => {});
      req.on('end', () => { console.log(`${status}`); resolve(); });
      req.on('error', () => { console.log('reset'); resolve(); });
      if (body !== null) req.end(body);
    });
  }
  session.close();
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'server') {
  serve(Number(args[0]), args[1], args[2] === '--tls' ? [args[3], args[4]] : null);
} else if (mode === 'client') {
  client(args[0], args[1], JSON.parse(args[2])).catch((err) => {
    console.error(String(err));
    process.exit(1);
  });
} else {
  console.error('usage: privacy_h2_peer.js server PORT MARKER [--tls CERT KEY] | client BASE CAFILE|- PLAN');
  process.exit(2);
}
