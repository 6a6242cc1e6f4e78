// The HTTP/2 connection handler fed syscall-sized pieces, as the connection
// tracker does: streams, gRPC status, resets, roles, HPACK history, partial
// capture and resynchronisation, bounds. Conversations are built here with a
// small frame writer and libnghttp2's HPACK encoder.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../handler_test_support.h"
#include "http2_test_writer.h"
#include "protocols/http2/frames.h"
#include "protocols/http2/http2.h"
#include "protocols/registry.h"

namespace sonde::protocols::http2 {
namespace {

using test::Bytes;
using test::Fields;
using Exchanges = test::Exchanges;

Bytes operator+(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

Bytes text(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

// One side's HPACK encoder; every block it writes must encode.
class Encoder : public test::HpackEncoder {
public:
    using HpackEncoder::HpackEncoder;
    Bytes encode(const Fields& fields, bool never_index = false) {
        Bytes block = HpackEncoder::encode(fields, never_index);
        EXPECT_FALSE(failed());
        return block;
    }
};

Bytes frame(FrameType type, uint8_t flag_bits, uint32_t stream, const Bytes& payload) {
    Bytes out;
    test::append_frame_header(out, type, flag_bits, stream, static_cast<uint32_t>(payload.size()));
    return out + payload;
}

struct HeadersOptions {
    bool end_stream = false;
    size_t max_fragment = SIZE_MAX;  // longer blocks go on in CONTINUATION frames
    std::optional<uint8_t> pad;      // PADDED with this many padding bytes
    bool priority = false;
};

Bytes headers(uint32_t stream, const Bytes& block, HeadersOptions o = {}) {
    const size_t first = std::min(block.size(), o.max_fragment);
    uint8_t flag_bits = o.end_stream ? flags::kEndStream : 0;
    if (first == block.size()) flag_bits |= flags::kEndHeaders;
    Bytes payload;
    if (o.pad) {
        flag_bits |= flags::kPadded;
        payload.push_back(*o.pad);
    }
    if (o.priority) {
        flag_bits |= flags::kPriority;
        payload = payload + Bytes{0, 0, 0, 0, 15};
    }
    payload.insert(payload.end(), block.begin(), block.begin() + static_cast<long>(first));
    if (o.pad) payload.insert(payload.end(), *o.pad, 0);
    Bytes out = frame(FrameType::Headers, flag_bits, stream, payload);
    for (size_t pos = first; pos < block.size();) {
        const size_t n = std::min(block.size() - pos, o.max_fragment);
        const Bytes part(block.begin() + static_cast<long>(pos),
                         block.begin() + static_cast<long>(pos + n));
        pos += n;
        out = out + frame(FrameType::Continuation,
                          pos == block.size() ? flags::kEndHeaders : uint8_t{0}, stream, part);
    }
    return out;
}

Bytes data(uint32_t stream, size_t size, bool end_stream = false,
           std::optional<uint8_t> pad = std::nullopt) {
    Bytes payload;
    uint8_t flag_bits = end_stream ? flags::kEndStream : 0;
    if (pad) {
        flag_bits |= flags::kPadded;
        payload.push_back(*pad);
    }
    for (size_t i = 0; i < size; ++i) payload.push_back(static_cast<uint8_t>('a' + i % 26));
    if (pad) payload.insert(payload.end(), *pad, 0);
    return frame(FrameType::Data, flag_bits, stream, payload);
}

Bytes u32(uint32_t v) {
    return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
            static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

Bytes rst(uint32_t stream, uint32_t code) {
    return frame(FrameType::RstStream, 0, stream, u32(code));
}

Bytes settings(const std::vector<std::pair<uint16_t, uint32_t>>& entries = {}) {
    Bytes payload;
    for (const auto& [id, value] : entries) {
        payload =
            payload + Bytes{static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id)} + u32(value);
    }
    return frame(FrameType::Settings, 0, 0, payload);
}

Bytes settings_ack() {
    return frame(FrameType::Settings, flags::kAck, 0, {});
}

Bytes window_update(uint32_t stream, uint32_t increment) {
    return frame(FrameType::WindowUpdate, 0, stream, u32(increment));
}

Bytes ping() {
    return frame(FrameType::Ping, 0, 0, Bytes(8, 1));
}

Bytes goaway(uint32_t last_stream, uint32_t code) {
    return frame(FrameType::GoAway, 0, 0, u32(last_stream) + u32(code) + text("bye"));
}

Bytes preface() {
    return text("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
}

Fields get(std::string path, std::string authority = "api.local") {
    return {{":method", "GET"},
            {":scheme", "http"},
            {":path", std::move(path)},
            {":authority", std::move(authority)}};
}

Fields post(std::string path) {
    return {{":method", "POST"},
            {":scheme", "http"},
            {":path", std::move(path)},
            {":authority", "api.local"},
            {"content-type", "application/json"}};
}

Fields grpc_call(std::string method) {
    return {{":method", "POST"},
            {":scheme", "http"},
            {":path", std::move(method)},
            {":authority", "grpc.local:50051"},
            {"te", "trailers"},
            {"content-type", "application/grpc"},
            {"user-agent", "grpc-c++/1.51"}};
}

Fields status(int code, Fields more = {}) {
    Fields f = {{":status", std::to_string(code)}};
    f.insert(f.end(), more.begin(), more.end());
    return f;
}

Fields grpc_response() {
    return status(200, {{"content-type", "application/grpc"}});
}

Fields grpc_trailers(int code) {
    return {{"grpc-status", std::to_string(code)}, {"grpc-message", code ? "failed" : ""}};
}

// One connection of an HTTP/2 handler; each call is one syscall.
class Conn : public test::Conn {
public:
    Conn(Role role, bool from_start) : test::Conn(make_handler(role, from_start)) {}
};

using test::describe;
using test::expect_clean;
using test::expect_times;

constexpr std::string_view kTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

// Client and server halves of one conversation: their encoders and the
// bytes each wrote per syscall.
struct Write {
    bool from_client;
    Bytes bytes;
};

// A conversation with two plain requests and a gRPC call, as a server sees it.
std::vector<Write> mixed_conversation() {
    Encoder client;
    Encoder server;
    std::vector<Write> w;
    Fields first = get("/users/42?expand=1#top");
    first.emplace_back("traceparent", kTraceparent);
    first.emplace_back("tracestate", "vendor=1");
    w.push_back({true, preface() + settings({{3, 100}}) + window_update(0, 1 << 20) +
                           headers(1, client.encode(first), {.end_stream = true})});
    w.push_back({false, settings({{3, 250}}) + settings_ack()});
    w.push_back({true, settings_ack() + headers(3, client.encode(post("/orders")),
                                                {.max_fragment = 7, .pad = 3})});
    w.push_back({true, data(3, 300) + data(3, 20, true, 4)});
    w.push_back({false, headers(1, server.encode(status(200, {{"content-type", "text/plain"}}))) +
                            data(1, 5) + ping() + data(1, 0, true)});
    w.push_back({true, headers(5, client.encode(grpc_call("/shop.Cart/Add")), {.priority = true}) +
                           data(5, 12, true)});
    w.push_back({false, headers(3, server.encode(status(201))) + data(3, 7, true)});
    w.push_back({false, headers(5, server.encode(grpc_response())) + data(5, 9) +
                            headers(5, server.encode(grpc_trailers(0)), {.end_stream = true})});
    return w;
}

// Feeds the writes of a server-side conversation; write i happens at 100*(i+1).
// `cuts` splits every write into pieces of at most that many bytes.
Exchanges feed_server(const std::vector<Write>& writes, size_t cut,
                      ProtocolStats* stats = nullptr) {
    Conn c(Role::Server, true);
    for (size_t i = 0; i < writes.size(); ++i) {
        const Bytes& b = writes[i].bytes;
        const uint64_t t = 100 * (i + 1);
        for (size_t pos = 0; pos < b.size(); pos += cut) {
            const size_t n = std::min(cut, b.size() - pos);
            c.piece(writes[i].from_client ? Direction::Ingress : Direction::Egress,
                    std::span<const uint8_t>(b).subspan(pos, n), n, t, t + 10);
        }
    }
    c.close(10000);
    if (stats) *stats = c.stats();
    return c.exchanges;
}

TEST(Http2Handler, GetPostAndGrpcWithAllFields) {
    ProtocolStats stats;
    const Exchanges ex = feed_server(mixed_conversation(), SIZE_MAX, &stats);
    expect_clean(stats);
    ASSERT_EQ(ex.size(), 3u);

    EXPECT_EQ(ex[0].method, "GET");
    EXPECT_EQ(ex[0].path, "/users/42");  // query string and fragment stripped
    EXPECT_EQ(ex[0].protocol_version, "2");
    EXPECT_EQ(ex[0].status, 200);
    EXPECT_EQ(ex[0].host, "api.local");
    EXPECT_EQ(ex[0].traceparent, kTraceparent);
    EXPECT_EQ(ex[0].tracestate, "vendor=1");
    EXPECT_EQ(ex[0].request_body_bytes, 0u);
    EXPECT_EQ(ex[0].response_body_bytes, 5u);
    EXPECT_EQ(ex[0].role, Role::Server);
    EXPECT_FALSE(ex[0].grpc);
    EXPECT_EQ(ex[0].grpc_status, -1);
    EXPECT_FALSE(ex[0].reset);
    EXPECT_FALSE(ex[0].partial);
    // Ingress bytes are there when the call returns; Egress ones leave from its entry.
    expect_times(ex[0], 110, 110, 500, 510);

    EXPECT_EQ(ex[1].method, "POST");
    EXPECT_EQ(ex[1].path, "/orders");
    EXPECT_EQ(ex[1].status, 201);
    EXPECT_EQ(ex[1].request_body_bytes, 320u);  // padding is not body
    EXPECT_EQ(ex[1].response_body_bytes, 7u);
    expect_times(ex[1], 310, 410, 700, 710);

    EXPECT_EQ(ex[2].method, "POST");
    EXPECT_EQ(ex[2].path, "/shop.Cart/Add");
    EXPECT_EQ(ex[2].host, "grpc.local:50051");
    EXPECT_TRUE(ex[2].grpc);
    EXPECT_EQ(ex[2].grpc_status, 0);
    EXPECT_EQ(ex[2].request_body_bytes, 12u);
    EXPECT_EQ(ex[2].response_body_bytes, 9u);
    expect_times(ex[2], 610, 610, 800, 810);
}

TEST(Http2Handler, AnySplitOfTheWritesGivesTheSameExchanges) {
    const std::vector<Write> writes = mixed_conversation();
    const Exchanges whole = feed_server(writes, SIZE_MAX);
    ASSERT_EQ(whole.size(), 3u);
    // Pieces of one byte split every frame header; other sizes cut elsewhere.
    for (size_t cut : {1, 2, 3, 5, 8, 9, 10, 13, 64}) {
        ProtocolStats stats;
        const Exchanges got = feed_server(writes, cut, &stats);
        SCOPED_TRACE("cut " + std::to_string(cut));
        expect_clean(stats);
        ASSERT_EQ(got.size(), whole.size());
        for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(describe(got[i]), describe(whole[i]));
    }
}

TEST(Http2Handler, FiveConcurrentStreamsWithInterleavedData) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    Bytes requests = preface() + settings();
    for (uint32_t s = 1; s <= 9; s += 2) {
        requests = requests + headers(s, client.encode(post("/upload/" + std::to_string(s))));
    }
    c.ingress(requests, 10, 11);
    // DATA frames of the five streams alternate; stream s sends s*10 bytes per frame.
    for (int round = 0; round < 3; ++round) {
        Bytes piece;
        for (uint32_t s = 1; s <= 9; s += 2) piece = piece + data(s, s * 10, round == 2);
        c.ingress(piece, 20 + round * 10, 21 + round * 10);
    }
    // Responses in another order, their DATA interleaved too.
    const uint32_t order[] = {7, 1, 9, 3, 5};
    Bytes heads = settings();
    for (uint32_t s : order) heads = heads + headers(s, server.encode(status(200 + s)));
    c.egress(heads, 100, 101);
    for (int round = 0; round < 2; ++round) {
        Bytes piece;
        for (uint32_t s : order) piece = piece + data(s, s, round == 1);
        c.egress(piece, 110 + round * 10, 111 + round * 10);
    }
    ASSERT_EQ(c.exchanges.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
        const uint32_t s = order[i];
        const Exchange& ex = c.exchanges[i];
        SCOPED_TRACE("stream " + std::to_string(s));
        EXPECT_EQ(ex.path, "/upload/" + std::to_string(s));
        EXPECT_EQ(ex.status, static_cast<int>(200 + s));
        EXPECT_EQ(ex.request_body_bytes, 3u * s * 10);
        EXPECT_EQ(ex.response_body_bytes, 2u * s);
        expect_times(ex, 11, 41, 100, 121);
    }
    expect_clean(c.stats());
}

TEST(Http2Handler, GrpcNonOkStatusInTrailers) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    c.ingress(preface() + settings() +
                  headers(1, client.encode(grpc_call("/inventory.Stock/Get"))) + data(1, 20, true),
              1, 2);
    c.egress(settings() + headers(1, server.encode(grpc_response())) + data(1, 0), 3, 4);
    EXPECT_TRUE(c.exchanges.empty());
    c.egress(headers(1, server.encode(grpc_trailers(5)), {.end_stream = true}), 5, 6);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_TRUE(c.exchanges[0].grpc);
    EXPECT_EQ(c.exchanges[0].grpc_status, 5);  // NOT_FOUND
    EXPECT_EQ(c.exchanges[0].status, 200);
    EXPECT_FALSE(c.exchanges[0].reset);
    expect_times(c.exchanges[0], 2, 2, 3, 6);
    expect_clean(c.stats());
}

TEST(Http2Handler, GrpcTrailersOnlyResponse) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    c.ingress(
        preface() + settings() + headers(1, client.encode(grpc_call("/a.B/C"))) + data(1, 5, true),
        1, 2);
    Fields trailers_only = grpc_response();
    trailers_only.emplace_back("grpc-status", "14");
    c.egress(settings() + headers(1, server.encode(trailers_only), {.end_stream = true}), 3, 4);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].grpc_status, 14);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 0u);
    expect_times(c.exchanges[0], 2, 2, 3, 4);
    expect_clean(c.stats());
}

TEST(Http2Handler, GrpcStatusOnlyCountsFromTrailersOrTrailersOnly) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    c.ingress(preface() + headers(1, client.encode(grpc_call("/a.B/C")), {.end_stream = true}), 1,
              2);
    // A grpc-status in leading headers that do not end the stream is not the call's status.
    Fields early = grpc_response();
    early.emplace_back("grpc-status", "3");
    c.egress(headers(1, server.encode(early)) + data(1, 4, true), 3, 4);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].grpc_status, -1);
    EXPECT_TRUE(c.exchanges[0].grpc);
}

TEST(Http2Handler, ResetStreamMapsToGrpcStatus) {
    struct Case {
        uint32_t code;
        bool from_client;
        int grpc_status;
    };
    const Case cases[] = {
        {error_code::kCancel, true, 1},           {error_code::kRefusedStream, false, 14},
        {error_code::kEnhanceYourCalm, false, 8}, {error_code::kInadequateSecurity, false, 7},
        {error_code::kProtocolError, false, 13},  {error_code::kNoError, false, 13},
        {error_code::kInternalError, true, 13},
    };
    for (const Case& k : cases) {
        SCOPED_TRACE("code " + std::to_string(k.code));
        Encoder client;
        Encoder server;
        Conn c(Role::Server, true);
        c.ingress(
            preface() + settings() + headers(1, client.encode(grpc_call("/x.Y/Z"))) + data(1, 30),
            10, 11);
        if (k.from_client) {
            c.egress(settings() + headers(1, server.encode(grpc_response())), 20, 21);
            c.ingress(rst(1, k.code), 30, 31);
        } else {
            c.egress(settings() + rst(1, k.code), 30, 31);
        }
        // Emitted at the reset, not at close.
        ASSERT_EQ(c.exchanges.size(), 1u);
        const Exchange& ex = c.exchanges[0];
        EXPECT_TRUE(ex.reset);
        EXPECT_TRUE(ex.grpc);
        EXPECT_EQ(ex.grpc_status, k.grpc_status);
        EXPECT_EQ(ex.request_body_bytes, 30u);
        if (k.from_client) {
            EXPECT_EQ(ex.status, 200);
            expect_times(ex, 11, 11, 20, 31);
        } else {
            EXPECT_EQ(ex.status, 0);
            expect_times(ex, 11, 11, 30, 31);
        }
        c.close(100);
        expect_clean(c.stats());
    }
}

TEST(Http2Handler, ResetOfPlainHttpHasNoGrpcStatus) {
    Encoder client;
    Conn c(Role::Server, true);
    c.ingress(preface() + headers(1, client.encode(get("/slow")), {.end_stream = true}), 1, 2);
    c.ingress(rst(1, error_code::kCancel), 3, 4);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_TRUE(c.exchanges[0].reset);
    EXPECT_FALSE(c.exchanges[0].grpc);
    EXPECT_EQ(c.exchanges[0].grpc_status, -1);
    // The server's response was already on its way: not an unpaired response.
    Encoder server;
    c.egress(headers(1, server.encode(status(200))) + data(1, 3, true), 5, 6);
    EXPECT_EQ(c.exchanges.size(), 1u);
    expect_clean(c.stats());
}

TEST(Http2Handler, ClientRoleSendsRequestsOnEgress) {
    Encoder client;
    Encoder server;
    Conn c(Role::Client, true);
    c.egress(preface() + settings() + headers(1, client.encode(get("/health"))) +
                 frame(FrameType::Data, flags::kEndStream, 1, {}),
             100, 110);
    c.ingress(settings() + settings_ack(), 120, 130);
    c.ingress(headers(1, server.encode(status(204))), 140, 150);
    c.ingress(data(1, 0, true), 160, 170);
    ASSERT_EQ(c.exchanges.size(), 1u);
    const Exchange& ex = c.exchanges[0];
    EXPECT_EQ(ex.role, Role::Client);
    EXPECT_EQ(ex.status, 204);
    EXPECT_EQ(ex.path, "/health");
    expect_times(ex, 100, 110, 150, 170);
    EXPECT_EQ(c.role(), Role::Client);
    expect_clean(c.stats());
}

// A Go client writes and reads on different threads: a response's record can come
// before the record of the write that sent its request (docs/architecture.md).
TEST(Http2Handler, ClientResponseRecordBeforeItsRequestRecordIsPaired) {
    Encoder client;
    Encoder server;
    Conn c(Role::Client, true);
    c.egress(preface() + settings(), 10, 20);
    c.ingress(settings() + settings_ack(), 30, 40);
    // Stream 1's request write entered at 50; the response was read at 70 and 80.
    c.ingress(headers(1, server.encode(status(200))), 60, 70);
    c.ingress(data(1, 4, true), 75, 80);
    EXPECT_TRUE(c.exchanges.empty());
    c.egress(
        headers(1, client.encode(get("/first"))) + frame(FrameType::Data, flags::kEndStream, 1, {}),
        50, 90);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/first");
    EXPECT_EQ(c.exchanges[0].status, 200);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 4u);
    expect_times(c.exchanges[0], 50, 90, 70, 80);
    // In order again.
    c.egress(headers(3, client.encode(get("/second")), {.end_stream = true}), 100, 110);
    c.ingress(headers(3, server.encode(status(404)), {.end_stream = true}), 120, 130);
    ASSERT_EQ(c.exchanges.size(), 2u);
    EXPECT_EQ(c.exchanges[1].path, "/second");
    EXPECT_EQ(c.exchanges[1].status, 404);
    c.close(200);
    expect_clean(c.stats());
}

TEST(Http2Handler, ClientResponseWhoseRequestNeverComesIsUnpaired) {
    Encoder client;
    Encoder server;
    Conn c(Role::Client, true);
    c.egress(preface() + settings(), 10, 20);
    c.ingress(headers(1, server.encode(status(200)), {.end_stream = true}), 30, 40);
    // The next request is stream 3: stream 1's request is not coming.
    c.egress(headers(3, client.encode(get("/three")), {.end_stream = true}), 50, 60);
    EXPECT_EQ(c.stats().unpaired_responses, 1u);
    c.ingress(headers(3, server.encode(status(200)), {.end_stream = true}), 70, 80);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/three");
    // A held response the connection's end finds is unpaired too.
    c.ingress(headers(5, server.encode(status(200)), {.end_stream = true}), 90, 100);
    c.close(110);
    EXPECT_EQ(c.stats().unpaired_responses, 2u);
    EXPECT_EQ(c.stats().dropped_requests, 0u);
}

TEST(Http2Handler, UnknownRoleFromStartSettlesOnThePreface) {
    Encoder client;
    Encoder server;
    Conn c(Role::Unknown, true);
    // The server's SETTINGS come first: they do not tell who is who.
    c.ingress(settings(), 1, 2);
    EXPECT_EQ(c.role(), Role::Unknown);
    c.egress(preface() + settings() + headers(1, client.encode(get("/")), {.end_stream = true}), 3,
             4);
    EXPECT_EQ(c.role(), Role::Client);
    c.ingress(headers(1, server.encode(status(200)), {.end_stream = true}), 5, 6);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].role, Role::Client);
    expect_clean(c.stats());
}

// The encoders' dynamic tables hold entries from before Sonde attached.
struct MidConnection {
    Encoder client;
    Encoder server;

    MidConnection() {
        Fields request = get("/users", "api.internal:8443");
        request.emplace_back("user-agent", "curl/8.0");
        for (int i = 0; i < 3; ++i) {
            client.encode(request);
            server.encode(status(200, {{"content-type", "application/json"}, {"x-shard", "7"}}));
        }
    }
};

TEST(Http2Handler, UnknownRoleMidConnectionDecodesWhatItCan) {
    MidConnection m;
    Conn c(Role::Unknown, false);
    Fields request = get("/users", "api.internal:8443");
    request.emplace_back("user-agent", "curl/8.0");
    const Bytes req = headers(7, m.client.encode(request), {.end_stream = true});
    // A piece that starts mid-frame cannot be followed: it is skipped.
    c.ingress(Bytes{0x42, 0x17} + req, 1, 2);
    EXPECT_EQ(c.role(), Role::Unknown);
    c.ingress(window_update(0, 100) + req, 3, 4);
    // :method GET is in the static table, :path was sent as a literal, but
    // :authority and user-agent refer to entries from before the attach.
    EXPECT_EQ(c.role(), Role::Server);
    c.egress(headers(7, m.server.encode(status(
                            200, {{"content-type", "application/json"}, {"x-shard", "7"}}))) +
                 data(7, 10, true),
             5, 6);
    ASSERT_EQ(c.exchanges.size(), 1u);
    const Exchange& partial = c.exchanges[0];
    EXPECT_TRUE(partial.partial);
    EXPECT_EQ(partial.method, "GET");
    EXPECT_EQ(partial.path, "/users");
    EXPECT_EQ(partial.host, "");  // never guessed
    EXPECT_EQ(partial.status, 200);
    EXPECT_EQ(partial.response_body_bytes, 10u);
    EXPECT_EQ(partial.role, Role::Server);
    EXPECT_EQ(c.stats().partial_exchanges, 1u);

    // Literal-only blocks decode in full; so do entries inserted after the attach.
    c.ingress(headers(9, m.client.encode(get("/fresh", "new.host")), {.end_stream = true}), 7, 8);
    c.egress(headers(9, m.server.encode(status(404), /*never_index=*/true)) + data(9, 1, true), 9,
             10);
    c.ingress(headers(11, m.client.encode(get("/fresh", "new.host")), {.end_stream = true}), 11,
              12);
    c.egress(headers(11, m.server.encode(status(500), /*never_index=*/true)) + data(11, 1, true),
             13, 14);
    ASSERT_EQ(c.exchanges.size(), 3u);
    for (size_t i = 1; i < 3; ++i) {
        EXPECT_FALSE(c.exchanges[i].partial);
        EXPECT_EQ(c.exchanges[i].method, "GET");
        EXPECT_EQ(c.exchanges[i].path, "/fresh");
        EXPECT_EQ(c.exchanges[i].host, "new.host");
    }
    EXPECT_EQ(c.exchanges[1].status, 404);
    EXPECT_EQ(c.exchanges[2].status, 500);
    EXPECT_EQ(c.stats().partial_exchanges, 1u);
    EXPECT_EQ(c.stats().parse_errors, 0u);
    EXPECT_EQ(c.stats().unpaired_responses, 0u);
}

TEST(Http2Handler, RequestWithNothingDecodableIsStillReported) {
    MidConnection m;
    Conn c(Role::Server, false);
    // Every field of this block refers to the unknown part of the table.
    Fields request = get("/users", "api.internal:8443");
    request.erase(request.begin() + 2);  // no :path literal
    request.emplace_back("user-agent", "curl/8.0");
    Bytes block = m.client.encode(request);
    // Drop :method GET (static index 2, one byte 0x82) and :scheme http (0x86).
    block.erase(std::remove_if(block.begin(), block.end(),
                               [](uint8_t b) { return b == 0x82 || b == 0x86; }),
                block.end());
    c.ingress(headers(1, block), 1, 2);
    c.ingress(data(1, 3, true), 3, 4);
    c.egress(headers(1, m.server.encode(status(200))) + data(1, 2, true), 5, 6);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_TRUE(c.exchanges[0].partial);
    EXPECT_EQ(c.exchanges[0].method, "");
    EXPECT_EQ(c.exchanges[0].path, "");
    EXPECT_EQ(c.exchanges[0].status, 200);
    EXPECT_EQ(c.exchanges[0].request_body_bytes, 3u);
}

TEST(Http2Handler, ResponsesToRequestsSentBeforeAttachAreUnpaired) {
    MidConnection m;
    Conn c(Role::Server, false);
    c.egress(headers(3, m.server.encode(status(200))) + data(3, 100), 1, 2);
    c.egress(headers(3, m.server.encode(grpc_trailers(0)), {.end_stream = true}), 3, 4);
    EXPECT_TRUE(c.exchanges.empty());
    EXPECT_EQ(c.stats().unpaired_responses, 1u);
    // Request DATA and trailers of an older stream open no stream.
    c.ingress(data(1, 10) + headers(1, m.client.encode({{"x-trailer", "1"}}), {.end_stream = true}),
              5, 6);
    c.close(10);
    EXPECT_EQ(c.stats().dropped_requests, 0u);
}

TEST(Http2Handler, PrefaceAfterTheServersSettingsMeansExactDecoding) {
    // The detector saw the server's SETTINGS first and attached "mid-connection";
    // the preface that follows shows the client's history is complete after all.
    Encoder client;
    Encoder server;
    Conn c(Role::Server, false);
    c.egress(settings({{3, 100}}), 1, 2);
    Fields request = get("/a", "svc.local");
    request.emplace_back("user-agent", "h2load");
    c.ingress(preface() + settings() + headers(1, client.encode(request), {.end_stream = true}), 3,
              4);
    c.egress(headers(1, server.encode(status(200))) + data(1, 1, true), 5, 6);
    c.ingress(headers(3, client.encode(request), {.end_stream = true}), 7, 8);  // all indexed now
    c.egress(headers(3, server.encode(status(200))) + data(3, 1, true), 9, 10);
    ASSERT_EQ(c.exchanges.size(), 2u);
    for (const Exchange& ex : c.exchanges) {
        EXPECT_FALSE(ex.partial);
        EXPECT_EQ(ex.host, "svc.local");
        EXPECT_EQ(ex.path, "/a");
    }
    expect_clean(c.stats());
}

TEST(Http2Handler, UncapturedDataPayloadIsCountedNotLost) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    c.ingress(preface() + settings() + headers(1, client.encode(post("/big"))), 1, 2);
    // One write of a 1 MiB DATA frame (plus a padded one) of which 64 bytes were copied.
    // One write of a 1 MiB DATA frame of which 64 bytes were copied.
    const Bytes big = data(1, 1 << 20);
    c.piece(Direction::Ingress, std::span<const uint8_t>(big).first(64), big.size(), 3, 4);
    // A padded one with nothing past its frame header copied.
    const Bytes padded = data(1, 1000, true, 10);
    c.piece(Direction::Ingress, std::span<const uint8_t>(padded).first(9), padded.size(), 5, 6);
    c.egress(settings() + headers(1, server.encode(status(200))), 7, 8);
    const Bytes reply = data(1, 70000, true);
    c.piece(Direction::Egress, std::span<const uint8_t>(reply).first(20), reply.size(), 9, 10);
    ASSERT_EQ(c.exchanges.size(), 1u);
    // The padded frame's Pad Length was not captured: its padding counts as data.
    EXPECT_EQ(c.exchanges[0].request_body_bytes, (1u << 20) + 1000u + 10u);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 70000u);
    expect_times(c.exchanges[0], 2, 6, 7, 10);
    expect_clean(c.stats());
}

TEST(Http2Handler, UncapturedFrameHeaderLosesSyncUntilAPieceStartsWithFrames) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    c.ingress(preface() + settings() + headers(1, client.encode(get("/one")), {.end_stream = true}),
              1, 2);
    c.egress(settings() + headers(1, server.encode(status(200))), 3, 4);
    // DATA and the END_STREAM frame after it in one write; only the first bytes
    // were copied, so the second frame's header is hidden.
    const Bytes hidden = data(1, 100) + data(1, 0, true);
    c.piece(Direction::Egress, std::span<const uint8_t>(hidden).first(50), hidden.size(), 5, 6);
    EXPECT_EQ(c.stats().lost_sync, 1u);
    EXPECT_TRUE(c.exchanges.empty());
    // Junk that does not start a frame is skipped...
    c.egress(Bytes(5, 0xff) + data(1, 3, true), 7, 8);
    EXPECT_TRUE(c.exchanges.empty());
    // ...and a piece that does start with frames resynchronises. The server's
    // encoder state is now unknown: its indexed :status 200 is a static entry,
    // but its dynamic "server" field is not.
    server.encode({{":status", "200"}, {"server", "nginx"}});
    c.ingress(headers(3, client.encode(get("/two")), {.end_stream = true}), 9, 10);
    c.egress(
        headers(3, server.encode({{":status", "200"}, {"server", "nginx"}})) + data(3, 4, true), 11,
        12);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/two");
    EXPECT_EQ(c.exchanges[0].status, 200);
    EXPECT_TRUE(c.exchanges[0].partial);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 4u);
    // Stream 1 never showed its end.
    c.close(20);
    EXPECT_EQ(c.stats().dropped_requests, 1u);
    EXPECT_EQ(c.stats().lost_sync, 1u);
    EXPECT_EQ(c.stats().parse_errors, 0u);
}

TEST(Http2Handler, UncapturedHeaderBlockMakesTheExchangePartial) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    Fields big = get("/big-headers");
    big.emplace_back("cookie", std::string(3000, 'c'));
    const Bytes req = headers(1, client.encode(big), {.end_stream = true});
    c.piece(Direction::Ingress, std::span<const uint8_t>(preface() + req).first(100),
            preface().size() + req.size(), 1, 2);
    EXPECT_EQ(c.stats().lost_sync, 1u);
    c.egress(settings() + headers(1, server.encode(status(200))) + data(1, 1, true), 3, 4);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_TRUE(c.exchanges[0].partial);
    EXPECT_EQ(c.exchanges[0].method, "");
    EXPECT_EQ(c.exchanges[0].status, 200);
    expect_times(c.exchanges[0], 2, 2, 3, 4);
}

// Only the path of :path is kept: an absolute form's authority (credentials included), the
// query string and the fragment never reach a span.
TEST(Http2Handler, PathKeepsNeitherAuthorityNorQueryNorFragment) {
    const std::pair<std::string, std::string> cases[] = {
        {"/a/b?token=secret#frag", "/a/b"},
        {"/a#frag?x", "/a"},
        {"http://user:secret@host.local:8080/x/y?q=secret#f", "/x/y"},
        {"https://host.local?q=secret", "/"},
        {"*", "*"},
    };
    for (const auto& [target, path] : cases) {
        Encoder client;
        Encoder server;
        Conn c(Role::Server, true);
        c.ingress(preface() + headers(1, client.encode(get(target)), {.end_stream = true}), 1, 2);
        c.egress(settings() + headers(1, server.encode(status(200))) + data(1, 0, true), 3, 4);
        ASSERT_EQ(c.exchanges.size(), 1u) << target;
        EXPECT_EQ(c.exchanges[0].path, path) << target;
    }
}

TEST(Http2Handler, InformationalResponsesAreSkipped) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    c.ingress(preface() + headers(1, client.encode(post("/upload"))), 1, 2);
    c.egress(settings() + headers(1, server.encode(status(100))), 3, 4);
    c.ingress(data(1, 50, true), 5, 6);
    c.egress(headers(1, server.encode(status(103, {{"link", "</a.css>; rel=preload"}}))), 7, 8);
    c.egress(headers(1, server.encode(status(201))) + data(1, 2, true), 9, 10);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].status, 201);
    expect_times(c.exchanges[0], 2, 6, 9, 10);
    expect_clean(c.stats());
}

TEST(Http2Handler, OpenStreamsAreBounded) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    c.ingress(preface() + settings(), 1, 2);
    for (uint32_t i = 0; i < 600; ++i) {
        c.ingress(
            headers(2 * i + 1, client.encode(get("/q/" + std::to_string(i))), {.end_stream = true}),
            10 + i, 10 + i);
    }
    // The 88 oldest were dropped to keep 512.
    EXPECT_EQ(c.stats().dropped_requests, 88u);
    c.egress(settings() + headers(1, server.encode(status(200))) + data(1, 0, true), 1000, 1001);
    EXPECT_EQ(c.stats().unpaired_responses, 1u);
    c.egress(headers(2 * 88 + 1, server.encode(status(200))) + data(2 * 88 + 1, 0, true), 1002,
             1003);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/q/88");
    c.close(2000);
    EXPECT_EQ(c.stats().dropped_requests, 88u + 511u);
}

TEST(Http2Handler, HeaderTableSizeFromSettingsAppliesToTheOtherDirection) {
    // The server allows a 64 KiB table for the client's blocks; the client
    // then uses it. Fields that would not fit in 4 KiB stay referable.
    for (bool announced : {true, false}) {
        SCOPED_TRACE(announced ? "announced" : "not announced");
        Encoder client(65536);
        Encoder server;
        client.change_table_size(65536);
        Conn c(Role::Server, true);
        c.ingress(preface() + settings(), 1, 2);
        c.egress(announced ? settings({{setting::kHeaderTableSize, 65536}}) : settings(), 3, 4);
        Fields request = get("/t");
        for (int i = 0; i < 8; ++i) {
            request.emplace_back("x-blob-" + std::to_string(i), std::string(1000, 'a' + i));
        }
        for (uint32_t s = 1; s <= 3; s += 2) {
            c.ingress(settings_ack() + headers(s, client.encode(request), {.end_stream = true}),
                      10 * s, 10 * s + 1);
            c.egress(headers(s, server.encode(status(200))) + data(s, 0, true), 10 * s + 2,
                     10 * s + 3);
        }
        ASSERT_EQ(c.exchanges.size(), 2u);
        if (announced) {
            EXPECT_FALSE(c.exchanges[0].partial);
            EXPECT_FALSE(c.exchanges[1].partial);
            EXPECT_EQ(c.exchanges[1].host, "api.local");
            expect_clean(c.stats());
        } else {
            // Without it the size update is out of bounds: a decoding error.
            EXPECT_GE(c.stats().parse_errors, 1u);
            EXPECT_TRUE(c.exchanges[0].partial);
        }
    }
}

TEST(Http2Handler, ContinuationPaddingAndPriority) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    Fields request = get("/cont");
    request.emplace_back("traceparent", kTraceparent);
    c.ingress(
        preface() + headers(1, client.encode(request),
                            {.end_stream = true, .max_fragment = 3, .pad = 7, .priority = true}),
        1, 2);
    c.egress(settings() +
                 headers(1, server.encode(status(200, {{"server", "x"}})), {.max_fragment = 1}) +
                 data(1, 10, true, 0),
             3, 4);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/cont");
    EXPECT_EQ(c.exchanges[0].traceparent, kTraceparent);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 10u);
    expect_clean(c.stats());
}

TEST(Http2Handler, OversizedHeaderBlockIsSkipped) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    Fields huge = get("/huge");
    for (int i = 0; i < 20; ++i) {
        huge.emplace_back("x-big-" + std::to_string(i), std::string(4000, 'q'));
    }
    c.ingress(preface() + headers(1, client.encode(huge, true),
                                  {.end_stream = true, .max_fragment = 16384}),
              1, 2);
    EXPECT_EQ(c.stats().oversized_heads, 1u);
    c.egress(settings() + headers(1, server.encode(status(431))) + data(1, 0, true), 3, 4);
    // A later literal-only request decodes in full: the stream stays in sync.
    c.ingress(headers(3, client.encode(get("/small"), true), {.end_stream = true}), 5, 6);
    c.egress(headers(3, server.encode(status(200))) + data(3, 0, true), 7, 8);
    ASSERT_EQ(c.exchanges.size(), 2u);
    EXPECT_TRUE(c.exchanges[0].partial);
    EXPECT_EQ(c.exchanges[0].status, 431);
    EXPECT_FALSE(c.exchanges[1].partial);
    EXPECT_EQ(c.exchanges[1].path, "/small");
    EXPECT_EQ(c.stats().lost_sync, 0u);
    EXPECT_EQ(c.stats().parse_errors, 0u);
}

TEST(Http2Handler, InvalidFramesAreParseErrorsAndResync) {
    const std::pair<std::string_view, Bytes> bad[] = {
        {"DATA on stream 0", frame(FrameType::Data, 0, 0, Bytes(4, 1))},
        {"SETTINGS of 7 bytes", frame(FrameType::Settings, 0, 0, Bytes(7, 0))},
        {"PING on a stream", frame(FrameType::Ping, 0, 1, Bytes(8, 0))},
        {"CONTINUATION without HEADERS", frame(FrameType::Continuation, flags::kEndHeaders, 1, {})},
        {"DATA padding past its end", frame(FrameType::Data, flags::kPadded, 1, {200, 1, 2})},
    };
    for (const auto& [name, frame_bytes] : bad) {
        SCOPED_TRACE(std::string(name));
        Encoder client;
        Encoder server;
        Conn c(Role::Server, true);
        c.ingress(preface() + settings(), 1, 2);
        c.ingress(frame_bytes + headers(1, client.encode(get("/lost")), {.end_stream = true}), 3,
                  4);
        EXPECT_EQ(c.stats().parse_errors, 1u);
        c.ingress(headers(3, client.encode(get("/found"), true), {.end_stream = true}), 5, 6);
        c.egress(settings() + headers(3, server.encode(status(200))) + data(3, 0, true), 7, 8);
        ASSERT_EQ(c.exchanges.size(), 1u);
        EXPECT_EQ(c.exchanges[0].path, "/found");
    }
}

TEST(Http2Handler, InterruptedHeaderBlockIsAParseError) {
    Encoder client;
    Conn c(Role::Server, true);
    const Bytes block = client.encode(get("/x"));
    c.ingress(preface() + frame(FrameType::Headers, 0, 1, block) + data(1, 1), 1, 2);
    EXPECT_EQ(c.stats().parse_errors, 1u);
}

TEST(Http2Handler, UnknownFrameTypesAndControlFramesAreSkipped) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    const Bytes altsvc = frame(static_cast<FrameType>(0x0a), 0, 0, Bytes{0, 3, 'h', '2', '='});
    const Bytes priority_update =
        frame(static_cast<FrameType>(0x10), 0xff, 0, u32(1) + text("u=1"));
    c.ingress(preface() + settings() + priority_update + ping() + window_update(0, 5) +
                  headers(1, client.encode(get("/x")), {.end_stream = true}) +
                  frame(FrameType::Priority, 0, 1, Bytes{0, 0, 0, 0, 9}),
              1, 2);
    c.egress(altsvc + settings() + headers(1, server.encode(status(200))) + window_update(1, 9) +
                 frame(static_cast<FrameType>(0xee), 0, 1, Bytes(40000, 7)) + data(1, 3, true),
             3, 4);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 3u);
    expect_clean(c.stats());
}

TEST(Http2Handler, PushPromiseBlocksKeepTheTableInStep) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    c.ingress(preface() + headers(1, client.encode(get("/index.html")), {.end_stream = true}), 1,
              2);
    // The promised request's fields enter the server's table; the response
    // below then refers to them.
    Fields promised_request = get("/style.css", "cdn.local");
    promised_request.emplace_back("x-origin", "cdn.local");
    const Bytes promised = server.encode(promised_request);
    const Bytes promise = frame(FrameType::PushPromise, flags::kEndHeaders | flags::kPadded, 1,
                                Bytes{2} + u32(2) + promised + Bytes{0, 0});
    c.egress(settings() + promise + headers(2, server.encode(status(200))) + data(2, 10, true), 3,
             4);
    c.egress(headers(1, server.encode(status(200, {{"x-origin", "cdn.local"}}))) + data(1, 5, true),
             5, 6);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/index.html");
    EXPECT_EQ(c.exchanges[0].status, 200);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 5u);  // the pushed stream's DATA are not its
    EXPECT_FALSE(c.exchanges[0].partial);
    expect_clean(c.stats());
}

TEST(Http2Handler, GoAwayDropsStreamsAboveLastStreamId) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    Bytes requests = preface();
    for (uint32_t s = 1; s <= 5; s += 2) {
        requests = requests +
                   headers(s, client.encode(get("/g" + std::to_string(s))), {.end_stream = true});
    }
    c.ingress(requests, 1, 2);
    c.egress(settings() + goaway(3, error_code::kNoError), 3, 4);
    for (uint32_t s = 1; s <= 3; s += 2) {
        c.egress(headers(s, server.encode(status(200))) + data(s, 1, true), 5, 6);
    }
    ASSERT_EQ(c.exchanges.size(), 2u);
    c.close(10);
    // Stream 5 was never processed: the client retries it, nothing was lost here.
    expect_clean(c.stats());
}

TEST(Http2Handler, CloseCountsStreamsNeverAnswered) {
    Encoder client;
    Conn c(Role::Server, true);
    c.ingress(preface() + headers(1, client.encode(get("/a")), {.end_stream = true}) +
                  headers(3, client.encode(post("/b"))) + data(3, 5),
              1, 2);
    c.close(3);
    EXPECT_TRUE(c.exchanges.empty());
    EXPECT_EQ(c.stats().dropped_requests, 2u);
    // A closed connection takes no more data.
    c.ingress(headers(5, client.encode(get("/c")), {.end_stream = true}), 4, 5);
    c.close(6);
    EXPECT_EQ(c.stats().dropped_requests, 2u);
}

TEST(Http2Handler, UncapturedPrefaceBytesAreKnownText) {
    Encoder client;
    Encoder server;
    Conn c(Role::Server, true);
    const Bytes first = preface() + settings();
    c.piece(Direction::Ingress, std::span<const uint8_t>(first).first(3), 24, 1, 2);
    c.ingress(settings() + headers(1, client.encode(get("/p")), {.end_stream = true}), 3, 4);
    c.egress(settings() + headers(1, server.encode(status(200))) + data(1, 0, true), 5, 6);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_FALSE(c.exchanges[0].partial);
    expect_clean(c.stats());
}

TEST(Http2Handler, ABrokenPrefaceIsAParseError) {
    Encoder client;
    Conn c(Role::Server, true);
    Bytes broken = preface();
    broken[19] = 'X';  // "...SX\r\n\r\n"
    c.ingress(broken + headers(1, client.encode(get("/")), {.end_stream = true}), 1, 2);
    EXPECT_EQ(c.stats().parse_errors, 1u);
    c.close(3);
    EXPECT_EQ(c.stats().dropped_requests, 0u);  // nothing was taken for a request
}

TEST(Http2Registry, DetectsPrefaceAndMidConnectionFrames) {
    const Bytes with_preface = preface() + settings();
    Detection d = detect_protocol(Direction::Egress, with_preface, Role::Unknown);
    ASSERT_TRUE(d.handler);
    EXPECT_EQ(d.protocol, "http2");
    EXPECT_EQ(d.handler->role(), Role::Client);

    d = detect_protocol(Direction::Ingress, with_preface, Role::Unknown);
    ASSERT_TRUE(d.handler);
    EXPECT_EQ(d.handler->role(), Role::Server);

    d = detect_protocol(Direction::Egress, settings({{3, 100}}), Role::Server);
    ASSERT_TRUE(d.handler);
    EXPECT_EQ(d.protocol, "http2");
    EXPECT_EQ(d.handler->role(), Role::Server);

    d = detect_protocol(Direction::Ingress, data(7, 20), Role::Unknown);
    ASSERT_TRUE(d.handler);
    EXPECT_EQ(d.handler->role(), Role::Unknown);

    d = detect_protocol(Direction::Ingress, text("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
                        Role::Unknown);
    ASSERT_TRUE(d.handler);
    EXPECT_EQ(d.protocol, "http1");

    d = detect_protocol(Direction::Ingress,
                        Bytes{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03},
                        Role::Unknown);
    EXPECT_FALSE(d.handler);
}

}  // namespace
}  // namespace sonde::protocols::http2
