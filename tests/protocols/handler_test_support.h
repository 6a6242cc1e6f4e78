// What the protocol handler tests share: a connection fed one syscall-sized
// piece at a time, as the connection tracker feeds it, and the checks made on
// what comes out.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/protocol.h"

namespace sonde::protocols::test {

using Exchanges = std::vector<Exchange>;

inline std::span<const uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// One connection as the observed process sees it. Times are whatever the
// test passes; each call is one syscall.
class Conn {
public:
    explicit Conn(std::unique_ptr<ProtocolHandler> handler) : handler_(std::move(handler)) {}

    // A syscall moving `length` bytes of which only `captured` was copied.
    // `tail`: the piece's last bytes, as the kernel reports them past the prefix.
    void piece(Direction direction, std::span<const uint8_t> captured, uint64_t length,
               uint64_t enter, uint64_t exit, std::span<const uint8_t> tail = {}) {
        StreamPiece p;
        p.captured = captured;
        p.tail = tail;
        p.length = length;
        p.ts_enter_ns = enter;
        p.ts_exit_ns = exit;
        handler_->on_data(direction, p, exchanges);
    }
    void piece(Direction direction, std::string_view captured, uint64_t length, uint64_t enter,
               uint64_t exit, std::string_view tail = {}) {
        piece(direction, bytes_of(captured), length, enter, exit, bytes_of(tail));
    }
    void ingress(std::span<const uint8_t> bytes, uint64_t enter, uint64_t exit) {
        piece(Direction::Ingress, bytes, bytes.size(), enter, exit);
    }
    void egress(std::span<const uint8_t> bytes, uint64_t enter, uint64_t exit) {
        piece(Direction::Egress, bytes, bytes.size(), enter, exit);
    }
    void ingress(std::string_view bytes, uint64_t enter, uint64_t exit) {
        ingress(bytes_of(bytes), enter, exit);
    }
    void egress(std::string_view bytes, uint64_t enter, uint64_t exit) {
        egress(bytes_of(bytes), enter, exit);
    }
    void close(uint64_t ts) { handler_->on_close(ts, exchanges); }

    const ProtocolStats& stats() const { return handler_->stats(); }
    Role role() const { return handler_->role(); }

    Exchanges exchanges;

private:
    std::unique_ptr<ProtocolHandler> handler_;
};

// No counter moved: every byte made sense.
inline void expect_clean(const ProtocolStats& s) {
    EXPECT_EQ(s.parse_errors, 0u);
    EXPECT_EQ(s.lost_sync, 0u);
    EXPECT_EQ(s.unpaired_responses, 0u);
    EXPECT_EQ(s.dropped_requests, 0u);
    EXPECT_EQ(s.oversized_heads, 0u);
    EXPECT_EQ(s.partial_exchanges, 0u);
}

inline void expect_times(const Exchange& ex, uint64_t req_start, uint64_t req_end,
                         uint64_t resp_start, uint64_t resp_end) {
    EXPECT_EQ(ex.request_start_ns, req_start);
    EXPECT_EQ(ex.request_end_ns, req_end);
    EXPECT_EQ(ex.response_start_ns, resp_start);
    EXPECT_EQ(ex.response_end_ns, resp_end);
}

// Every field of an exchange on one line, so two lists compare readably.
inline std::string describe(const Exchange& e) {
    return e.method + " " + e.path + " HTTP/" + e.protocol_version + " -> " +
           std::to_string(e.status) + " req_body=" + std::to_string(e.request_body_bytes) +
           " resp_body=" + std::to_string(e.response_body_bytes) + " host=" + e.host +
           " tp=" + e.traceparent + " ts=" + e.tracestate + " grpc=" + std::to_string(e.grpc) +
           "/" + std::to_string(e.grpc_status) + " reset=" + std::to_string(e.reset) +
           " partial=" + std::to_string(e.partial) +
           " role=" + std::to_string(static_cast<int>(e.role)) +
           " times=" + std::to_string(e.request_start_ns) + "," + std::to_string(e.request_end_ns) +
           "," + std::to_string(e.response_start_ns) + "," + std::to_string(e.response_end_ns);
}

}  // namespace sonde::protocols::test
