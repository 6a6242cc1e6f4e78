// sonde-paced-load: an open-loop HTTP/1.1 load generator for the benchmark's
// fixed-rate scenario (bench/run.py, P3). Requests are due at evenly spaced
// instants (or Poisson arrivals) whatever the server does; each goes out on
// an idle keep-alive connection, or waits for one, and its latency counts from
// the instant it was due, so a slow server cannot hide its delay by slowing
// the sender down.
//
// Why not wrk with a Lua delay(): wrk's timers have millisecond resolution,
// so every connection whose delay ends in the same millisecond sends at once.
// At thousands of requests per second the server then sees bursts, and a
// request's latency is mostly the time to serve the burst ahead of it. That
// turns a throughput cost into a latency ratio instead of measuring a request
// on a quiet server. wrk2 (which paces to the microsecond) is not available
// here; hey's latencies are printed to 0.1 ms only.
//
// Output: one line of key=value pairs on stdout (requests, errors, rps, the
// latency percentiles in µs, each second's p99, and how late the sender was
// against the schedule).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "discovery/unique_fd.h"
#include "protocols/http1/http1.h"

namespace {

namespace http1 = sonde::protocols::http1;

struct Options {
    uint16_t port = 0;
    std::string path = "/";
    double rate = 0;  // requests per second
    double seconds = 0;
    size_t max_connections = 32;
    bool poisson = false;
};

int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

using sonde::discovery::UniqueFd;

struct Connection {
    UniqueFd fd;
    std::string received;
    int64_t due_ns = 0;   // when its request in flight was due
    int64_t sent_ns = 0;  // when that request was written
    bool busy = false;
};

[[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "sonde-paced-load: %s\n", why.c_str());
    std::exit(1);
}

template <typename T>
T parse_number(std::string_view flag, std::string_view text) {
    T value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size())
        fail(std::string(flag) + " takes a number, not '" + std::string(text) + "'");
    return value;
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view flag = argv[i];
        if (flag == "--poisson") {
            o.poisson = true;
            continue;
        }
        if (i + 1 >= argc) fail(std::string(flag) + " needs a value (see the source's header)");
        std::string_view value = argv[++i];
        if (flag == "--port")
            o.port = parse_number<uint16_t>(flag, value);
        else if (flag == "--path")
            o.path = value;
        else if (flag == "--rate")
            o.rate = parse_number<double>(flag, value);
        else if (flag == "--seconds")
            o.seconds = parse_number<double>(flag, value);
        else if (flag == "--connections")
            o.max_connections = parse_number<size_t>(flag, value);
        else
            fail("unknown option " + std::string(flag) +
                 "; usage: --port P --rate R --seconds S [--path /x] [--connections N] "
                 "[--poisson]");
    }
    if (o.port == 0 || !(o.rate > 0) || !(o.seconds > 0) || o.max_connections == 0 ||
        o.path.empty() || o.path[0] != '/')
        fail("needs --port, --rate > 0, --seconds > 0, --connections > 0 and a path from '/'");
    return o;
}

UniqueFd connect_loopback(uint16_t port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) fail(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        fail("connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// Microseconds at quantile q of `ns` (reordered in place).
double quantile_us(std::vector<int64_t>& ns, double q) {
    if (ns.empty()) return 0;
    size_t k = std::min(ns.size() - 1, static_cast<size_t>(q * static_cast<double>(ns.size())));
    std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(k), ns.end());
    return static_cast<double>(ns[k]) / 1e3;
}

class PacedLoad {
public:
    explicit PacedLoad(const Options& o)
        : o_(o),
          request_("GET " + o.path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(o.port) +
                   "\r\nUser-Agent: sonde-paced-load\r\n\r\n"),
          epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (epoll_.get() < 0) fail(std::string("epoll_create1: ") + std::strerror(errno));
        size_t expected = static_cast<size_t>(o.rate * o.seconds * 1.1) + 1024;
        latency_ns_.reserve(expected);
        lateness_ns_.reserve(expected);
        from_send_ns_.reserve(expected);
        second_due_.reserve(expected);
        connections_.reserve(o.max_connections);
        for (size_t i = 0; i < o.max_connections; ++i) open_connection(i);
    }

    void run() {
        const int64_t gap_ns = static_cast<int64_t>(1e9 / o_.rate);
        std::mt19937_64 random(20261127);
        std::exponential_distribution<double> poisson_gap(o_.rate / 1e9);
        const int64_t start = now_ns();
        start_ns_ = start;
        const int64_t stop_sending = start + static_cast<int64_t>(o_.seconds * 1e9);
        const int64_t give_up = stop_sending + 5'000'000'000;  // answers still owed
        int64_t next_due = start;
        std::vector<epoll_event> ready(64);
        while (true) {
            int64_t now = now_ns();
            while (next_due <= now && next_due < stop_sending) {
                waiting_.push_back(next_due);
                next_due += o_.poisson ? static_cast<int64_t>(poisson_gap(random)) : gap_ns;
            }
            send_waiting(now);
            if (next_due >= stop_sending && waiting_.empty() && in_flight_ == 0) break;
            if (now >= give_up) {
                errors_ += in_flight_ + waiting_.size();
                break;
            }
            int64_t wake = next_due < stop_sending ? next_due : give_up;
            timespec timeout{};
            int64_t wait_ns = std::max<int64_t>(0, wake - now);
            timeout.tv_sec = wait_ns / 1'000'000'000;
            timeout.tv_nsec = wait_ns % 1'000'000'000;
            int n = ::epoll_pwait2(epoll_.get(), ready.data(), static_cast<int>(ready.size()),
                                   &timeout, nullptr);
            if (n < 0) {
                if (errno == EINTR) continue;
                fail(std::string("epoll_pwait2: ") + std::strerror(errno));
            }
            for (int i = 0; i < n; ++i) receive(ready[i].data.u64);
        }
        elapsed_ns_ = now_ns() - start;
    }

    void report() {
        // Each whole second's own p99 first: a stall of the machine (this VM's
        // host) lands in one second and leaves the others' p99 as they were.
        const auto seconds = static_cast<uint32_t>(o_.seconds);
        std::vector<std::vector<int64_t>> per_second(std::max<uint32_t>(1, seconds));
        for (size_t i = 0; i < latency_ns_.size(); ++i)
            per_second[std::min<size_t>(second_due_[i], per_second.size() - 1)].push_back(
                latency_ns_[i]);
        std::string second_p99s;
        for (auto& one : per_second) {
            char text[32];
            std::snprintf(text, sizeof text, "%s%.1f", second_p99s.empty() ? "" : ",",
                          quantile_us(one, 0.99));
            second_p99s += text;
        }
        std::printf("second_p99_us=%s ", second_p99s.c_str());
        double secs = static_cast<double>(elapsed_ns_) / 1e9;
        std::printf(
            "requests=%zu errors=%zu seconds=%.3f rps=%.1f connections=%zu reconnects=%zu "
            "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
            "late_p50_us=%.1f late_p99_us=%.1f sent_p50_us=%.1f sent_p99_us=%.1f\n",
            latency_ns_.size(), errors_, secs, static_cast<double>(latency_ns_.size()) / secs,
            connections_.size(), reconnects_, quantile_us(latency_ns_, 0.5),
            quantile_us(latency_ns_, 0.9), quantile_us(latency_ns_, 0.99),
            quantile_us(latency_ns_, 0.999), quantile_us(latency_ns_, 1.0),
            quantile_us(lateness_ns_, 0.5), quantile_us(lateness_ns_, 0.99),
            quantile_us(from_send_ns_, 0.5), quantile_us(from_send_ns_, 0.99));
    }

private:
    // Due requests go out on idle connections, the first idle one in the pool
    // (so that a quiet run keeps reusing one warm connection); with none idle
    // they wait, and their latency still counts from when they were due.
    void send_waiting(int64_t now) {
        while (!waiting_.empty()) {
            Connection* c = idle_connection();
            if (!c) return;
            c->due_ns = waiting_.front();
            waiting_.pop_front();
            c->sent_ns = now;
            ssize_t n = ::send(c->fd.get(), request_.data(), request_.size(), MSG_NOSIGNAL);
            if (n != static_cast<ssize_t>(request_.size()))
                fail("send: " + std::string(n < 0 ? std::strerror(errno) : "short write"));
            c->busy = true;
            ++in_flight_;
            lateness_ns_.push_back(now - c->due_ns);
        }
    }

    Connection* idle_connection() {
        for (auto& c : connections_)
            if (!c.busy) return &c;
        return nullptr;
    }

    // Opened before the clock starts, so that no connect() falls inside the
    // measurement; slot `index` is reopened in place when the server closes it.
    void open_connection(size_t index) {
        Connection c{connect_loopback(o_.port)};
        c.received.reserve(4096);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = index;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev) != 0)
            fail(std::string("epoll_ctl: ") + std::strerror(errno));
        if (index < connections_.size())
            connections_[index] = std::move(c);
        else
            connections_.push_back(std::move(c));
    }

    void receive(size_t index) {
        Connection& c = connections_[index];
        char buf[4096];
        ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n <= 0) {
            // Closed by the server (its keep-alive limits): a request in
            // flight on it is lost and counted; the slot is reopened.
            if (n < 0 && errno != ECONNRESET) fail(std::string("recv: ") + std::strerror(errno));
            if (c.busy) {
                ++errors_;
                --in_flight_;
            }
            ++reconnects_;
            open_connection(index);
            return;
        }
        int64_t now = now_ns();
        c.received.append(buf, static_cast<size_t>(n));
        if (c.received.size() > 64 * 1024) fail("a response larger than 64 KiB");
        auto bytes =
            std::span(reinterpret_cast<const uint8_t*>(c.received.data()), c.received.size());
        auto head = http1::parse_head(bytes, /*is_request=*/false);
        if (head.status == http1::ParseStatus::Invalid)
            fail("invalid response: " + std::string(head.error));
        if (head.status == http1::ParseStatus::NeedMore) return;
        if (http1::body_framing(head.head, "GET") != http1::BodyFraming::ContentLength)
            fail("the response has no Content-Length (only such responses are supported)");
        size_t total = head.consumed + *head.head.content_length;
        if (c.received.size() < total) return;
        if (c.received.size() > total || !c.busy) fail("bytes beyond the response asked for");
        c.received.clear();
        c.busy = false;
        --in_flight_;
        if (head.head.status >= 200 && head.head.status < 400) {
            latency_ns_.push_back(now - c.due_ns);
            from_send_ns_.push_back(now - c.sent_ns);
            second_due_.push_back(static_cast<uint32_t>((c.due_ns - start_ns_) / 1'000'000'000));
        } else {
            ++errors_;
        }
        if (head.head.connection_close) {
            ++reconnects_;
            open_connection(index);
        }
        send_waiting(now);
    }

    Options o_;
    std::string request_;
    UniqueFd epoll_;
    std::vector<Connection> connections_;
    std::deque<int64_t> waiting_;  // due instants of requests not sent yet
    size_t in_flight_ = 0;
    size_t errors_ = 0;
    size_t reconnects_ = 0;
    int64_t elapsed_ns_ = 0;
    std::vector<int64_t> latency_ns_;
    std::vector<int64_t> lateness_ns_;
    std::vector<int64_t> from_send_ns_;  // the same requests, counted from their write
    std::vector<uint32_t> second_due_;  // the same requests: the second of the run they were due in
    int64_t start_ns_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    Options options = parse_options(argc, argv);
    // Without this the kernel may fire each wake-up up to 50 µs late, the
    // default timer slack: more than the latencies measured here.
    ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    PacedLoad load(options);
    load.run();
    load.report();
    return 0;
}
