// The HTTP/1 connection handler fed syscall-sized pieces, as the connection
// tracker does: pairing, framing, partial capture, resynchronisation, timing.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "handler_test_support.h"
#include "protocols/http1/http1.h"

namespace sonde::protocols::http1 {
namespace {

using test::expect_clean;
using test::expect_times;
using Exchanges = test::Exchanges;

// One connection of an HTTP/1 handler.
class Conn : public test::Conn {
public:
    explicit Conn(Role role, const Limits& limits = {}) : test::Conn(make_handler(role, limits)) {}
};

std::string sized_body(size_t n) {
    std::string body(n, 'x');
    for (size_t i = 0; i < n; ++i) body[i] = static_cast<char>('a' + i % 26);
    return body;
}

constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

TEST(Http1Handler, GetWithAllFields) {
    Conn c(Role::Server);
    c.ingress(
        "GET /users/42?expand=1#top HTTP/1.1\r\nHost: api.local\r\n"
        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
        "tracestate: vendor=1\r\n\r\n",
        100, 110);
    EXPECT_TRUE(c.exchanges.empty());
    c.egress("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, 210);
    ASSERT_EQ(c.exchanges.size(), 1u);
    const Exchange& ex = c.exchanges[0];
    EXPECT_EQ(ex.method, "GET");
    EXPECT_EQ(ex.path, "/users/42");
    EXPECT_EQ(ex.protocol_version, "1.1");
    EXPECT_EQ(ex.status, 200);
    EXPECT_EQ(ex.host, "api.local");
    EXPECT_EQ(ex.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    EXPECT_EQ(ex.tracestate, "vendor=1");
    EXPECT_EQ(ex.request_body_bytes, 0u);
    EXPECT_EQ(ex.response_body_bytes, 5u);
    EXPECT_EQ(ex.role, Role::Server);
    // Ingress bytes are there when the call returns; Egress ones leave from its entry.
    expect_times(ex, 110, 110, 200, 210);
    expect_clean(c.stats());
}

struct MethodCase {
    std::string_view method;
    std::string_view request_body;
    int status;
    std::string_view response_body;
};

TEST(Http1Handler, MethodsAndStatusesOnOneKeepAliveConnection) {
    const MethodCase cases[] = {
        {"POST", "{\"name\":\"x\"}", 201, "{\"id\":7}"},
        {"PUT", "replace", 200, ""},
        {"DELETE", "", 404, "not found"},
        {"GET", "", 500, "boom"},
        {"PATCH", "p", 200, "patched"},
        {"OPTIONS", "", 204, ""},
    };
    Conn c(Role::Server);
    uint64_t t = 1000;
    for (const MethodCase& m : cases) {
        std::string request = std::string(m.method) + " /r HTTP/1.1\r\nHost: h\r\n";
        if (!m.request_body.empty()) {
            request += "Content-Length: " + std::to_string(m.request_body.size()) + "\r\n";
        }
        request += "\r\n";
        request += m.request_body;
        std::string response = "HTTP/1.1 " + std::to_string(m.status) + " X\r\n";
        if (m.status != 204) {
            response += "Content-Length: " + std::to_string(m.response_body.size()) + "\r\n";
        }
        response += "\r\n";
        response += m.response_body;
        c.ingress(request, t, t + 1);
        c.egress(response, t + 10, t + 11);
        t += 100;
    }
    ASSERT_EQ(c.exchanges.size(), std::size(cases));
    t = 1000;
    for (size_t i = 0; i < std::size(cases); ++i) {
        const Exchange& ex = c.exchanges[i];
        SCOPED_TRACE(std::string(cases[i].method));
        EXPECT_EQ(ex.method, cases[i].method);
        EXPECT_EQ(ex.path, "/r");
        EXPECT_EQ(ex.status, cases[i].status);
        EXPECT_EQ(ex.request_body_bytes, cases[i].request_body.size());
        EXPECT_EQ(ex.response_body_bytes, cases[i].response_body.size());
        expect_times(ex, t + 1, t + 1, t + 10, t + 11);
        t += 100;
    }
    expect_clean(c.stats());
}

TEST(Http1Handler, HeadResponseHasNoBodyDespiteContentLength) {
    Conn c(Role::Server);
    c.ingress("HEAD /big HTTP/1.1\r\n\r\n", 1, 2);
    c.egress("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", 3, 4);
    // Had the handler waited for a body, this response would be swallowed.
    c.ingress("GET /next HTTP/1.1\r\n\r\n", 5, 6);
    c.egress(kOk, 7, 8);
    ASSERT_EQ(c.exchanges.size(), 2u);
    EXPECT_EQ(c.exchanges[0].method, "HEAD");
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 0u);
    expect_times(c.exchanges[0], 2, 2, 3, 4);
    EXPECT_EQ(c.exchanges[1].path, "/next");
    expect_clean(c.stats());
}

TEST(Http1Handler, NoBodyStatusesIgnoreFramingHeaders) {
    Conn c(Role::Server);
    c.ingress("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n", 1, 2);
    c.egress(
        "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        3, 4);
    ASSERT_EQ(c.exchanges.size(), 3u);
    EXPECT_EQ(c.exchanges[0].status, 204);
    EXPECT_EQ(c.exchanges[1].status, 304);
    EXPECT_EQ(c.exchanges[2].status, 200);
    EXPECT_EQ(c.exchanges[2].path, "/c");
    expect_clean(c.stats());
}

TEST(Http1Handler, PipelinedThreeRequestsAndThreeResponsesInOnePieceEach) {
    Conn c(Role::Server);
    c.ingress(
        "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
        "POST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        "DELETE /three HTTP/1.1\r\n\r\n",
        10, 20);
    c.egress(
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1"
        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n22\r\n0\r\n\r\n"
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        30, 40);
    ASSERT_EQ(c.exchanges.size(), 3u);
    const std::pair<std::string_view, int> expected[] = {
        {"/one", 200}, {"/two", 201}, {"/three", 404}};
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(c.exchanges[i].path, expected[i].first);
        EXPECT_EQ(c.exchanges[i].status, expected[i].second);
        expect_times(c.exchanges[i], 20, 20, 30, 40);
    }
    EXPECT_EQ(c.exchanges[1].request_body_bytes, 3u);
    EXPECT_EQ(c.exchanges[1].response_body_bytes, 2u);
    expect_clean(c.stats());
}

TEST(Http1Handler, ChunkedResponseSplitEverywhere) {
    Conn c(Role::Server);
    c.ingress("GET /stream HTTP/1.1\r\n\r\n", 1, 2);
    // Chunk-size lines, an extension and the trailer section all cut in pieces.
    c.egress("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1", 10, 11);
    c.egress("a\r\n0123456789", 20, 21);
    c.egress("abcdefghijklmnop\r", 30, 31);
    c.egress("\n5;name=\"va", 40, 41);
    c.egress("l\"\r\nhello\r\n", 50, 51);
    c.egress("0\r\nX-Checksum: 1", 60, 61);
    c.egress("23\r\n", 70, 71);
    EXPECT_TRUE(c.exchanges.empty());
    c.egress("\r\n", 80, 81);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 0x1au + 5);
    expect_times(c.exchanges[0], 2, 2, 10, 81);
    expect_clean(c.stats());
}

TEST(Http1Handler, ChunkedRequestWithBareLfAndTrailers) {
    Conn c(Role::Server);
    c.ingress("POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 2);
    c.ingress("4\nwiki\n5 ; ext\nMEDIA\n", 3, 4);
    c.ingress("0\nExpires: never\n\n", 5, 6);
    c.egress("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 7, 8);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].request_body_bytes, 9u);
    EXPECT_EQ(c.exchanges[0].status, 201);
    expect_times(c.exchanges[0], 2, 6, 7, 8);
    expect_clean(c.stats());
}

constexpr size_t kCapture = 4096;
constexpr uint64_t kMiB = 1024 * 1024;

TEST(Http1Handler, OneMebibyteContentLengthBodiesWithCapturedPrefixOnly) {
    Conn c(Role::Server);
    // The whole request in one read(): only its first 4 KiB were copied.
    const std::string head =
        "POST /upload HTTP/1.1\r\nContent-Length: " + std::to_string(kMiB) + "\r\n\r\n";
    const std::string request = head + sized_body(kCapture);
    c.piece(Direction::Ingress, std::string_view(request).substr(0, kCapture), head.size() + kMiB,
            100, 150);
    // The response head, then 16 writes of 64 KiB with 4 KiB captured each.
    c.egress("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kMiB) + "\r\n\r\n", 200, 201);
    const std::string prefix = sized_body(kCapture);
    uint64_t t = 300;
    for (int i = 0; i < 16; ++i, t += 10) {
        EXPECT_TRUE(c.exchanges.empty());
        c.piece(Direction::Egress, prefix, 64 * 1024, t, t + 5);
    }
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].request_body_bytes, kMiB);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, kMiB);
    expect_times(c.exchanges[0], 150, 150, 200, t - 10 + 5);
    expect_clean(c.stats());
}

std::string chunk_header(size_t size) {
    char hex[32];
    snprintf(hex, sizeof(hex), "%zx\r\n", size);
    return hex;
}

TEST(Http1Handler, OneMebibyteChunkedBodyWithCapturedPrefixOnly) {
    Conn c(Role::Server);
    c.ingress("GET /download HTTP/1.1\r\n\r\n", 1, 2);
    c.egress("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 10, 11);
    // Each write() is one 64 KiB chunk: size line, data, CRLF; the CRLF is
    // never captured and must be assumed.
    const std::string captured = chunk_header(64 * 1024) + sized_body(kCapture);
    uint64_t t = 100;
    for (int i = 0; i < 16; ++i, t += 10) {
        c.piece(Direction::Egress, std::string_view(captured).substr(0, kCapture),
                chunk_header(64 * 1024).size() + 64 * 1024 + 2, t, t + 5);
    }
    EXPECT_TRUE(c.exchanges.empty());
    c.egress("0\r\n\r\n", t, t + 5);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, kMiB);
    expect_times(c.exchanges[0], 2, 2, 10, t + 5);
    expect_clean(c.stats());
}

TEST(Http1Handler, ChunkedBodyEndingInsideTheUncapturedTail) {
    Conn c(Role::Server);
    c.ingress("GET /all HTTP/1.1\r\n\r\n", 1, 2);
    // Head, one 32 KiB chunk and the last chunk in a single write().
    const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string captured = head + chunk_header(0x8000) + sized_body(kCapture);
    const uint64_t length = head.size() + chunk_header(0x8000).size() + 0x8000 + 2 + 5;
    c.piece(Direction::Egress, std::string_view(captured).substr(0, kCapture), length, 10, 20);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 0x8000u);
    expect_times(c.exchanges[0], 2, 2, 10, 20);
    expect_clean(c.stats());
}

TEST(Http1Handler, GapHidingChunkSizeLineLosesSyncThenRecovers) {
    Conn c(Role::Server);
    c.ingress("GET /a HTTP/1.1\r\n\r\n", 1, 2);
    // Two chunks in one write(); the second chunk's size line is not captured.
    const std::string captured =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n";
    c.piece(Direction::Egress, captured, captured.size() + 20, 3, 4);
    c.egress("ffff\r\n", 5, 6);  // the rest of the body, read blind: no tail shows its end
    EXPECT_EQ(c.stats().lost_sync, 0u);
    c.ingress("GET /b HTTP/1.1\r\n\r\n", 7, 8);
    c.egress(kOk, 9, 10);
    // The next response starting is what proves /a's body end was never seen.
    EXPECT_EQ(c.stats().lost_sync, 1u);
    EXPECT_EQ(c.stats().dropped_requests, 1u);  // /a's response cannot be completed
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/b");
    expect_times(c.exchanges[0], 8, 8, 9, 10);
    EXPECT_EQ(c.stats().parse_errors, 0u);
    EXPECT_EQ(c.stats().unpaired_responses, 0u);
}

TEST(Http1Handler, GapHidingAPipelinedRequestHeadLosesSync) {
    Conn c(Role::Server);
    const std::string first = "POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
    // The next request starts inside the uncaptured tail of the same read().
    c.piece(Direction::Ingress, first, first.size() + 30, 1, 2);
    EXPECT_EQ(c.stats().lost_sync, 1u);
    c.ingress("Host: h\r\n\r\n", 3, 4);  // mid-head: skipped
    c.egress(kOk, 5, 6);
    c.ingress("GET /c HTTP/1.1\r\n\r\n", 7, 8);
    c.egress("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 9, 10);
    ASSERT_EQ(c.exchanges.size(), 2u);
    EXPECT_EQ(c.exchanges[0].path, "/a");
    EXPECT_EQ(c.exchanges[0].request_body_bytes, 10u);
    EXPECT_EQ(c.exchanges[1].path, "/c");
    EXPECT_EQ(c.exchanges[1].status, 202);
    EXPECT_EQ(c.stats().parse_errors, 0u);
}

TEST(Http1Handler, HundredContinueIsSkipped) {
    Conn c(Role::Server);
    c.ingress("PUT /file HTTP/1.1\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\n", 100, 110);
    c.egress("HTTP/1.1 100 Continue\r\n\r\n", 200, 210);
    EXPECT_TRUE(c.exchanges.empty());
    c.ingress("abcdef", 300, 310);
    c.egress("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 400, 410);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].status, 201);
    EXPECT_EQ(c.exchanges[0].request_body_bytes, 6u);
    expect_times(c.exchanges[0], 110, 310, 400, 410);
    expect_clean(c.stats());
}

TEST(Http1Handler, EarlyHintsInSamePieceAsFinalResponse) {
    Conn c(Role::Server);
    c.ingress("GET / HTTP/1.1\r\n\r\n", 1, 2);
    c.egress("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 3, 4);
    c.egress(kOk, 5, 6);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].status, 200);
    expect_times(c.exchanges[0], 2, 2, 5, 6);
    expect_clean(c.stats());
}

TEST(Http1Handler, SwitchingProtocolsEndsParsing) {
    Conn c(Role::Server);
    c.ingress("GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
              1, 2);
    c.egress(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        "\x81\x05hello",
        3, 4);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].status, 101);
    expect_times(c.exchanges[0], 2, 2, 3, 4);
    // WebSocket frames, some looking like HTTP: none of it is parsed.
    c.ingress("\x81\x85GET / HTTP/1.1\r\n\r\n", 5, 6);
    c.egress("HTTP/1.1 200 OK\r\n\r\n", 7, 8);
    c.close(9);
    EXPECT_EQ(c.exchanges.size(), 1u);
    expect_clean(c.stats());
}

TEST(Http1Handler, ConnectTunnelEndsParsing) {
    Conn c(Role::Server);
    c.ingress("CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n", 1, 2);
    c.egress("HTTP/1.1 200 Connection Established\r\n\r\n", 3, 4);
    c.ingress("\x16\x03\x01 tls bytes", 5, 6);
    c.egress("\x16\x03\x03 tls bytes", 7, 8);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "db:5432");
    expect_clean(c.stats());
}

TEST(Http1Handler, ResponseUntilCloseCompletesOnClose) {
    Conn c(Role::Server);
    c.ingress("GET /legacy HTTP/1.0\r\n\r\n", 1, 2);
    c.egress("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabc", 10, 11);
    c.egress("defgh", 20, 21);
    c.piece(Direction::Egress, "partial", 1000, 30, 31);
    EXPECT_TRUE(c.exchanges.empty());
    c.close(99);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].protocol_version, "1.0");
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 3u + 5 + 1000);
    // The body ends with its last byte, not when the socket is closed.
    expect_times(c.exchanges[0], 2, 2, 10, 31);
    c.close(100);
    EXPECT_EQ(c.exchanges.size(), 1u);
    expect_clean(c.stats());
}

TEST(Http1Handler, ResponseWithoutRequestIsUnpaired) {
    Conn c(Role::Server);
    c.egress(kOk, 1, 2);
    EXPECT_TRUE(c.exchanges.empty());
    EXPECT_EQ(c.stats().unpaired_responses, 1u);
    c.ingress("GET / HTTP/1.1\r\n\r\n", 3, 4);
    c.egress(kOk, 5, 6);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.stats().unpaired_responses, 1u);
}

TEST(Http1Handler, HeadsSplitByteByByte) {
    Conn c(Role::Server);
    const std::string request =
        "POST /split?q=1 HTTP/1.1\r\nHost: bytes\r\nContent-Length: 4\r\n\r\nbody";
    const std::string response = "HTTP/1.1 202 Accepted\r\nContent-Length: 3\r\n\r\nyes";
    uint64_t t = 1000;
    for (char ch : request) {
        c.ingress(std::string_view(&ch, 1), t, t + 1);
        t += 10;
    }
    const uint64_t request_last = t - 10 + 1;
    const uint64_t response_first = t;
    for (char ch : response) {
        c.egress(std::string_view(&ch, 1), t, t + 1);
        t += 10;
    }
    ASSERT_EQ(c.exchanges.size(), 1u);
    const Exchange& ex = c.exchanges[0];
    EXPECT_EQ(ex.path, "/split");
    EXPECT_EQ(ex.host, "bytes");
    EXPECT_EQ(ex.status, 202);
    EXPECT_EQ(ex.request_body_bytes, 4u);
    EXPECT_EQ(ex.response_body_bytes, 3u);
    expect_times(ex, 1001, request_last, response_first, t - 10 + 1);
    expect_clean(c.stats());
}

TEST(Http1Handler, ClientRole) {
    Conn c(Role::Client);
    c.egress("GET /remote HTTP/1.1\r\nHost: upstream\r\n\r\n", 100, 110);
    c.ingress("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", 200, 210);
    c.ingress("data", 300, 310);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].role, Role::Client);
    EXPECT_EQ(c.exchanges[0].host, "upstream");
    // The client's request leaves from the write's entry; the response has
    // arrived when each read returns.
    expect_times(c.exchanges[0], 100, 110, 210, 310);
    EXPECT_EQ(c.role(), Role::Client);
    expect_clean(c.stats());
}

// A client writing and reading on different threads (Go) can have its response's
// read reach the agent before the write that sent the request: the pair is
// restored when the request was sent before the response began.
TEST(Http1Handler, ClientResponseRecordArrivingBeforeItsRequestIsPaired) {
    Conn c(Role::Client);
    c.egress("GET /first HTTP/1.1\r\n\r\n", 10, 20);
    c.ingress(kOk, 30, 40);
    // Request 2's write entered at 50 and returned at 90; its response's read
    // returned at 70 and was delivered first.
    c.ingress("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop", 60, 70);
    EXPECT_EQ(c.exchanges.size(), 1u);
    c.egress(
        "POST /second HTTP/1.1\r\nHost: h\r\ntraceparent: "
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
        "Content-Length: 5\r\n\r\nhello",
        50, 90);
    ASSERT_EQ(c.exchanges.size(), 2u);
    const Exchange& ex = c.exchanges[1];
    EXPECT_EQ(ex.method, "POST");
    EXPECT_EQ(ex.path, "/second");
    EXPECT_EQ(ex.host, "h");
    EXPECT_EQ(ex.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    EXPECT_EQ(ex.status, 404);
    EXPECT_EQ(ex.request_body_bytes, 5u);
    EXPECT_EQ(ex.response_body_bytes, 3u);
    EXPECT_EQ(ex.role, Role::Client);
    expect_times(ex, 50, 90, 70, 70);
    // The connection goes on in order.
    c.egress("GET /third HTTP/1.1\r\n\r\n", 100, 110);
    c.ingress(kOk, 120, 130);
    ASSERT_EQ(c.exchanges.size(), 3u);
    EXPECT_EQ(c.exchanges[2].path, "/third");
    EXPECT_EQ(c.exchanges[2].status, 200);
    c.close(200);
    expect_clean(c.stats());
}

TEST(Http1Handler, ClientResponseBeforeAnyRequestOfItsConnectionIsPaired) {
    Conn c(Role::Client);
    c.ingress("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", 30, 40);
    c.ingress("2\r\nok\r\n0\r\n\r\n", 41, 45);
    c.egress("PUT /made HTTP/1.1\r\n\r\n", 10, 50);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/made");
    EXPECT_EQ(c.exchanges[0].status, 201);
    EXPECT_EQ(c.exchanges[0].response_body_bytes, 2u);
    expect_times(c.exchanges[0], 10, 50, 40, 45);
    expect_clean(c.stats());
}

TEST(Http1Handler, ClientResponseWithNoRequestSentBeforeItStaysUnpaired) {
    Conn c(Role::Client);
    c.ingress(kOk, 30, 40);
    // Sent after the response had arrived: not its request.
    c.egress("GET /later HTTP/1.1\r\n\r\n", 50, 60);
    EXPECT_TRUE(c.exchanges.empty());
    EXPECT_EQ(c.stats().unpaired_responses, 1u);
    c.ingress("HTTP/1.1 204 No Content\r\n\r\n", 70, 80);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/later");
    EXPECT_EQ(c.exchanges[0].status, 204);
    EXPECT_EQ(c.stats().unpaired_responses, 1u);
    EXPECT_EQ(c.stats().dropped_requests, 0u);
}

TEST(Http1Handler, HeldClientResponseIsUnpairedWhenAnotherArrivesOrTheConnectionCloses) {
    Conn c(Role::Client);
    c.ingress(kOk, 30, 40);
    c.ingress(kOk, 50, 60);
    EXPECT_EQ(c.stats().unpaired_responses, 1u);
    c.close(100);
    EXPECT_TRUE(c.exchanges.empty());
    EXPECT_EQ(c.stats().unpaired_responses, 2u);
}

TEST(Http1Handler, UnknownRoleBecomesClientFromFirstEgressRequest) {
    Conn c(Role::Unknown);
    // A response seen first (connection picked up midway) must not be taken
    // for a request: the role stays undecided.
    c.ingress(kOk, 1, 2);
    EXPECT_EQ(c.role(), Role::Unknown);
    c.egress("GET /x HTTP/1.1\r\n\r\n", 3, 4);
    EXPECT_EQ(c.role(), Role::Client);
    c.ingress(kOk, 5, 6);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].role, Role::Client);
    expect_times(c.exchanges[0], 3, 4, 6, 6);
    expect_clean(c.stats());
}

TEST(Http1Handler, UnknownRoleBecomesServerFromFirstIngressRequest) {
    Conn c(Role::Unknown);
    c.egress("\x17\x03\x03 not http", 1, 2);
    c.ingress("body bytes of a request we missed", 3, 4);
    EXPECT_EQ(c.role(), Role::Unknown);
    c.ingress("GET /y HTTP/1.1\r\n\r\n", 5, 6);
    EXPECT_EQ(c.role(), Role::Server);
    c.egress(kOk, 7, 8);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].role, Role::Server);
    EXPECT_EQ(c.exchanges[0].path, "/y");
    expect_clean(c.stats());
}

TEST(Http1Handler, UnknownRoleReadsAShortFirstResponsePiece) {
    Conn c(Role::Unknown);
    c.ingress("GET /z HTTP/1.1\r\n\r\n", 1, 2);
    // Too short to be recognised on its own, but nothing was missed before it.
    c.egress("HTTP/1.1 2", 3, 4);
    c.egress("00 OK\r\nContent-Length: 0\r\n\r\n", 5, 6);
    ASSERT_EQ(c.exchanges.size(), 1u);
    expect_times(c.exchanges[0], 2, 2, 3, 6);
    expect_clean(c.stats());
}

TEST(Http1Handler, UnknownRoleSeeksAResponseAfterIgnoredBytes) {
    Conn c(Role::Unknown);
    c.egress("tail of an earlier response body", 1, 2);
    c.ingress("GET /z HTTP/1.1\r\n\r\n", 3, 4);
    c.egress("more of that body\r\n\r\n", 5, 6);  // must not be read as a response head
    c.egress(kOk, 7, 8);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].status, 200);
    expect_times(c.exchanges[0], 4, 4, 7, 8);
    expect_clean(c.stats());
}

TEST(Http1Handler, RequestsPendingAtCloseAreDropped) {
    Conn c(Role::Server);
    c.ingress("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n", 1, 2);
    c.egress(kOk, 3, 4);
    c.close(5);
    EXPECT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.stats().dropped_requests, 2u);
    c.ingress("GET /late HTTP/1.1\r\n\r\n", 6, 7);  // after close: ignored
    c.egress(kOk, 8, 9);
    EXPECT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.stats().unpaired_responses, 0u);
}

std::string status_response(int status) {
    return "HTTP/1.1 " + std::to_string(status) + " S\r\nContent-Length: 0\r\n\r\n";
}

TEST(Http1Handler, PendingQueueOverflowKeepsLaterPairsAligned) {
    Limits limits;
    limits.max_pending_requests = 2;
    Conn c(Role::Server, limits);
    c.ingress("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n", 1, 2);
    EXPECT_EQ(c.stats().dropped_requests, 1u);  // /3 did not fit
    c.egress(status_response(201), 3, 4);
    c.ingress("GET /4 HTTP/1.1\r\n\r\n", 5, 6);
    c.egress(status_response(202) + status_response(203) + status_response(204), 7, 8);
    ASSERT_EQ(c.exchanges.size(), 3u);
    EXPECT_EQ(c.exchanges[0].path, "/1");
    EXPECT_EQ(c.exchanges[0].status, 201);
    EXPECT_EQ(c.exchanges[1].path, "/2");
    EXPECT_EQ(c.exchanges[1].status, 202);
    // 203 answered the dropped /3; /4 gets the next one.
    EXPECT_EQ(c.exchanges[2].path, "/4");
    EXPECT_EQ(c.exchanges[2].status, 204);
    EXPECT_EQ(c.stats().dropped_requests, 1u);
    EXPECT_EQ(c.stats().unpaired_responses, 0u);
}

TEST(Http1Handler, OversizedHeadIsCountedAndStreamResyncs) {
    Limits limits;
    limits.max_head_bytes = 128;
    Conn c(Role::Server, limits);
    const std::string big = "GET /big HTTP/1.1\r\nCookie: " + std::string(150, 'c') + "\r\n\r\n";
    c.ingress(std::string_view(big).substr(0, 60), 1, 2);
    c.ingress(std::string_view(big).substr(60), 3, 4);
    EXPECT_EQ(c.stats().oversized_heads, 1u);
    c.egress("HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\n\r\n", 5, 6);
    EXPECT_EQ(c.stats().unpaired_responses, 1u);
    c.ingress("GET /small HTTP/1.1\r\n\r\n", 7, 8);
    c.egress(kOk, 9, 10);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/small");
    EXPECT_EQ(c.stats().parse_errors, 0u);
}

TEST(Http1Handler, GarbageIsAParseErrorThenResyncs) {
    Conn c(Role::Server);
    c.ingress(std::string_view("\x00\x01\x02 binary", 10), 1, 2);
    EXPECT_EQ(c.stats().parse_errors, 1u);
    c.ingress("more garbage GET / HTTP/1.1\r\n\r\n", 3, 4);  // not at a piece start
    c.ingress("GET /ok HTTP/1.1\r\n\r\n", 5, 6);
    c.egress(kOk, 7, 8);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/ok");
    EXPECT_EQ(c.stats().parse_errors, 1u);
}

TEST(Http1Handler, BadChunkSizeDropsTheRequestItAnswers) {
    Conn c(Role::Server);
    c.ingress("GET /a HTTP/1.1\r\n\r\n", 1, 2);
    c.egress("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 3, 4);
    EXPECT_EQ(c.stats().parse_errors, 1u);
    EXPECT_EQ(c.stats().dropped_requests, 1u);
    c.ingress("GET /b HTTP/1.1\r\n\r\n", 5, 6);
    c.egress(kOk, 7, 8);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].path, "/b");
}

TEST(Http1Handler, EarlyResponseBeforeRequestBodyEnds) {
    Conn c(Role::Server);
    c.ingress("POST /huge HTTP/1.1\r\nContent-Length: 1000\r\n\r\n0123456789", 1, 2);
    c.egress("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n", 3, 4);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].status, 413);
    EXPECT_EQ(c.exchanges[0].request_body_bytes, 1000u);
    expect_times(c.exchanges[0], 2, 2, 3, 4);
    // The rest of the body still has to be skipped to find the next request.
    c.piece(Direction::Ingress, "", 990, 5, 6);
    c.ingress("GET /next HTTP/1.1\r\n\r\n", 7, 8);
    c.egress(kOk, 9, 10);
    ASSERT_EQ(c.exchanges.size(), 2u);
    EXPECT_EQ(c.exchanges[1].path, "/next");
    expect_clean(c.stats());
}

TEST(Http1Handler, StrayCrlfBetweenMessagesIsIgnored) {
    Conn c(Role::Server);
    c.ingress("POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi\r\n", 1, 2);
    c.egress(kOk, 3, 4);
    c.ingress("\r\n", 5, 6);
    c.ingress("GET /b HTTP/1.1\r\n\r\n", 7, 8);
    c.egress(kOk, 9, 10);
    ASSERT_EQ(c.exchanges.size(), 2u);
    EXPECT_EQ(c.exchanges[1].path, "/b");
    expect_times(c.exchanges[1], 8, 8, 9, 10);
    expect_clean(c.stats());
}

TEST(Http1Handler, HeadCompletedByTheSamePieceThatStartsTheBody) {
    Conn c(Role::Server);
    c.ingress("PUT /p HTTP/1.1\r\nContent-Le", 1, 2);
    c.ingress("ngth: 8\r\n\r\nfour", 3, 4);
    c.ingress("more", 5, 6);
    c.egress("HTTP/1.1 204 No Content\r\n\r\n", 7, 8);
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].request_body_bytes, 8u);
    expect_times(c.exchanges[0], 2, 6, 7, 8);
    expect_clean(c.stats());
}

TEST(Http1Handler, EmptyPiecesAndInconsistentLengthsAreHarmless) {
    Conn c(Role::Server);
    c.piece(Direction::Ingress, "", 0, 1, 2);
    // length smaller than what was captured: the captured bytes are trusted.
    c.piece(Direction::Ingress, "GET / HTTP/1.1\r\n\r\n", 3, 3, 4);
    c.egress(kOk, 5, 6);
    ASSERT_EQ(c.exchanges.size(), 1u);
    expect_clean(c.stats());
}

// Node corks a whole chunked response into one writev: the chunk-size lines
// after the first large chunk fall outside the captured prefix. The message
// must still end where the syscall's tail shows the last chunk.
TEST(Http1Handler, ChunkedBodyWithHiddenChunkLinesEndsAtTail) {
    Conn c(Role::Server);
    std::string req = "GET /chunked/30000 HTTP/1.1\r\nHost: x\r\n\r\n";
    c.ingress(req, 10, 11);
    std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1d4c\r\n";
    std::string captured = head + std::string(4096 - head.size(), 'x');
    // Four 7500-byte chunks, each "1d4c\r\n" + data + "\r\n", then "0\r\n\r\n".
    const uint64_t wire = head.size() + 7500 + 2 + 3 * (6 + 7500 + 2) + 5;
    c.piece(Direction::Egress, captured, wire, 20, 21, "xxxxxxxxx\r\n0\r\n\r\n");
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].status, 200);
    EXPECT_EQ(c.exchanges[0].response_end_ns, 21u);
    EXPECT_EQ(c.stats().lost_sync, 0u);
    // Known chunk plus the framing-inclusive estimate of the hidden part.
    EXPECT_GE(c.exchanges[0].response_body_bytes, 30000u);
    EXPECT_LE(c.exchanges[0].response_body_bytes, 30000u + 3 * 8);

    // The connection stays in sync for the next exchange.
    c.ingress(req, 30, 31);
    c.egress("HTTP/1.1 204 No Content\r\n\r\n", 40, 41);
    ASSERT_EQ(c.exchanges.size(), 2u);
    EXPECT_EQ(c.exchanges[1].status, 204);
}

// Without a tail showing the last chunk, the blind body continues into the
// next piece and ends there.
TEST(Http1Handler, ChunkedBlindBodySpansPieces) {
    Conn c(Role::Server);
    c.ingress("GET / HTTP/1.1\r\n\r\n", 1, 1);
    std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n";
    c.piece(Direction::Egress, head + "0123456789abcdef\r\n", head.size() + 18 + 50, 2, 2, "yyyy");
    EXPECT_TRUE(c.exchanges.empty());
    c.piece(Direction::Egress, "", 300, 3, 3, "zz\r\n0\r\n\r\n");
    ASSERT_EQ(c.exchanges.size(), 1u);
    EXPECT_EQ(c.exchanges[0].response_end_ns, 3u);
}

}  // namespace
}  // namespace sonde::protocols::http1
