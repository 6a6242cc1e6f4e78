#include "conntrack/connection_tracker.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace sonde::conntrack {
namespace {

constexpr uint32_t kPid = 1234;

// Builds what the kernel would send for one syscall.
struct RecordBuilder {
    std::vector<uint8_t> payload;
    sonde_data_head fixed{};

    RecordBuilder(int fd, uint8_t direction, std::string_view bytes, uint64_t enter, uint64_t exit,
                  uint64_t cookie = 0xabc, uint32_t length = 0) {
        fixed.hdr.type = SONDE_EVENT_DATA;
        fixed.hdr.pid = kPid;
        fixed.hdr.proc_start_ns = 77;
        fixed.hdr.ts_enter_ns = enter;
        fixed.hdr.ts_exit_ns = exit;
        fixed.fd = fd;
        fixed.direction = direction;
        fixed.socket_cookie = cookie;
        // 127.0.0.1:8080 <- 127.0.0.1:40000
        for (auto* addr : {fixed.tuple.local_addr, fixed.tuple.peer_addr}) {
            addr[10] = addr[11] = 0xff;
            addr[12] = 127;
            addr[15] = 1;
        }
        fixed.tuple.local_port = 8080;
        fixed.tuple.peer_port = 40000;
        payload.assign(bytes.begin(), bytes.end());
        fixed.segment_count = 1;
        fixed.segments[0].captured = static_cast<uint32_t>(payload.size());
        fixed.segments[0].length = length ? length : static_cast<uint32_t>(payload.size());
        fixed.captured_length = fixed.segments[0].captured;
        fixed.total_length = fixed.segments[0].length;
    }
    ebpf::DataRecord record() const { return {fixed, payload}; }
};

class TrackerTest : public ::testing::Test {
protected:
    TrackerTest() : tracker_({}, metrics_, [this](pipeline::Span&& s) { spans_.push_back(s); }) {
        auto id = std::make_shared<pipeline::ServiceIdentity>();
        id->pid = kPid;
        id->service_name = "checkout";
        tracker_.set_process(id);
    }
    void feed(const RecordBuilder& b) { tracker_.on_data(b.record()); }
    // The record of a connect() that made `fd` a client socket.
    void open_client(int fd, uint64_t cookie) {
        sonde_conn_event open{};
        open.hdr.type = SONDE_EVENT_CONN_OPEN;
        open.hdr.pid = kPid;
        open.hdr.proc_start_ns = 77;
        open.fd = fd;
        open.role = SONDE_ROLE_CLIENT;
        open.socket_cookie = cookie;
        tracker_.on_connection(open);
    }

    pipeline::SelfMetrics metrics_;
    std::vector<pipeline::Span> spans_;
    ConnectionTracker tracker_;
};

TEST_F(TrackerTest, ServerExchangeBecomesSpanWithTupleAndTiming) {
    feed({5, SONDE_DIR_INGRESS, "GET /orders/42?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 100, 1000});
    feed({5, SONDE_DIR_EGRESS, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 5000, 6000});
    ASSERT_EQ(spans_.size(), 1u);
    const auto& s = spans_[0];
    EXPECT_EQ(s.kind, pipeline::SpanKind::Server);
    EXPECT_EQ(s.method, "GET");
    EXPECT_EQ(s.path, "/orders/42");
    EXPECT_TRUE(s.route.empty());  // routes are the pipeline's job, after the tracker
    EXPECT_EQ(s.status, 201);
    EXPECT_EQ(s.start_mono_ns, 1000u);  // ingress: first byte at syscall return
    EXPECT_EQ(s.end_mono_ns, 6000u);    // egress: last byte handed over at return
    EXPECT_EQ(s.local.address, "127.0.0.1");
    EXPECT_EQ(s.local.port, 8080);
    EXPECT_EQ(s.peer.port, 40000);
    ASSERT_TRUE(s.service);
    EXPECT_EQ(s.service->service_name, "checkout");
    EXPECT_EQ(metrics_.spans_produced.load(), 1u);
}

TEST_F(TrackerTest, ClientRoleFromConnectAndFdReuseStartsNewConnection) {
    open_client(9, 0x1);
    feed({9, SONDE_DIR_EGRESS, "GET /a HTTP/1.1\r\nHost: b\r\n\r\n", 10, 20, 0x1});
    // The fd is reused for another socket before the response came: the old
    // stream is over and its pending request must not pair with this response.
    feed({9, SONDE_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 30, 40, 0x2});
    EXPECT_TRUE(spans_.empty());
    EXPECT_EQ(metrics_.dropped_requests.load(), 1u);
    feed({9, SONDE_DIR_EGRESS, "GET /b HTTP/1.1\r\nHost: b\r\n\r\n", 50, 60, 0x2});
    feed({9, SONDE_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 70, 80, 0x2});
    ASSERT_EQ(spans_.size(), 1u);
    EXPECT_EQ(spans_[0].kind, pipeline::SpanKind::Client);
    EXPECT_EQ(spans_[0].path, "/b");
    EXPECT_EQ(spans_[0].start_mono_ns, 50u);  // egress: request starts at write entry
    EXPECT_EQ(spans_[0].end_mono_ns, 80u);
}

TEST_F(TrackerTest, ClientResponseRecordBeforeItsRequestRecordStillPairs) {
    open_client(9, 0xabc);
    // A Go client: the response's read (another thread) returned at 40, before the
    // write that sent the request (entered at 10) returned at 50 and was reported.
    feed({9, SONDE_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 30, 40});
    EXPECT_TRUE(spans_.empty());
    feed({9, SONDE_DIR_EGRESS, "GET /a HTTP/1.1\r\nHost: b\r\n\r\n", 10, 50});
    ASSERT_EQ(spans_.size(), 1u);
    EXPECT_EQ(spans_[0].kind, pipeline::SpanKind::Client);
    EXPECT_EQ(spans_[0].path, "/a");
    EXPECT_EQ(spans_[0].start_mono_ns, 10u);
    EXPECT_EQ(spans_[0].end_mono_ns, 40u);
    EXPECT_EQ(metrics_.unpaired_responses.load(), 0u);
    EXPECT_EQ(metrics_.connections_unrecognized.load(), 0u);
}

TEST_F(TrackerTest, NonHttpConnectionIsIgnoredAfterDetectionBudget) {
    for (int i = 0; i < 10; ++i)
        feed({3, SONDE_DIR_INGRESS, "\x16\x03\x01 binary junk", uint64_t(i), uint64_t(i)});
    feed({3, SONDE_DIR_INGRESS, "GET / HTTP/1.1\r\n\r\n", 100, 100});
    feed({3, SONDE_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, 200});
    EXPECT_TRUE(spans_.empty());
    EXPECT_EQ(metrics_.connections_unrecognized.load(), 1u);
    EXPECT_EQ(metrics_.requests_seen.load(), 0u);
}

TEST_F(TrackerTest, LedgerCountsRequestsSeenAndParseErrorsByProtocol) {
    // HTTP/1: one answered request, then garbage where the next head should be, then a
    // request never answered before the connection closes.
    feed({5, SONDE_DIR_INGRESS, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n", 10, 10});
    feed({5, SONDE_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 20, 20});
    feed({5, SONDE_DIR_INGRESS, "\x01\x02 not a request line\r\n\r\n", 30, 30});
    feed({5, SONDE_DIR_INGRESS, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n", 40, 40});
    sonde_conn_event close{};
    close.hdr.type = SONDE_EVENT_CONN_CLOSE;
    close.hdr.pid = kPid;
    close.hdr.proc_start_ns = 77;
    close.fd = 5;
    close.socket_cookie = 0xabc;
    tracker_.on_connection(close);
    EXPECT_EQ(spans_.size(), 1u);
    EXPECT_EQ(metrics_.requests_seen.load(), 2u);  // one span, one dropped
    EXPECT_EQ(metrics_.dropped_requests.load(), 1u);
    EXPECT_GT(metrics_.parse_errors_http1.load(), 0u);
    EXPECT_EQ(metrics_.parse_errors_http2.load(), 0u);

    // HTTP/2: the preface, then a frame header announcing an impossible SETTINGS length.
    const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    feed({6, SONDE_DIR_INGRESS, preface, 50, 50, 0xdef});
    feed({6, SONDE_DIR_INGRESS, std::string("\x00\x00\x05\x04\x00\x00\x00\x00\x00xxxxx", 14), 60,
          60, 0xdef});
    EXPECT_GT(metrics_.parse_errors_http2.load(), 0u);
}

// What the TLS uprobes send: cleartext on the connection's socket, marked by its source.
RecordBuilder tls(uint8_t direction, std::string_view bytes, uint64_t at) {
    RecordBuilder b(7, direction, bytes, at, at + 1);
    b.fixed.syscall = direction == SONDE_DIR_INGRESS ? SONDE_SYS_SSL_READ : SONDE_SYS_SSL_WRITE;
    return b;
}

TEST_F(TrackerTest, TlsCleartextMakesHttpsSpansAndCiphertextIsNeverParsed) {
    // The handshake comes through syscalls before any cleartext: undetected, and far past the
    // detection budget, which would make a plaintext connection opaque.
    for (int i = 0; i < 10; ++i)
        feed({7, SONDE_DIR_INGRESS, "\x16\x03\x01\x02\x00 client hello", uint64_t(i), uint64_t(i)});
    feed(tls(SONDE_DIR_INGRESS, "GET /cart?id=1 HTTP/1.1\r\nHost: a\r\n\r\n", 100));
    // Ciphertext the kernel did not know to hide: ignored, even when it looks like HTTP.
    feed({7, SONDE_DIR_INGRESS, "GET /forged HTTP/1.1\r\n\r\n", 150, 150});
    feed(tls(SONDE_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200));
    feed({7, SONDE_DIR_EGRESS, "\x17\x03\x03\x00\x20 application data", 201, 201});
    ASSERT_EQ(spans_.size(), 1u);
    EXPECT_EQ(spans_[0].path, "/cart");
    EXPECT_EQ(spans_[0].scheme, "https");
    EXPECT_EQ(spans_[0].status, 200);
    EXPECT_EQ(spans_[0].local.port, 8080);
    EXPECT_EQ(metrics_.tls_ciphertext_ignored.load(), 2u);
    EXPECT_EQ(metrics_.parse_errors_http1.load(), 0u);

    // Plaintext connections keep the http scheme.
    feed({5, SONDE_DIR_INGRESS, "GET /a HTTP/1.1\r\n\r\n", 300, 300, 0xdef});
    feed({5, SONDE_DIR_EGRESS, "HTTP/1.1 204 No Content\r\n\r\n", 400, 400, 0xdef});
    ASSERT_EQ(spans_.size(), 2u);
    EXPECT_EQ(spans_[1].scheme, "http");
}

TEST_F(TrackerTest, UnknownProcessProducesNothingAndForgetDropsConnections) {
    RecordBuilder other(5, SONDE_DIR_INGRESS, "GET / HTTP/1.1\r\n\r\n", 1, 1);
    other.fixed.hdr.pid = 999;
    tracker_.on_data(other.record());
    EXPECT_EQ(tracker_.connection_count(), 0u);
    feed({5, SONDE_DIR_INGRESS, "GET / HTTP/1.1\r\n\r\n", 1, 1});
    EXPECT_EQ(tracker_.connection_count(), 1u);
    tracker_.forget_process(kPid);
    EXPECT_EQ(tracker_.connection_count(), 0u);
    feed({5, SONDE_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 2, 2});
    EXPECT_TRUE(spans_.empty());
}

TEST_F(TrackerTest, LargeBodyKnownOnlyByLength) {
    std::string head = "POST /upload HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n";
    feed({5, SONDE_DIR_INGRESS, head + std::string(1000, 'u'), 1, 2, 0xabc,
          static_cast<uint32_t>(head.size() + 65536)});
    feed({5, SONDE_DIR_INGRESS, std::string(4096, 'u'), 3, 4, 0xabc, 1048576 - 65536});
    feed({5, SONDE_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 5, 6});
    ASSERT_EQ(spans_.size(), 1u);
    EXPECT_EQ(spans_[0].request_body_bytes, 1048576u);
}

TEST_F(TrackerTest, ConnectionCapEvictsOldestAndCounts) {
    pipeline::SelfMetrics metrics;
    std::vector<pipeline::Span> spans;
    ConnectionTracker small({.max_connections = 2}, metrics,
                            [&](pipeline::Span&& s) { spans.push_back(s); });
    auto id = std::make_shared<pipeline::ServiceIdentity>();
    id->pid = kPid;
    small.set_process(id);
    for (int fd = 1; fd <= 3; ++fd) {
        RecordBuilder b(fd, SONDE_DIR_INGRESS, "GET / HTTP/1.1\r\n\r\n", uint64_t(fd),
                        uint64_t(fd));
        small.on_data(b.record());
    }
    EXPECT_EQ(small.connection_count(), 2u);
    EXPECT_EQ(metrics.connections_evicted.load(), 1u);
}

}  // namespace
}  // namespace sonde::conntrack
