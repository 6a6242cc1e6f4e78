#include "export/prometheus/prometheus_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace sonde::exporter {

namespace {

using Clock = std::chrono::steady_clock;

// ---- Request classification: pure, so tests and the fuzzer can drive it.

constexpr int kNeedMore = 0;

struct ScrapeRequest {
    int status = kNeedMore;
    bool head = false;  // HEAD: same headers as GET, no body
};

// RFC 9110 token characters, the alphabet of methods and header names.
bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_visible_ascii(char c) {
    return c > 0x20 && c < 0x7f;
}

bool all_of(std::string_view s, bool (*predicate)(char)) {
    return std::all_of(s.begin(), s.end(), predicate);
}

struct RequestLine {
    std::string_view method;
    std::string_view target;
};

// Whether `line` (without its line ending) is a valid request line or, when
// not yet `complete`, could still become one. Rejecting a bad prefix early
// answers a TLS handshake or binary junk at once instead of at the timeout.
bool check_request_line(std::string_view line, bool complete, RequestLine& out) {
    const size_t method_end = line.find(' ');
    out.method = line.substr(0, method_end);
    if (!all_of(out.method, is_tchar)) {
        return false;
    }
    if (method_end == std::string_view::npos) {
        return !complete;
    }
    if (out.method.empty()) {
        return false;
    }
    const std::string_view rest = line.substr(method_end + 1);
    const size_t target_end = rest.find(' ');
    out.target = rest.substr(0, target_end);
    if (!all_of(out.target, is_visible_ascii)) {
        return false;
    }
    if (target_end == std::string_view::npos) {
        return !complete;
    }
    if (out.target.empty()) {
        return false;
    }
    // Only HTTP/1.x: this endpoint speaks nothing else, and a strict shape
    // keeps the prefix check above exact.
    const std::string_view version = rest.substr(target_end + 1);
    static constexpr std::string_view kShape = "HTTP/1.D";
    if (version.size() > kShape.size() || (complete && version.size() != kShape.size())) {
        return false;
    }
    for (size_t i = 0; i < version.size(); ++i) {
        const bool ok =
            kShape[i] == 'D' ? (version[i] >= '0' && version[i] <= '9') : version[i] == kShape[i];
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool valid_header_line(std::string_view line) {
    const size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) {
        return false;  // also rejects obsolete line folding, which starts with a blank
    }
    if (!all_of(line.substr(0, colon), is_tchar)) {
        return false;
    }
    for (const char c : line.substr(colon + 1)) {
        const auto byte = static_cast<unsigned char>(c);
        if ((byte < 0x20 && c != '\t') || byte == 0x7f) {
            return false;  // a stray CR or NUL in a header is a smuggling attempt or junk
        }
    }
    return true;
}

// The path part of a request target: absolute-form ("http://host/metrics")
// is what proxies send, and the query string does not select a resource here.
std::string_view target_path(std::string_view target) {
    for (const std::string_view scheme :
         {std::string_view("http://"), std::string_view("https://")}) {
        if (target.substr(0, scheme.size()) == scheme) {
            const std::string_view rest = target.substr(scheme.size());
            const size_t slash = rest.find('/');
            target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
            break;
        }
    }
    return target.substr(0, target.find_first_of("?#"));
}

// Only the first max_bytes + 1 bytes are looked at: the server never reads
// more, and it makes the answer for a request a function of that window, so
// once an answer is given, more bytes never change it.
ScrapeRequest examine_request(std::string_view request, std::string_view path, size_t max_bytes) {
    const std::string_view window =
        request.substr(0, max_bytes < request.size() ? max_bytes + 1 : request.size());
    const bool over_limit = window.size() > max_bytes;
    ScrapeRequest result;

    // RFC 9112 asks servers to ignore blank lines before a request line.
    size_t pos = 0;
    while (pos < window.size()) {
        if (window[pos] == '\n') {
            ++pos;
        } else if (window[pos] == '\r' && pos + 1 < window.size() && window[pos + 1] == '\n') {
            pos += 2;
        } else {
            break;
        }
    }

    const size_t first_newline = window.find('\n', pos);
    const bool line_complete = first_newline != std::string_view::npos;
    std::string_view line = window.substr(pos, line_complete ? first_newline - pos : first_newline);
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    RequestLine request_line;
    if (!check_request_line(line, line_complete, request_line)) {
        result.status = 400;
        return result;
    }
    if (!line_complete) {
        result.status = over_limit ? 413 : kNeedMore;
        return result;
    }

    size_t line_start = first_newline + 1;
    while (true) {
        const size_t newline = window.find('\n', line_start);
        if (newline == std::string_view::npos) {
            result.status = over_limit ? 413 : kNeedMore;
            return result;
        }
        std::string_view header = window.substr(line_start, newline - line_start);
        if (!header.empty() && header.back() == '\r') {
            header.remove_suffix(1);
        }
        if (header.empty()) {
            if (newline + 1 > max_bytes) {
                result.status = 413;
                return result;
            }
            break;
        }
        if (!valid_header_line(header)) {
            result.status = 400;
            return result;
        }
        line_start = newline + 1;
    }

    if (target_path(request_line.target) != path) {
        result.status = 404;
    } else if (request_line.method == "GET") {
        result.status = 200;
    } else if (request_line.method == "HEAD") {
        result.status = 200;
        result.head = true;
    } else {
        result.status = 405;
    }
    return result;
}

// ---- Socket plumbing

class UniqueFd {
public:
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() { reset(-1); }
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset(other.release());
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    void reset(int fd) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }
    int get() const { return fd_; }
    int release() {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_;
};

void close_fd(int& fd) {
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

enum class WaitResult { Ready, Timeout, Woken, Failed };

// Waits for `events` on fd, but never past the deadline nor past stop().
WaitResult wait_for(int fd, short events, int wake_fd, Clock::time_point deadline) {
    while (true) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            return WaitResult::Timeout;
        }
        pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
        // +1 so a sub-millisecond remainder does not spin with a 0 timeout.
        const int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count() + 1, 60'000)));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return WaitResult::Failed;
        }
        if (fds[1].revents != 0) {
            return WaitResult::Woken;
        }
        if (fds[0].revents != 0) {
            return WaitResult::Ready;  // errors and hangups surface in the next read or write
        }
    }
}

bool send_all(int fd, std::string_view data, int wake_fd, Clock::time_point deadline) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_for(fd, POLLOUT, wake_fd, deadline) != WaitResult::Ready) {
                return false;
            }
            continue;
        }
        return false;
    }
    return true;
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 413:
            return "Content Too Large";
        default:
            return "Internal Server Error";
    }
}

std::string build_response(int status, std::string_view body, bool include_body) {
    std::string response = "HTTP/1.1 ";
    response += std::to_string(status);
    response += ' ';
    response += reason_phrase(status);
    response += "\r\n";
    // 0.0.4 is the classic text format; Prometheus picks its parser by it.
    response += status == 200 ? "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                              : "Content-Type: text/plain; charset=utf-8\r\n";
    if (status == 405) {
        response += "Allow: GET, HEAD\r\n";
    }
    response += "Content-Length: ";
    response += std::to_string(body.size());
    response += "\r\nConnection: close\r\n\r\n";
    if (include_body) {
        response += body;
    }
    return response;
}

std::string error_body(int status) {
    std::string body(reason_phrase(status));
    body += '\n';
    return body;
}

// Reads and discards what the client still sends, so closing the socket with
// unread bytes does not turn into a reset that destroys the response before
// the client reads it.
void drain_before_close(int fd, int wake_fd, Clock::time_point deadline) {
    constexpr size_t kMaxDrainBytes = 1 << 20;
    size_t drained = 0;
    char buffer[4096];
    while (drained < kMaxDrainBytes) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n > 0) {
            drained += static_cast<size_t>(n);
            continue;
        }
        if (n == 0) {
            return;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return;
        }
        if (wait_for(fd, POLLIN, wake_fd, deadline) != WaitResult::Ready) {
            return;
        }
    }
}

struct ConnectionContext {
    const PrometheusServerOptions& options;
    const PrometheusServer::Renderer& render;
    int wake_fd;
    size_t max_request_bytes;
};

// Far above any real scrape request; keeps the read buffer bounded (and the
// +1 below from wrapping) whatever the configuration says.
constexpr size_t kHardMaxRequestBytes = 1 << 20;

void handle_connection(int fd, const ConnectionContext& ctx) {
    const auto timeout = std::chrono::milliseconds(std::max(ctx.options.request_timeout_ms, 1));
    const auto read_deadline = Clock::now() + timeout;
    std::string request;
    ScrapeRequest verdict;
    char buffer[4096];
    while (verdict.status == kNeedMore) {
        const WaitResult waited = wait_for(fd, POLLIN, ctx.wake_fd, read_deadline);
        if (waited == WaitResult::Timeout && !request.empty()) {
            // Best effort, no waiting: the client has already had its time.
            const std::string response = build_response(408, error_body(408), true);
            (void)::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (waited != WaitResult::Ready) {
            return;
        }
        // Never hold more than the limit plus the one byte that proves it
        // was exceeded.
        const size_t room = ctx.max_request_bytes + 1 - request.size();
        const ssize_t n = ::recv(fd, buffer, std::min(sizeof buffer, room), 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
                continue;
            }
            return;
        }
        if (n == 0) {
            if (request.empty()) {
                return;  // a port probe or health check that only connects
            }
            verdict.status = 400;  // the client gave up mid-request
            break;
        }
        request.append(buffer, static_cast<size_t>(n));
        verdict = examine_request(request, ctx.options.path, ctx.max_request_bytes);
    }

    int status = verdict.status;
    std::string body;
    if (status == 200) {
        try {
            body = ctx.render();
        } catch (const std::exception& e) {
            spdlog::warn("rendering metrics for a scrape failed: {}", e.what());
            status = 500;
        }
    }
    if (status != 200) {
        body = error_body(status);
    }
    // The response gets its own window, so a slow render does not eat the
    // time a slow client has to read it.
    const auto write_deadline = Clock::now() + timeout;
    const std::string response = build_response(status, body, !verdict.head);
    if (!send_all(fd, response, ctx.wake_fd, write_deadline)) {
        return;
    }
    ::shutdown(fd, SHUT_WR);
    // A well-formed request has been read whole, so only what is already
    // queued needs discarding; after a rejection the client may still be
    // sending, so give it a moment to finish.
    const bool client_may_be_sending = status == 400 || status == 413;
    const auto linger =
        client_may_be_sending ? std::chrono::milliseconds(250) : std::chrono::milliseconds(0);
    drain_before_close(fd, ctx.wake_fd, std::min(write_deadline, Clock::now() + linger));
}

std::runtime_error bind_error(const PrometheusServerOptions& options, const std::string& what) {
    return std::runtime_error("Prometheus endpoint on " + options.bind_address + ":" +
                              std::to_string(options.port) + ": " + what);
}

// A listening socket on the first address the bind address resolves to that
// accepts the bind. Names are allowed so "localhost" works in configuration.
UniqueFd open_listener(const PrometheusServerOptions& options) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(options.port);
    const char* host = options.bind_address.empty() ? nullptr : options.bind_address.c_str();
    if (const int rc = ::getaddrinfo(host, port.c_str(), &hints, &found); rc != 0) {
        throw bind_error(options, gai_strerror(rc));
    }
    std::string last_error = "no usable address";
    UniqueFd listener(-1);
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                             ai->ai_protocol));
        if (fd.get() < 0) {
            last_error = std::strerror(errno);
            continue;
        }
        // A restarted agent must not wait out TIME_WAIT from its last run.
        const int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 ||
            ::listen(fd.get(), SOMAXCONN) != 0) {
            last_error = std::strerror(errno);
            continue;
        }
        listener = std::move(fd);
        break;
    }
    ::freeaddrinfo(found);
    if (listener.get() < 0) {
        throw bind_error(options, last_error);
    }
    return listener;
}

uint16_t local_port(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        return 0;
    }
    if (address.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
    }
    if (address.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
    }
    return 0;
}

}  // namespace

int classify_scrape_request(std::string_view request, std::string_view path, size_t max_bytes) {
    return examine_request(request, path, max_bytes).status;
}

PrometheusServer::PrometheusServer(PrometheusServerOptions options, Renderer render)
    : options_(std::move(options)), render_(std::move(render)) {}

PrometheusServer::~PrometheusServer() {
    stop();
}

void PrometheusServer::start() {
    if (thread_.joinable()) {
        throw std::runtime_error("Prometheus endpoint already started");
    }
    UniqueFd listener = open_listener(options_);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        throw bind_error(options_, std::string("wake pipe: ") + std::strerror(errno));
    }
    bound_port_ = local_port(listener.get());
    listen_fd_ = listener.release();
    wake_pipe_[0] = pipe_fds[0];
    wake_pipe_[1] = pipe_fds[1];
    running_ = true;
    try {
        thread_ = std::thread([this] { serve(); });
    } catch (...) {
        running_ = false;
        close_fd(listen_fd_);
        close_fd(wake_pipe_[0]);
        close_fd(wake_pipe_[1]);
        throw;
    }
}

void PrometheusServer::stop() {
    if (thread_.joinable()) {
        // The byte is never read, so every later poll in the thread sees the
        // pipe readable, wherever the thread is waiting.
        const char wake = 1;
        while (::write(wake_pipe_[1], &wake, 1) < 0 && errno == EINTR) {
        }
        thread_.join();
    }
    running_ = false;
    close_fd(listen_fd_);
    close_fd(wake_pipe_[0]);
    close_fd(wake_pipe_[1]);
}

// One connection at a time: scrapes are rare and small, and serial handling
// keeps the endpoint's cost bounded no matter how many clients connect.
void PrometheusServer::serve() {
    const ConnectionContext ctx{options_, render_, wake_pipe_[0],
                                std::min(options_.max_request_bytes, kHardMaxRequestBytes)};
    bool accept_failure_logged = false;
    while (true) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            spdlog::error("Prometheus endpoint stopped: poll failed: {}", std::strerror(errno));
            break;
        }
        if (fds[1].revents != 0) {
            break;
        }
        if (fds[0].revents == 0) {
            continue;
        }
        UniqueFd connection(::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (connection.get() < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED) {
                continue;
            }
            // Out of descriptors or memory: the pending connection stays
            // queued, so back off instead of spinning on a readable socket.
            if (!accept_failure_logged) {
                spdlog::warn("Prometheus endpoint cannot accept: {}", std::strerror(errno));
                accept_failure_logged = true;
            }
            if (wait_for(wake_pipe_[0], POLLIN, wake_pipe_[0],
                         Clock::now() + std::chrono::milliseconds(100)) != WaitResult::Timeout) {
                break;
            }
            continue;
        }
        try {
            handle_connection(connection.get(), ctx);
        } catch (const std::exception& e) {
            // Allocation failure on a huge render, say: drop this scrape, keep serving.
            spdlog::warn("Prometheus scrape failed: {}", e.what());
        }
    }
    running_ = false;
}

}  // namespace sonde::exporter
