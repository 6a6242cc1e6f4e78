#!/usr/bin/env node
// An independent OTLP receiver for Sonde's end-to-end tests: no OpenTelemetry
// Collector can be installed on these machines, so this decodes exports with
// the official generated protobuf classes and writes what it got to a file.
//
//   node receiver.js --out FILE [--grpc-port N] [--http-port N] [--host H]
//                    [--fail-first N] [--hang]
//
// See README.md for the output format.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const zlib = require('zlib');
const grpc = require('@grpc/grpc-js');
// Only 0.52.x of otlp-transformer still ships these static decoders.
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');

const collector = root.opentelemetry.proto.collector;
const SIGNALS = {
  traces: {
    grpcPath: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    httpPath: '/v1/traces',
    Request: collector.trace.v1.ExportTraceServiceRequest,
    Response: collector.trace.v1.ExportTraceServiceResponse,
  },
  metrics: {
    grpcPath: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
    httpPath: '/v1/metrics',
    Request: collector.metrics.v1.ExportMetricsServiceRequest,
    Response: collector.metrics.v1.ExportMetricsServiceResponse,
  },
};

function usage(message) {
  process.stderr.write(`receiver: ${message}\n` +
    'usage: receiver.js --out FILE [--grpc-port N] [--http-port N] [--host H] [--fail-first N] [--hang]\n' +
    '                   [--tls-cert PEM --tls-key PEM]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { grpcPort: 0, httpPort: 0, host: '127.0.0.1', out: null, failFirst: 0, hang: false,
    tlsCert: null, tlsKey: null };
  const value = (i) => (i < argv.length ? argv[i] : usage(`${argv[i - 1]} needs a value`));
  const number = (i) => {
    const n = Number(value(i));
    return Number.isInteger(n) && n >= 0 ? n : usage(`${argv[i - 1]} needs a non-negative integer`);
  };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--grpc-port': opts.grpcPort = number(++i); break;
      case '--http-port': opts.httpPort = number(++i); break;
      case '--host': opts.host = value(++i); break;
      case '--out': opts.out = value(++i); break;
      case '--fail-first': opts.failFirst = number(++i); break;
      case '--hang': opts.hang = true; break;
      case '--tls-cert': opts.tlsCert = value(++i); break;
      case '--tls-key': opts.tlsKey = value(++i); break;
      default: usage(`unknown argument ${argv[i]}`);
    }
  }
  if (!opts.out) usage('--out is required');
  if (!opts.tlsCert !== !opts.tlsKey) usage('--tls-cert and --tls-key go together');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// Plain JSON for the tests: ids as lowercase hex (as OTLP/JSON writes them),
// int64 as strings (exact beyond 2^53), enums as numbers, and defaults filled
// in so a test can read e.g. span.kind or parentSpanId without guarding.
const TO_OBJECT = { longs: String, enums: Number, defaults: true, arrays: true };

function hexBytes(value) {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (Array.isArray(value)) return value.map(hexBytes);
  if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) value[key] = hexBytes(value[key]);
  }
  return value;
}

function decodeProtobuf(signal, buffer) {
  const { Request } = SIGNALS[signal];
  return hexBytes(Request.toObject(Request.decode(buffer), TO_OBJECT));
}

// Every export is recorded, failed ones too, so fault tests can count retries.
// One appendFileSync per line: a reader polling the file never sees half a line.
function record(signal, transport, headers, body, answer) {
  const line = JSON.stringify({ signal, transport, answer, headers, body });
  fs.appendFileSync(opts.out, line + '\n');
}

// Decides how to answer the next export: 'unavailable' for the first
// --fail-first ones, then 'none' (never answer) with --hang, else 'ok'.
let exportsSeen = 0;
function nextAnswer() {
  exportsSeen += 1;
  if (exportsSeen <= opts.failFirst) return 'unavailable';
  return opts.hang ? 'none' : 'ok';
}

// ---- gRPC ----------------------------------------------------------------

function metadataHeaders(metadata) {
  const headers = {};
  for (const [key, value] of Object.entries(metadata.getMap())) {
    headers[key] = Buffer.isBuffer(value) ? value.toString('base64') : value; // *-bin keys
  }
  return headers;
}

// Hand-written service definitions: the generated classes have no service
// stubs, and grpc-js only needs the path and the (de)serializers.
function grpcService(signal) {
  const { grpcPath, Response } = SIGNALS[signal];
  return {
    Export: {
      path: grpcPath,
      requestStream: false,
      responseStream: false,
      requestSerialize: (buffer) => buffer,
      requestDeserialize: (buffer) => {
        try {
          return decodeProtobuf(signal, buffer);
        } catch (err) { // grpc-js answers INTERNAL; say why on stderr.
          process.stderr.write(`receiver: bad ${signal} export over grpc: ${err.message}\n`);
          throw err;
        }
      },
      responseSerialize: () => Buffer.from(Response.encode({}).finish()),
      responseDeserialize: (buffer) => buffer,
    },
  };
}

function grpcHandler(signal) {
  return (call, callback) => {
    const answer = nextAnswer();
    record(signal, 'grpc', metadataHeaders(call.metadata), call.request, answer);
    if (answer === 'unavailable') {
      callback({ code: grpc.status.UNAVAILABLE, details: 'receiver: --fail-first' });
    } else if (answer === 'ok') {
      callback(null, {});
    } // 'none': never call back; the client's deadline decides.
  };
}

// ---- HTTP ----------------------------------------------------------------

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function reply(res, status, contentType, body) {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': body.length });
  res.end(body);
}

async function handleHttp(req, res) {
  const path = req.url.split('?')[0];
  const signal = Object.keys(SIGNALS).find((s) => SIGNALS[s].httpPath === path);
  if (!signal) return reply(res, 404, 'text/plain', Buffer.from('not found\n'));
  if (req.method !== 'POST') return reply(res, 405, 'text/plain', Buffer.from('POST only\n'));

  // A missing Content-Type is taken as protobuf so a bare `curl -X POST` works.
  const mediaType = (req.headers['content-type'] || 'application/x-protobuf').split(';')[0].trim().toLowerCase();
  if (mediaType !== 'application/x-protobuf' && mediaType !== 'application/json') {
    return reply(res, 415, 'text/plain', Buffer.from(`unsupported content type ${mediaType}\n`));
  }
  const encoding = (req.headers['content-encoding'] || 'identity').toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip') {
    return reply(res, 415, 'text/plain', Buffer.from(`unsupported content encoding ${encoding}\n`));
  }

  let body;
  try {
    let raw = await readBody(req);
    if (encoding === 'gzip') raw = zlib.gunzipSync(raw);
    if (mediaType === 'application/json') {
      // OTLP/JSON already spells ids as hex and enums as numbers: keep it as sent.
      body = raw.length ? JSON.parse(raw.toString('utf8')) : {};
    } else {
      body = decodeProtobuf(signal, raw);
    }
  } catch (err) {
    process.stderr.write(`receiver: bad ${signal} export over http: ${err.message}\n`);
    return reply(res, 400, 'text/plain', Buffer.from(`cannot decode: ${err.message}\n`));
  }

  const answer = nextAnswer();
  record(signal, 'http', req.headers, body, answer);
  if (answer === 'unavailable') return reply(res, 503, 'text/plain', Buffer.from('receiver: --fail-first\n'));
  if (answer === 'none') return; // never answer; the client's timeout decides.
  // OTLP/HTTP answers in the request's own encoding; an empty response is {} in JSON.
  if (mediaType === 'application/json') return reply(res, 200, 'application/json', Buffer.from('{}'));
  return reply(res, 200, 'application/x-protobuf', Buffer.from(SIGNALS[signal].Response.encode({}).finish()));
}

// ---- start and stop ------------------------------------------------------

const grpcServer = new grpc.Server();
for (const signal of Object.keys(SIGNALS)) {
  grpcServer.addService(grpcService(signal), { Export: grpcHandler(signal) });
}

// With --tls-cert/--tls-key both servers speak TLS only (https, gRPC over TLS).
const tls = opts.tlsCert ? { cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) } : null;
const httpServer = (tls ? (handler) => https.createServer(tls, handler) : http.createServer)((req, res) => {
  handleHttp(req, res).catch((err) => {
    process.stderr.write(`receiver: ${err.stack}\n`);
    if (!res.headersSent) reply(res, 500, 'text/plain', Buffer.from('internal error\n'));
  });
});

function fail(err) {
  process.stderr.write(`receiver: ${err.message}\n`);
  process.exit(1);
}

const grpcCredentials = tls
  ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }], false)
  : grpc.ServerCredentials.createInsecure();
grpcServer.bindAsync(`${opts.host}:${opts.grpcPort}`, grpcCredentials, (err, grpcPort) => {
  if (err) fail(err);
  httpServer.once('error', fail);
  httpServer.listen(opts.httpPort, opts.host, () => {
    process.stdout.write(`READY grpc=${grpcPort} http=${httpServer.address().port}\n`);
  });
});

// Records are written synchronously, so nothing is pending: drop any hung
// calls (--hang) rather than wait for them, and exit 0.
function stop() {
  grpcServer.forceShutdown();
  httpServer.closeAllConnections();
  httpServer.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
