'use strict';
// The P5 comparison point of bench/run.py: the same Node `http` test server
// (tests/e2e/servers/http_server.js), instrumented in-process by the
// OpenTelemetry Node SDK with its HTTP auto-instrumentation, exporting every
// span (default sampler: all sampled) through a BatchSpanProcessor over
// OTLP/HTTP protobuf.
//
// Usage: node otel_sdk_server.js <port> [--tls CERT KEY]
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  where spans go
//                                       (default http://127.0.0.1:4318/v1/traces)
// Dependencies: bench/node (installed by bench/install-node-deps.sh).
// The SDK is registered BEFORE http_server.js is required, so the
// instrumentation patches `http` as an application's preload would.

const path = require('path');

const nodeModules = path.join(__dirname, 'node', 'node_modules');
const need = (name) => require(path.join(nodeModules, name));

const { NodeTracerProvider } = need('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = need('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = need('@opentelemetry/exporter-trace-otlp-proto');
const { registerInstrumentations } = need('@opentelemetry/instrumentation');
const { HttpInstrumentation } = need('@opentelemetry/instrumentation-http');
const { Resource } = need('@opentelemetry/resources');
const { SEMRESATTRS_SERVICE_NAME } = need('@opentelemetry/semantic-conventions');

const url = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || 'http://127.0.0.1:4318/v1/traces';
const provider = new NodeTracerProvider({
  resource: new Resource({ [SEMRESATTRS_SERVICE_NAME]: 'bench-otel-sdk-server' }),
});
// The SDK's defaults: batches of up to 512 spans, every 5 s or when 512 wait,
// a queue of 2048 (spans beyond it are dropped by the SDK).
provider.addSpanProcessor(new BatchSpanProcessor(new OTLPTraceExporter({ url })));
provider.register(); // global provider, context manager and W3C propagator
registerInstrumentations({ instrumentations: [new HttpInstrumentation()] });

const stop = () => {
  provider.shutdown().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};

// http_server.js installs its own SIGTERM/SIGINT handlers that exit at once;
// ours, added first, would not get the chance to flush. Replace them after it
// has started, so the last batch is exported before exit.
require(path.join(__dirname, '..', 'tests', 'e2e', 'servers', 'http_server.js'));
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.removeAllListeners(sig);
  process.on(sig, stop);
}
