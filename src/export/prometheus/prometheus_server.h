// A minimal HTTP/1.1 server for the Prometheus scrape endpoint. It answers
// GET and HEAD on its one path, bounds request size and time, the number of
// connections and of responses in flight, and survives garbage. One thread
// serves every connection from one poll loop, so a slow or silent client never
// holds up the others.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace sonde::exporter {

struct PrometheusServerOptions {
    std::string bind_address = "0.0.0.0";
    uint16_t port = 9400;  // 0 picks a free port (tests)
    std::string path = "/metrics";
    // A request head (request line and headers) longer than this is answered 431.
    size_t max_request_bytes = 8192;
    // From accept to the whole request head, and again for the response to be taken.
    int request_timeout_ms = 5000;
    // Open connections; at the cap, a new one closes the oldest still sending its request.
    size_t max_connections = 64;
    // Responses carrying a rendered body being written; past this, 503.
    size_t max_responses_in_flight = 4;
};

// Requests the endpoint refused or dropped, by reason. Monotonic.
struct PrometheusServerStats {
    std::atomic<uint64_t> malformed{0};  // 400: not an HTTP/1.x request head
    std::atomic<uint64_t> too_large{0};  // 431: the head exceeded max_request_bytes
    std::atomic<uint64_t> timeout{0};    // request head or response not done in time
    std::atomic<uint64_t> evicted{0};    // closed unfinished to make room at max_connections
    std::atomic<uint64_t> busy{0};       // 503: max_responses_in_flight reached
};

class PrometheusServer {
public:
    using Renderer = std::function<std::string()>;
    PrometheusServer(PrometheusServerOptions options, Renderer render);
    ~PrometheusServer();  // stops the thread, closes the sockets
    PrometheusServer(const PrometheusServer&) = delete;
    PrometheusServer& operator=(const PrometheusServer&) = delete;

    // Binds and starts serving on a background thread; throws std::runtime_error on failure.
    void start();
    void stop();
    uint16_t bound_port() const { return bound_port_; }
    const PrometheusServerStats& stats() const { return stats_; }

private:
    void serve();
    PrometheusServerOptions options_;
    Renderer render_;
    PrometheusServerStats stats_;
    int listen_fd_ = -1;
    int wake_pipe_[2] = {-1, -1};
    uint16_t bound_port_ = 0;
    std::atomic<bool> running_{false};
    std::thread thread_;
};

// The endpoint's own counters in the text exposition format; every scrape ends with them.
void render_prometheus_server_stats(const PrometheusServerStats& stats, std::string& out);

// Pure request check, exposed for tests and fuzzing: given the raw request
// bytes, the HTTP status to answer (200, 400, 404, 405, 431), or 0 while the
// request is still incomplete and within max_bytes.
int classify_scrape_request(std::string_view request, std::string_view path, size_t max_bytes);

}  // namespace sonde::exporter
