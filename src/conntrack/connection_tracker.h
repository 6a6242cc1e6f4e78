// Per-connection state: which protocol a TCP connection speaks, its byte
// streams in both directions, and the spans its exchanges become.
//
// A connection's identity is (pid, process start time, fd, generation): the
// generation changes whenever the fd is seen on another kernel socket, so a
// reused pid or fd never merges two streams.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ebpf/events.h"
#include "pipeline/self_metrics.h"
#include "pipeline/span.h"
#include "protocols/protocol.h"

namespace sonde::conntrack {

struct ConnectionTrackerOptions {
    size_t max_connections = 65536;
    // Pieces inspected for a known protocol before a connection is ignored.
    uint32_t max_detection_pieces = 4;
    uint64_t idle_timeout_ns = 300ull * 1000 * 1000 * 1000;
};

class ConnectionTracker {
public:
    using SpanSink = std::function<void(pipeline::Span&&)>;

    ConnectionTracker(ConnectionTrackerOptions options, pipeline::SelfMetrics& metrics,
                      SpanSink sink);
    ~ConnectionTracker();

    // Spans are only produced for processes that have an identity.
    void set_process(std::shared_ptr<const pipeline::ServiceIdentity> identity);
    void forget_process(uint32_t pid);

    void on_data(const ebpf::DataRecord& record);
    void on_connection(const sonde_conn_event& event);
    void expire_idle(uint64_t now_mono_ns);

    size_t connection_count() const { return connections_.size(); }
    // CLOCK_REALTIME - CLOCK_MONOTONIC, used to stamp spans with wall time.
    void set_wall_clock_offset(int64_t offset_ns) { wall_offset_ns_ = offset_ns; }

private:
    struct Connection;
    struct Key {
        uint32_t pid;
        int32_t fd;
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        size_t operator()(const Key& k) const noexcept {
            return std::hash<uint64_t>()((uint64_t(k.pid) << 32) | uint32_t(k.fd));
        }
    };

    // Text forms of the last few addresses seen: a server's connections come
    // from a handful of peers, so most connections reuse a formatted address.
    class AddressTexts {
    public:
        const std::string& text_of(const uint8_t (&addr)[16]);

    private:
        struct Entry {
            std::array<uint8_t, 16> addr{};
            std::string text;
            bool used = false;
        };
        std::array<Entry, 8> entries_;
        size_t next_victim_ = 0;
    };

    Connection* find_or_create(const sonde_event_header& hdr, int32_t fd, uint64_t cookie,
                               const sonde_conn_tuple& tuple);
    void close_connection(Key key, uint64_t ts_ns);
    void emit(Connection& conn, std::vector<protocols::Exchange>& exchanges);
    void account_stats(Connection& conn);
    std::atomic<uint64_t>& parse_errors_of(std::string_view protocol);
    void evict_oldest();

    ConnectionTrackerOptions options_;
    pipeline::SelfMetrics& metrics_;
    SpanSink sink_;
    int64_t wall_offset_ns_ = 0;
    uint32_t next_generation_ = 1;
    std::unordered_map<Key, std::unique_ptr<Connection>, KeyHash> connections_;
    std::unordered_map<uint32_t, std::shared_ptr<const pipeline::ServiceIdentity>> processes_;
    std::vector<protocols::Exchange> scratch_exchanges_;
    AddressTexts address_texts_;
};

}  // namespace sonde::conntrack
