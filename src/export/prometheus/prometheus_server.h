// A minimal HTTP/1.1 server for the Prometheus scrape endpoint. It answers
// GET on its one path, bounds request size and time, and survives garbage.
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
    size_t max_request_bytes = 8192;
    int request_timeout_ms = 5000;
};

class PrometheusServer {
public:
    using Renderer = std::function<std::string()>;
    PrometheusServer(PrometheusServerOptions options, Renderer render);
    ~PrometheusServer();  // stops the thread, closes the socket
    PrometheusServer(const PrometheusServer&) = delete;
    PrometheusServer& operator=(const PrometheusServer&) = delete;

    // Binds and starts serving on a background thread; throws std::runtime_error on failure.
    void start();
    void stop();
    uint16_t bound_port() const { return bound_port_; }

private:
    void serve();
    PrometheusServerOptions options_;
    Renderer render_;
    int listen_fd_ = -1;
    int wake_pipe_[2] = {-1, -1};
    uint16_t bound_port_ = 0;
    std::atomic<bool> running_{false};
    std::thread thread_;
};

// Pure request check, exposed for tests and fuzzing: given the raw request
// bytes, the HTTP status to answer (200, 400, 404, 405, 413), or 0 while the
// request is still incomplete and within max_bytes.
int classify_scrape_request(std::string_view request, std::string_view path, size_t max_bytes);

}  // namespace sonde::exporter
