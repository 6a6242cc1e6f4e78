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
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace sonde::exporter {

namespace {

using Clock = std::chrono::steady_clock;

// ---- Request classification: pure, so tests and the fuzzer can drive it.

constexpr int kNeedMore = 0;
// Only a request head is ever read, so a request over the limit is one whose head is too
// large: 431 (RFC 6585), not 413, which is about content.
constexpr int kHeadTooLarge = 431;

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
        result.status = over_limit ? kHeadTooLarge : kNeedMore;
        return result;
    }

    size_t line_start = first_newline + 1;
    while (true) {
        const size_t newline = window.find('\n', line_start);
        if (newline == std::string_view::npos) {
            result.status = over_limit ? kHeadTooLarge : kNeedMore;
            return result;
        }
        std::string_view header = window.substr(line_start, newline - line_start);
        if (!header.empty() && header.back() == '\r') {
            header.remove_suffix(1);
        }
        if (header.empty()) {
            if (newline + 1 > max_bytes) {
                result.status = kHeadTooLarge;
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
    explicit UniqueFd(int fd = -1) : fd_(fd) {}
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
        case 431:
            return "Request Header Fields Too Large";
        case 503:
            return "Service Unavailable";
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
    if (status == 503) {
        response += "Retry-After: 1\r\n";
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

// Best effort, no waiting: for a client that has already had its time.
void send_now(int fd, int status) {
    const std::string response = build_response(status, error_body(status), true);
    (void)::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// Far above any real scrape request; keeps the read buffer bounded (and the
// +1 below from wrapping) whatever the configuration says.
constexpr size_t kHardMaxRequestBytes = 1 << 20;
// What is read and discarded after a response, so closing with unread bytes
// does not turn into a reset that destroys the response before the client
// reads it.
constexpr size_t kMaxDrainBytes = 1 << 20;
// How long a client that was refused may go on sending before the close.
constexpr auto kRejectedLinger = std::chrono::milliseconds(250);
// A new connection may close an unfinished one at the cap only once that one has had this
// long to send its request: a flood of connections cannot push out a scrape in the instant
// between its connect and its request.
constexpr auto kEvictionGrace = std::chrono::milliseconds(100);
// After a failed accept (out of descriptors or memory) the pending connection
// stays queued: pause accepting instead of spinning on a readable listener.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

// One client connection: reading its request head, writing the response, then
// draining what the client still sends until the close.
struct Connection {
    enum class Phase { Reading, Writing, Draining };
    UniqueFd fd;
    Phase phase = Phase::Reading;
    Clock::time_point accepted;
    Clock::time_point deadline;  // of the current phase
    std::string request;         // Reading: at most max_request_bytes + 1 bytes
    std::string response;        // Writing
    size_t sent = 0;
    bool rendered = false;  // Writing a rendered body: counts against max_responses_in_flight
    int status = 0;
    size_t drained = 0;
    bool closed = false;
};

class ScrapeLoop {
public:
    ScrapeLoop(const PrometheusServerOptions& options, const PrometheusServer::Renderer& render,
               PrometheusServerStats& stats, int listen_fd, int wake_fd)
        : options_(options),
          render_(render),
          stats_(stats),
          listen_fd_(listen_fd),
          wake_fd_(wake_fd),
          timeout_(std::max(options.request_timeout_ms, 1)),
          max_request_bytes_(std::min(options.max_request_bytes, kHardMaxRequestBytes)),
          max_connections_(std::max<size_t>(options.max_connections, 1)) {}

    void run() {
        std::vector<pollfd> fds;
        while (true) {
            const Clock::time_point now = Clock::now();
            const bool accepting = now >= accept_paused_until_ && can_make_room(now);
            fds.clear();
            fds.push_back({wake_fd_, POLLIN, 0});
            fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
            for (const Connection& c : connections_) {
                fds.push_back(
                    {c.fd.get(),
                     c.phase == Connection::Phase::Writing ? short(POLLOUT) : short(POLLIN), 0});
            }
            if (::poll(fds.data(), fds.size(), poll_timeout_ms(now)) < 0) {
                if (errno == EINTR) {
                    continue;
                }
                spdlog::error("Prometheus endpoint stopped: poll failed: {}", std::strerror(errno));
                return;
            }
            if (fds[0].revents != 0) {
                return;  // stop(): the byte is never read, so this stays readable
            }
            // Connections first, so the ones accepted below are not in `fds`.
            for (size_t i = 0; i < connections_.size(); ++i) {
                if (fds[i + 2].revents != 0) {
                    step(connections_[i]);
                }
            }
            expire(Clock::now());
            std::erase_if(connections_, [](const Connection& c) { return c.closed; });
            if (fds[1].revents != 0) {
                accept_new();
            }
        }
    }

private:
    // The wait until the earliest deadline (or until an unfinished connection may be
    // closed to make room), rounded up so a sub-millisecond remainder does not spin with a
    // 0 timeout; forever with no connection.
    int poll_timeout_ms(Clock::time_point now) const {
        std::optional<Clock::time_point> earliest;
        const auto consider = [&earliest](Clock::time_point t) {
            earliest = earliest ? std::min(*earliest, t) : t;
        };
        const bool full = connections_.size() >= max_connections_;
        for (const Connection& c : connections_) {
            consider(c.deadline);
            if (full && c.phase == Connection::Phase::Reading) {
                consider(c.accepted + kEvictionGrace);
            }
        }
        if (now < accept_paused_until_) {
            consider(accept_paused_until_);
        }
        if (!earliest) {
            return -1;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*earliest - now);
        return static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, 60'000));
    }

    // The connection a new one replaces at the cap: the oldest still reading its request
    // after the grace, so whoever holds connections open without finishing a request cannot
    // lock out the scrapes that follow. Null when none may go.
    Connection* evictable(Clock::time_point now) {
        Connection* oldest = nullptr;
        for (Connection& c : connections_) {
            if (c.phase == Connection::Phase::Reading && now - c.accepted >= kEvictionGrace &&
                (!oldest || c.accepted < oldest->accepted)) {
                oldest = &c;
            }
        }
        return oldest;
    }

    bool can_make_room(Clock::time_point now) {
        return connections_.size() < max_connections_ || evictable(now) != nullptr;
    }

    void make_room(Clock::time_point now) {
        if (connections_.size() < max_connections_) {
            return;
        }
        if (Connection* victim = evictable(now)) {
            ++stats_.evicted;
            std::swap(*victim, connections_.back());
            connections_.pop_back();
        }
    }

    void accept_new() {
        // A burst of connections is taken in one go, bounded so the others get a turn.
        for (size_t i = 0; i < max_connections_ && can_make_room(Clock::now()); ++i) {
            UniqueFd fd(::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (fd.get() < 0) {
                if (errno == EINTR || errno == ECONNABORTED) {
                    continue;
                }
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    if (!accept_failure_logged_) {
                        spdlog::warn("Prometheus endpoint cannot accept: {}", std::strerror(errno));
                        accept_failure_logged_ = true;
                    }
                    accept_paused_until_ = Clock::now() + kAcceptBackoff;
                }
                return;
            }
            const Clock::time_point now = Clock::now();
            make_room(now);
            Connection& c = connections_.emplace_back();
            c.fd = std::move(fd);
            c.accepted = now;
            c.deadline = c.accepted + timeout_;
        }
    }

    void step(Connection& c) {
        try {
            switch (c.phase) {
                case Connection::Phase::Reading:
                    read_request(c);
                    break;
                case Connection::Phase::Writing:
                    write_response(c);
                    break;
                case Connection::Phase::Draining:
                    drain(c);
                    break;
            }
        } catch (const std::exception& e) {
            // Allocation failure on a huge render, say: drop this scrape, keep serving.
            spdlog::warn("Prometheus scrape failed: {}", e.what());
            c.closed = true;
        }
    }

    void read_request(Connection& c) {
        char buffer[4096];
        // Never hold more than the limit plus the one byte that proves it was exceeded.
        const size_t room = max_request_bytes_ + 1 - c.request.size();
        const ssize_t n = ::recv(c.fd.get(), buffer, std::min(sizeof buffer, room), 0);
        if (n < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
                c.closed = true;
            }
            return;
        }
        if (n == 0) {
            if (c.request.empty()) {
                c.closed = true;  // a port probe or health check that only connects
            } else {
                respond(c, {400, false});  // the client gave up mid-request
            }
            return;
        }
        c.request.append(buffer, static_cast<size_t>(n));
        const ScrapeRequest verdict = examine_request(c.request, options_.path, max_request_bytes_);
        if (verdict.status != kNeedMore) {
            respond(c, verdict);
        }
    }

    size_t responses_in_flight() const {
        return static_cast<size_t>(
            std::count_if(connections_.begin(), connections_.end(), [](const Connection& c) {
                return c.phase == Connection::Phase::Writing && c.rendered;
            }));
    }

    void respond(Connection& c, ScrapeRequest verdict) {
        int status = verdict.status;
        std::string body;
        if (status == 200 && responses_in_flight() >= options_.max_responses_in_flight) {
            status = 503;  // each in-flight response holds a whole render: bounded memory
        }
        if (status == 200) {
            try {
                body = render_();
                render_prometheus_server_stats(stats_, body);
                c.rendered = true;
            } catch (const std::exception& e) {
                spdlog::warn("rendering metrics for a scrape failed: {}", e.what());
                status = 500;
            }
        }
        if (status == 400) {
            ++stats_.malformed;
        } else if (status == kHeadTooLarge) {
            ++stats_.too_large;
        } else if (status == 503) {
            ++stats_.busy;
        }
        if (status != 200) {
            body = error_body(status);
        }
        c.status = status;
        c.response = build_response(status, body, !verdict.head);
        std::string().swap(c.request);
        c.phase = Connection::Phase::Writing;
        // The response gets its own window, so a slow render does not eat the
        // time a slow client has to read it.
        c.deadline = Clock::now() + timeout_;
        write_response(c);
    }

    void write_response(Connection& c) {
        while (c.sent < c.response.size()) {
            const ssize_t n = ::send(c.fd.get(), c.response.data() + c.sent,
                                     c.response.size() - c.sent, MSG_NOSIGNAL);
            if (n > 0) {
                c.sent += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return;  // the poll loop waits for room
            }
            c.closed = true;
            return;
        }
        std::string().swap(c.response);
        c.rendered = false;
        ::shutdown(c.fd.get(), SHUT_WR);
        c.phase = Connection::Phase::Draining;
        // A well-formed request has been read whole, so only what is already
        // queued needs discarding; after a rejection the client may still be
        // sending, so give it a moment to finish.
        const bool client_may_be_sending = c.status == 400 || c.status == kHeadTooLarge;
        if (client_may_be_sending) {
            c.deadline = std::min(c.deadline, Clock::now() + kRejectedLinger);
        }
        drain(c);
        if (!client_may_be_sending) {
            c.closed = true;
        }
    }

    void drain(Connection& c) {
        char buffer[4096];
        while (c.drained < kMaxDrainBytes) {
            const ssize_t n = ::recv(c.fd.get(), buffer, sizeof buffer, 0);
            if (n > 0) {
                c.drained += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return;
            }
            break;  // the client closed, or the socket failed
        }
        c.closed = true;
    }

    void expire(Clock::time_point now) {
        for (Connection& c : connections_) {
            if (c.closed || now < c.deadline) {
                continue;
            }
            if (c.phase == Connection::Phase::Reading) {
                ++stats_.timeout;
                if (!c.request.empty()) {
                    send_now(c.fd.get(), 408);
                }
            } else if (c.phase == Connection::Phase::Writing) {
                ++stats_.timeout;  // the client did not take its response in time
            }
            c.closed = true;
        }
    }

    const PrometheusServerOptions& options_;
    const PrometheusServer::Renderer& render_;
    PrometheusServerStats& stats_;
    const int listen_fd_;
    const int wake_fd_;
    const std::chrono::milliseconds timeout_;
    const size_t max_request_bytes_;
    const size_t max_connections_;
    std::vector<Connection> connections_;
    Clock::time_point accept_paused_until_{};
    bool accept_failure_logged_ = false;
};

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

void render_prometheus_server_stats(const PrometheusServerStats& stats, std::string& out) {
    out +=
        "# HELP sonde_prometheus_requests_rejected_total Requests to this endpoint refused or "
        "dropped, by reason: malformed (400), too_large (431: the request head is over the "
        "limit), timeout (request or response not done in time), evicted (closed unfinished "
        "at the connection cap), busy (503: too many responses in flight).\n"
        "# TYPE sonde_prometheus_requests_rejected_total counter\n";
    const std::pair<std::string_view, const std::atomic<uint64_t>*> rows[] = {
        {"malformed", &stats.malformed}, {"too_large", &stats.too_large},
        {"timeout", &stats.timeout},     {"evicted", &stats.evicted},
        {"busy", &stats.busy},
    };
    for (const auto& [reason, value] : rows) {
        out += "sonde_prometheus_requests_rejected_total{reason=\"";
        out += reason;
        out += "\"} ";
        out += std::to_string(value->load(std::memory_order_relaxed));
        out += '\n';
    }
}

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

void PrometheusServer::serve() {
    try {
        ScrapeLoop(options_, render_, stats_, listen_fd_, wake_pipe_[0]).run();
    } catch (const std::exception& e) {
        spdlog::error("Prometheus endpoint stopped: {}", e.what());
    }
    running_ = false;
}

}  // namespace sonde::exporter
