// HTTP/2 and gRPC parsing cost per request: one header block through the
// HPACK decoder, and a whole unary gRPC call (request HEADERS + DATA, response
// HEADERS + DATA + trailers) through the connection handler, with the header
// blocks encoded the way a long-lived channel sends them (dynamic table warm).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "../tests/protocols/http2/http2_test_writer.h"
#include "bench_common.h"
#include "protocols/http2/frames.h"
#include "protocols/http2/hpack.h"
#include "protocols/http2/http2.h"

namespace {

using namespace sonde;
using namespace sonde::protocols;

using protocols::http2::FrameType;
using protocols::test::Bytes;
// One HPACK encoder per direction, as a peer keeps for the connection's life.
using Encoder = protocols::test::HpackEncoder;

void append_frame(Bytes& out, FrameType type, uint8_t flags, uint32_t stream,
                  std::span<const uint8_t> payload) {
    protocols::test::append_frame_header(out, type, flags, stream, uint32_t(payload.size()));
    out.insert(out.end(), payload.begin(), payload.end());
}

constexpr FrameType kData = FrameType::Data, kHeaders = FrameType::Headers,
                    kSettings = FrameType::Settings;
constexpr uint8_t kEndStream = 0x1, kEndHeaders = 0x4;

const protocols::test::Fields kRequestHeaders = {
    {":method", "POST"},
    {":scheme", "http"},
    {":path", "/helloworld.Greeter/SayHello"},
    {":authority", "greeter.example:50051"},
    {"content-type", "application/grpc"},
    {"te", "trailers"},
    {"grpc-accept-encoding", "identity,deflate,gzip"},
    {"user-agent", "grpc-python/1.51.1 grpc-c/29.0.0 (linux; chttp2)"},
    {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
};
const protocols::test::Fields kResponseHeaders = {
    {":status", "200"},
    {"content-type", "application/grpc"},
    {"grpc-accept-encoding", "identity,deflate,gzip"},
};
const protocols::test::Fields kTrailers = {{"grpc-status", "0"}};
// A length-prefixed protobuf message of 12 bytes.
const uint8_t kMessage[] = {0, 0, 0, 0, 7, 0x0a, 5, 'w', 'o', 'r', 'l', 'd'};

// The bytes of `calls` consecutive unary calls on one connection, one piece
// per direction per call, plus the connection's opening.
struct Conversation {
    Bytes opening_client;  // preface + SETTINGS
    Bytes opening_server;  // SETTINGS
    std::vector<Bytes> requests;
    std::vector<Bytes> responses;
};

Conversation make_conversation(size_t calls) {
    Conversation c;
    constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    c.opening_client.assign(kPreface.begin(), kPreface.end());
    append_frame(c.opening_client, kSettings, 0, 0, {});
    append_frame(c.opening_server, kSettings, 0, 0, {});
    Encoder client, server;
    for (size_t i = 0; i < calls; ++i) {
        const auto stream = uint32_t(2 * i + 1);
        Bytes request;
        append_frame(request, kHeaders, kEndHeaders, stream, client.encode(kRequestHeaders));
        append_frame(request, kData, kEndStream, stream, kMessage);
        Bytes response;
        append_frame(response, kHeaders, kEndHeaders, stream, server.encode(kResponseHeaders));
        append_frame(response, kData, 0, stream, kMessage);
        append_frame(response, kHeaders, kEndHeaders | kEndStream, stream,
                     server.encode(kTrailers));
        c.requests.push_back(std::move(request));
        c.responses.push_back(std::move(response));
    }
    return c;
}

StreamPiece piece_of(const Bytes& bytes, uint64_t enter, uint64_t exit) {
    StreamPiece piece;
    piece.captured = bytes;
    piece.length = bytes.size();
    piece.ts_enter_ns = enter;
    piece.ts_exit_ns = exit;
    return piece;
}

// A server's view of a long-lived gRPC channel: every iteration is one call.
// Calls are pre-encoded in batches (stream ids must keep rising), and a new
// connection starts whenever a batch is used up.
void BM_Http2_GrpcUnaryCall(benchmark::State& state) {
    constexpr size_t kCalls = 4096;
    const Conversation c = make_conversation(kCalls);
    std::vector<Exchange> out;
    uint64_t now = 1'000'000, exchanges = 0, expected = 0;
    std::unique_ptr<ProtocolHandler> handler;
    size_t next = kCalls;
    for (auto _ : state) {
        if (next == kCalls) {
            state.PauseTiming();
            handler = http2::make_handler(Role::Server, /*from_connection_start=*/true);
            handler->on_data(Direction::Ingress, piece_of(c.opening_client, now, now + 1), out);
            handler->on_data(Direction::Egress, piece_of(c.opening_server, now, now + 1), out);
            next = 0;
            state.ResumeTiming();
        }
        handler->on_data(Direction::Ingress, piece_of(c.requests[next], now, now + 2'000), out);
        handler->on_data(Direction::Egress, piece_of(c.responses[next], now + 50'000, now + 55'000),
                         out);
        ++next;
        ++expected;
        now += 100'000;
        exchanges += out.size();
        out.clear();
    }
    if (exchanges != expected || handler->stats().parse_errors != 0)
        state.SkipWithError("handler did not produce one exchange per call");
    bench::report_items(state);
}
BENCHMARK(BM_Http2_GrpcUnaryCall);

// The request header block of a warm channel (all fields indexed) decoded.
void BM_Hpack_DecodeWarmRequestBlock(benchmark::State& state) {
    Encoder encoder;
    const Bytes first = encoder.encode(kRequestHeaders);
    const Bytes warm = encoder.encode(kRequestHeaders);
    http2::HpackDecoder decoder(/*history_known=*/true);
    http2::DecodedHeaders headers;
    decoder.decode(first, headers);
    bool ok = true;
    for (auto _ : state) {
        ok &= decoder.decode(warm, headers) == http2::HpackResult::Ok;
        benchmark::DoNotOptimize(headers);
    }
    if (!ok || headers.path != "/helloworld.Greeter/SayHello")
        state.SkipWithError("warm block did not decode");
    bench::report_items(state);
}
BENCHMARK(BM_Hpack_DecodeWarmRequestBlock);

// The first request block of a connection: every field a literal, several Huffman-coded.
void BM_Hpack_DecodeColdRequestBlock(benchmark::State& state) {
    bool ok = true;
    http2::DecodedHeaders headers;
    const Bytes cold = Encoder().encode(kRequestHeaders);
    for (auto _ : state) {
        http2::HpackDecoder decoder(/*history_known=*/true);
        ok &= decoder.decode(cold, headers) == http2::HpackResult::Ok;
        benchmark::DoNotOptimize(headers);
    }
    if (!ok || headers.method != "POST") state.SkipWithError("cold block did not decode");
    bench::report_items(state);
}
BENCHMARK(BM_Hpack_DecodeColdRequestBlock);

}  // namespace
