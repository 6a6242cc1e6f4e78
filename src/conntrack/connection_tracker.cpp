#include "conntrack/connection_tracker.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "discovery/proc_parsers.h"
#include "protocols/registry.h"

namespace sonde::conntrack {

using protocols::Direction;
using protocols::Role;

struct ConnectionTracker::Connection {
    uint64_t proc_start_ns = 0;
    uint64_t socket_cookie = 0;
    uint32_t generation = 0;
    Role role = Role::Unknown;
    pipeline::NetEndpoint local;
    pipeline::NetEndpoint peer;
    std::shared_ptr<const pipeline::ServiceIdentity> service;
    std::unique_ptr<protocols::ProtocolHandler> handler;
    // The self-metric counting the handler's parse errors (per protocol), set with it.
    std::atomic<uint64_t>* parse_errors = nullptr;
    protocols::ProtocolStats accounted{};  // handler stats already added to the self-metrics
    uint32_t undetected_pieces = 0;
    bool opaque = false;  // not a protocol we parse: ignore its bytes
    // Its cleartext comes from the TLS library probes; its syscall bytes are ciphertext.
    bool tls = false;
    uint64_t last_activity_ns = 0;
};

namespace {

Role role_of(uint8_t kernel_role) {
    switch (kernel_role) {
        case SONDE_ROLE_SERVER:
            return Role::Server;
        case SONDE_ROLE_CLIENT:
            return Role::Client;
        default:
            return Role::Unknown;
    }
}

}  // namespace

const std::string& ConnectionTracker::AddressTexts::text_of(const uint8_t (&addr)[16]) {
    for (const Entry& entry : entries_) {
        if (entry.used && std::memcmp(entry.addr.data(), addr, entry.addr.size()) == 0)
            return entry.text;
    }
    Entry& entry = entries_[next_victim_];
    next_victim_ = (next_victim_ + 1) % entries_.size();
    std::memcpy(entry.addr.data(), addr, entry.addr.size());
    entry.text = discovery::format_ip(entry.addr);
    entry.used = true;
    return entry.text;
}

ConnectionTracker::ConnectionTracker(ConnectionTrackerOptions options,
                                     pipeline::SelfMetrics& metrics, SpanSink sink)
    : options_(options), metrics_(metrics), sink_(std::move(sink)) {
    scratch_exchanges_.reserve(16);
}

ConnectionTracker::~ConnectionTracker() = default;

void ConnectionTracker::set_process(std::shared_ptr<const pipeline::ServiceIdentity> identity) {
    const uint32_t pid = identity->pid;
    processes_[pid] = std::move(identity);
}

void ConnectionTracker::forget_process(uint32_t pid) {
    processes_.erase(pid);
    for (auto it = connections_.begin(); it != connections_.end();) {
        if (it->first.pid == pid) {
            account_stats(*it->second);
            it = connections_.erase(it);
        } else {
            ++it;
        }
    }
    metrics_.connections_tracked = connections_.size();
}

ConnectionTracker::Connection* ConnectionTracker::find_or_create(const sonde_event_header& hdr,
                                                                 int32_t fd, uint64_t cookie,
                                                                 const sonde_conn_tuple& tuple) {
    const Key key{hdr.pid, fd};
    auto it = connections_.find(key);
    if (it != connections_.end()) {
        Connection& existing = *it->second;
        if (existing.socket_cookie == cookie && existing.proc_start_ns == hdr.proc_start_ns)
            return &existing;
        // The fd now names another socket (its close was not seen) or the pid
        // belongs to another process: the old stream ended.
        close_connection(key, hdr.ts_enter_ns);
    }
    if (connections_.size() >= options_.max_connections) evict_oldest();
    auto conn = std::make_unique<Connection>();
    conn->proc_start_ns = hdr.proc_start_ns;
    conn->socket_cookie = cookie;
    conn->generation = next_generation_++;
    conn->local = {address_texts_.text_of(tuple.local_addr), tuple.local_port};
    conn->peer = {address_texts_.text_of(tuple.peer_addr), tuple.peer_port};
    conn->last_activity_ns = hdr.ts_exit_ns;
    if (auto p = processes_.find(hdr.pid); p != processes_.end()) conn->service = p->second;
    Connection* raw = conn.get();
    connections_.emplace(key, std::move(conn));
    metrics_.connections_tracked = connections_.size();
    return raw;
}

void ConnectionTracker::on_connection(const sonde_conn_event& event) {
    if (!processes_.count(event.hdr.pid)) return;
    if (event.hdr.type == SONDE_EVENT_CONN_CLOSE) {
        auto it = connections_.find(Key{event.hdr.pid, event.fd});
        if (it != connections_.end() && it->second->socket_cookie == event.socket_cookie)
            close_connection(it->first, event.hdr.ts_enter_ns);
        return;
    }
    Connection* conn = find_or_create(event.hdr, event.fd, event.socket_cookie, event.tuple);
    if (conn->role == Role::Unknown) conn->role = role_of(event.role);
}

void ConnectionTracker::on_data(const ebpf::DataRecord& record) {
    const sonde_data_head& ev = record.fixed;
    if (!processes_.count(ev.hdr.pid)) return;
    Connection* conn = find_or_create(ev.hdr, ev.fd, ev.socket_cookie, ev.tuple);
    conn->last_activity_ns = ev.hdr.ts_exit_ns;
    const bool cleartext = ev.syscall == SONDE_SYS_SSL_READ || ev.syscall == SONDE_SYS_SSL_WRITE;
    if (cleartext && !conn->tls) {
        // What was seen before is the handshake (or ciphertext the kernel reported before it
        // knew the socket carried TLS): start over on the cleartext.
        account_stats(*conn);
        conn->tls = true;
        conn->handler.reset();
        conn->accounted = {};
        conn->opaque = false;
        conn->undetected_pieces = 0;
    } else if (!cleartext && conn->tls) {
        ++metrics_.tls_ciphertext_ignored;
        return;
    }
    if (conn->opaque) return;

    const Direction direction =
        ev.direction == SONDE_DIR_INGRESS ? Direction::Ingress : Direction::Egress;
    scratch_exchanges_.clear();
    size_t offset = 0;
    for (unsigned i = 0; i < ev.segment_count; ++i) {
        const sonde_segment& seg = ev.segments[i];
        protocols::StreamPiece piece{record.payload.subspan(offset, seg.captured), seg.length,
                                     ev.hdr.ts_enter_ns, ev.hdr.ts_exit_ns};
        offset += seg.captured;
        if (seg.length == 0) continue;
        if (i + 1 == ev.segment_count) piece.tail = {ev.tail, ev.tail_length};
        if (!conn->handler) {
            protocols::Detection found =
                protocols::detect_protocol(direction, piece.captured, conn->role);
            if (!found.handler) {
                if (++conn->undetected_pieces >= options_.max_detection_pieces) {
                    conn->opaque = true;
                    ++metrics_.connections_unrecognized;
                    return;
                }
                continue;
            }
            conn->handler = std::move(found.handler);
            conn->parse_errors = &parse_errors_of(found.protocol);
        }
        conn->handler->on_data(direction, piece, scratch_exchanges_);
    }
    if (conn->handler) {
        emit(*conn, scratch_exchanges_);
        account_stats(*conn);
    }
}

void ConnectionTracker::close_connection(Key key, uint64_t ts_ns) {
    auto it = connections_.find(key);
    if (it == connections_.end()) return;
    Connection& conn = *it->second;
    if (conn.handler) {
        scratch_exchanges_.clear();
        conn.handler->on_close(ts_ns, scratch_exchanges_);
        emit(conn, scratch_exchanges_);
        account_stats(conn);
    }
    connections_.erase(it);
    metrics_.connections_tracked = connections_.size();
}

void ConnectionTracker::emit(Connection& conn, std::vector<protocols::Exchange>& exchanges) {
    if (exchanges.empty()) return;
    for (protocols::Exchange& ex : exchanges) {
        pipeline::Span span;
        span.kind = conn.handler->role() == Role::Client ? pipeline::SpanKind::Client
                                                         : pipeline::SpanKind::Server;
        span.start_mono_ns = ex.request_start_ns;
        span.end_mono_ns = std::max(ex.response_end_ns, ex.request_start_ns);
        span.start_unix_ns = span.start_mono_ns + wall_offset_ns_;
        span.end_unix_ns = span.end_mono_ns + wall_offset_ns_;
        span.method = std::move(ex.method);
        span.path = std::move(ex.path);
        span.status = ex.status;
        span.request_body_bytes = ex.request_body_bytes;
        span.response_body_bytes = ex.response_body_bytes;
        span.protocol_version = std::move(ex.protocol_version);
        span.local = conn.local;
        span.peer = conn.peer;
        span.scheme = conn.tls ? "https" : "http";
        span.traceparent = std::move(ex.traceparent);
        span.tracestate = std::move(ex.tracestate);
        span.service = conn.service;
        span.rpc = ex.grpc;
        span.rpc_status = ex.grpc_status;
        span.stream_reset = ex.reset;
        span.partial = ex.partial;
        pipeline::add_owned(metrics_.spans_produced);
        pipeline::add_owned(metrics_.requests_seen);
        sink_(std::move(span));
    }
}

std::atomic<uint64_t>& ConnectionTracker::parse_errors_of(std::string_view protocol) {
    // One counter per protocol in the self-metrics: a new protocol adds its row there.
    return protocol == "http2" ? metrics_.parse_errors_http2 : metrics_.parse_errors_http1;
}

void ConnectionTracker::account_stats(Connection& conn) {
    if (!conn.handler) return;
    const protocols::ProtocolStats& now = conn.handler->stats();
    protocols::ProtocolStats& seen = conn.accounted;
    if (now == seen) return;  // the common case: nothing went wrong since the last record
    using pipeline::add_owned;
    add_owned(*conn.parse_errors, now.parse_errors - seen.parse_errors);
    add_owned(metrics_.lost_sync, now.lost_sync - seen.lost_sync);
    add_owned(metrics_.unpaired_responses, now.unpaired_responses - seen.unpaired_responses);
    add_owned(metrics_.dropped_requests, now.dropped_requests - seen.dropped_requests);
    add_owned(metrics_.requests_seen, now.dropped_requests - seen.dropped_requests);
    add_owned(metrics_.partial_exchanges, now.partial_exchanges - seen.partial_exchanges);
    seen = now;
}

void ConnectionTracker::evict_oldest() {
    auto oldest = std::min_element(
        connections_.begin(), connections_.end(), [](const auto& a, const auto& b) {
            return a.second->last_activity_ns < b.second->last_activity_ns;
        });
    if (oldest == connections_.end()) return;
    account_stats(*oldest->second);
    connections_.erase(oldest);
    ++metrics_.connections_evicted;
}

void ConnectionTracker::expire_idle(uint64_t now_mono_ns) {
    for (auto it = connections_.begin(); it != connections_.end();) {
        if (now_mono_ns > it->second->last_activity_ns + options_.idle_timeout_ns) {
            account_stats(*it->second);
            it = connections_.erase(it);
        } else {
            ++it;
        }
    }
    metrics_.connections_tracked = connections_.size();
}

}  // namespace sonde::conntrack
