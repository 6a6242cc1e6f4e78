#!/usr/bin/env node
// A real OpenTelemetry SDK client for Sonde's end-to-end tests: the official
// Node tracer (@opentelemetry/sdk-trace-node) starts a CLIENT span per
// request and the SDK's own W3C propagator (@opentelemetry/core) injects its
// traceparent, exactly as an instrumented application would; the test then
// checks that Sonde's server span continues that trace.
//
//   node sdk_client.js URL [COUNT]
//
// Sends COUNT (default 1) GET requests to URL one after another with Node's
// `http` module and prints one JSON line per request on stdout:
//   {"trace_id": "<32 hex>", "span_id": "<16 hex>", "status": <HTTP status>,
//    "traceparent_sent": "<the header the SDK injected>"}
// The ids are read back from the finished span by a span processor, not
// derived from the header. Exits non-zero on any failure (bad arguments, a
// request error, a missing injected header, an unsampled span).
'use strict';

const http = require('http');
const api = require('@opentelemetry/api');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');

function die(message) {
  process.stderr.write(`sdk_client: ${message}\n`);
  process.exit(1);
}

const [urlArg, countArg] = process.argv.slice(2);
if (!urlArg) die('usage: sdk_client.js URL [COUNT]');
const count = countArg === undefined ? 1 : Number(countArg);
if (!Number.isInteger(count) || count < 1) die(`COUNT must be a positive integer, got ${countArg}`);
let url;
try {
  url = new URL(urlArg);
} catch (err) {
  die(`bad URL ${urlArg}: ${err.message}`);
}
if (url.protocol !== 'http:') die(`only http:// URLs are supported, got ${urlArg}`);

// A span processor that keeps the finished spans in memory, so the client
// prints the ids the SDK really used.
const finished = [];
const memoryProcessor = {
  onStart() {},
  onEnd(span) { finished.push(span); },
  forceFlush() { return Promise.resolve(); },
  shutdown() { return Promise.resolve(); },
};

const provider = new NodeTracerProvider(); // default sampler: ParentBased(AlwaysOn)
provider.addSpanProcessor(memoryProcessor);
// register() installs the provider, the async-hooks context manager and the propagator globally.
provider.register({ propagator: new W3CTraceContextPropagator() });
const tracer = api.trace.getTracer('sonde-e2e-sdk-client', '1.0.0');

function request(headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'GET', headers }, (res) => {
      res.resume(); // drain the body
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.setTimeout(10000, () => req.destroy(new Error('request timed out after 10 s')));
    req.on('error', reject);
    req.end();
  });
}

async function one() {
  const span = tracer.startSpan(`GET ${url.pathname}`, { kind: api.SpanKind.CLIENT });
  const ctx = api.trace.setSpan(api.context.active(), span);
  const headers = {};
  api.propagation.inject(ctx, headers); // the SDK writes traceparent (and tracestate if any)
  const traceparent = headers.traceparent;
  if (typeof traceparent !== 'string') {
    span.end();
    throw new Error(`the SDK injected no traceparent (headers: ${JSON.stringify(headers)})`);
  }
  let status;
  try {
    status = await api.context.with(ctx, () => request(headers));
    span.setAttribute('http.response.status_code', status);
  } catch (err) {
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: err.message });
    span.end();
    throw err;
  }
  span.end();
  const done = finished.pop();
  if (!done || done.spanContext().spanId !== span.spanContext().spanId) {
    throw new Error('the span processor did not see the ended span');
  }
  const sc = done.spanContext();
  if (!(sc.traceFlags & api.TraceFlags.SAMPLED)) throw new Error('the SDK span is not sampled');
  return { trace_id: sc.traceId, span_id: sc.spanId, status, traceparent_sent: traceparent };
}

async function main() {
  for (let i = 0; i < count; i++) {
    const line = await one();
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  await provider.shutdown();
}

main().catch((err) => die(err.stack || String(err)));
