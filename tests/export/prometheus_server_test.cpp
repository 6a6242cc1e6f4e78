#include "export/prometheus/prometheus_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sonde::exporter {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kBody = "sonde_up 1\n";

// A connected loopback client; reads give up after a few seconds so a server
// bug fails the test instead of hanging it.
class Client {
public:
    explicit Client(uint16_t port, int receive_buffer = 0)
        : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        if (receive_buffer > 0) {
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        }
        timeval timeout{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    }
    ~Client() { ::close(fd_); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    bool connected() const { return connected_; }

    // Returns false if the peer stopped reading (reset) before all was sent.
    bool send(std::string_view data) {
        while (!data.empty()) {
            const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                return false;
            }
            data.remove_prefix(size_t(n));
        }
        return true;
    }

    // The client stops sending: the server sees the end of the request stream.
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

    // Whether an answer (or the close) is waiting to be read.
    bool readable() const {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, 0) == 1;
    }

    std::string read_to_end() {
        std::string out;
        char buffer[65536];
        while (true) {
            const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
            if (n <= 0) {
                return out;
            }
            out.append(buffer, size_t(n));
        }
    }

private:
    int fd_;
    bool connected_ = false;
};

struct Response {
    int status = 0;
    std::string head;
    std::string body;
};

Response parse_response(const std::string& raw) {
    Response r;
    const size_t end = raw.find("\r\n\r\n");
    if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) {
        return r;
    }
    r.status = std::stoi(raw.substr(9, 3));
    r.head = raw.substr(0, end + 2);
    r.body = raw.substr(end + 4);
    return r;
}

Response scrape(uint16_t port, std::string_view request, bool half_close = false) {
    Client client(port);
    EXPECT_TRUE(client.connected());
    client.send(request);
    if (half_close) {
        client.shutdown_write();
    }
    return parse_response(client.read_to_end());
}

std::string get_request(std::string_view target, std::string_view method = "GET") {
    return std::string(method) + " " + std::string(target) +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n";
}

// Connections waiting in the listen queue of the loopback listener on `port`,
// from /proc/net/tcp (rx_queue of a LISTEN socket is its accept backlog).
// Lets a test wait until the server has taken a connection, instead of sleeping.
int accept_queue_length(uint16_t port) {
    std::ifstream file("/proc/net/tcp");
    std::string line;
    char wanted[32];
    std::snprintf(wanted, sizeof wanted, ":%04X", port);
    std::getline(file, line);  // header
    while (std::getline(file, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state, queues;
        fields >> slot >> local >> remote >> state >> queues;
        if (state == "0A" && local.size() >= 5 && local.substr(local.size() - 5) == wanted) {
            return std::stoi(queues.substr(queues.find(':') + 1), nullptr, 16);
        }
    }
    return -1;
}

bool wait_until_accepted(uint16_t port) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
        if (accept_queue_length(port) == 0) {
            return true;
        }
        std::this_thread::yield();
    }
    return false;
}

// The endpoint's own counters, all zero, as every scrape of a fresh server ends.
std::string own_metrics() {
    std::string out;
    render_prometheus_server_stats(PrometheusServerStats{}, out);
    return out;
}

size_t open_fds() {
    size_t n = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/self/fd")) {
        ++n;
    }
    return n;
}

PrometheusServerOptions loopback_options() {
    PrometheusServerOptions options;
    options.bind_address = "127.0.0.1";
    options.port = 0;
    return options;
}

class PrometheusServerTest : public testing::Test {
protected:
    void SetUp() override { start(loopback_options()); }

    void start(
        PrometheusServerOptions options,
        PrometheusServer::Renderer render = [] { return std::string(kBody); }) {
        server_.reset();
        server_ = std::make_unique<PrometheusServer>(std::move(options), std::move(render));
        server_->start();
        port_ = server_->bound_port();
        ASSERT_NE(port_, 0);
    }

    std::unique_ptr<PrometheusServer> server_;
    uint16_t port_ = 0;
};

TEST_F(PrometheusServerTest, ServesTheRenderedTextOnGet) {
    const Response r = scrape(port_, get_request("/metrics"));
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.head.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
              std::string::npos)
        << r.head;
    EXPECT_NE(r.head.find("\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n"),
              std::string::npos)
        << r.head;
    EXPECT_NE(r.head.find("\r\nConnection: close\r\n"), std::string::npos) << r.head;
    EXPECT_EQ(r.body, std::string(kBody) + own_metrics());
}

TEST_F(PrometheusServerTest, IgnoresTheQueryString) {
    EXPECT_EQ(scrape(port_, get_request("/metrics?name[]=up")).status, 200);
}

TEST_F(PrometheusServerTest, AnswersHeadWithoutABody) {
    const Response r = scrape(port_, get_request("/metrics", "HEAD"));
    EXPECT_EQ(r.status, 200);
    const size_t length = kBody.size() + own_metrics().size();
    EXPECT_NE(r.head.find("\r\nContent-Length: " + std::to_string(length) + "\r\n"),
              std::string::npos)
        << r.head;
    EXPECT_EQ(r.body, "");
}

TEST_F(PrometheusServerTest, ServesManyScrapesInARow) {
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(scrape(port_, get_request("/metrics")).body, std::string(kBody) + own_metrics())
            << i;
    }
}

// What goes over the socket, answered by the real server: only its path, only GET and HEAD,
// garbage and oversized heads refused, and the endpoint serving on after each.
struct SocketCase {
    std::string name;
    std::string request;
    int status;
    std::string in_head = {};  // a header line the answer must carry
    bool half_close = false;   // the client shuts its sending side after the request
};

class PrometheusServerAnswers : public PrometheusServerTest,
                                public testing::WithParamInterface<SocketCase> {};

TEST_P(PrometheusServerAnswers, Table) {
    const Response r = scrape(port_, GetParam().request, GetParam().half_close);
    EXPECT_EQ(r.status, GetParam().status);
    EXPECT_NE(r.head.find("\r\nConnection: close\r\n"), std::string::npos) << r.head;
    if (!GetParam().in_head.empty()) {
        EXPECT_NE(r.head.find("\r\n" + GetParam().in_head + "\r\n"), std::string::npos) << r.head;
    }
    EXPECT_EQ(scrape(port_, get_request("/metrics")).status, 200);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PrometheusServerAnswers,
    testing::Values(
        SocketCase{"Get", get_request("/metrics"), 200},
        SocketCase{"Head", get_request("/metrics", "HEAD"), 200},
        SocketCase{"QueryIgnored", get_request("/metrics?name[]=up"), 200},
        SocketCase{"Root", get_request("/"), 404},
        SocketCase{"Slash", get_request("/metrics/"), 404},
        SocketCase{"Longer", get_request("/metricsx"), 404},
        SocketCase{"Post", get_request("/metrics", "POST"), 405, "Allow: GET, HEAD"},
        SocketCase{"Delete", get_request("/metrics", "DELETE"), 405, "Allow: GET, HEAD"},
        SocketCase{"TlsHello", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
                   400},
        SocketCase{"Http2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
        SocketCase{"NoVersion", "GET /metrics\r\n\r\n", 400},
        SocketCase{"HeaderWithoutColon", "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400},
        SocketCase{"NulInHeader", std::string("GET /metrics HTTP/1.1\r\nA: \0\r\n\r\n", 30), 400},
        SocketCase{"ClientGaveUpMidRequest", "GET /metrics HTTP/1.1\r\nHost:", 400, "", true},
        SocketCase{"HugeHeader",
                   "GET /metrics HTTP/1.1\r\nX-Padding: " + std::string(20000, 'a') + "\r\n\r\n",
                   431},
        SocketCase{"HugeRequestLine", "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n", 431},
        SocketCase{"ManyHeaders",
                   "GET /metrics HTTP/1.1\r\n" +
                       [] {
                           std::string h;
                           for (int i = 0; i < 2000; ++i) h += "X-" + std::to_string(i) + ": v\r\n";
                           return h;
                       }() +
                       "\r\n",
                   431},
        SocketCase{"NoNewlineEver", std::string(50000, 'G'), 431}),
    [](const testing::TestParamInfo<SocketCase>& info) { return info.param.name; });

TEST_F(PrometheusServerTest, ClientHangingUpMidRequestIsHarmless) {
    {
        Client client(port_);
        ASSERT_TRUE(client.connected());
        client.send("GET /metr");
    }
    {
        Client client(port_);
        ASSERT_TRUE(client.connected());
    }
    EXPECT_EQ(scrape(port_, get_request("/metrics")).status, 200);
}

TEST_F(PrometheusServerTest, LargeBodiesArriveWhole) {
    const std::string big(4 << 20, 'x');
    start(loopback_options(), [&big] { return big; });
    const Response r = scrape(port_, get_request("/metrics"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.size(), big.size() + own_metrics().size());
    EXPECT_EQ(r.body.substr(0, big.size()), big);
}

TEST_F(PrometheusServerTest, RendererFailureIs500) {
    start(loopback_options(), []() -> std::string { throw std::runtime_error("boom"); });
    EXPECT_EQ(scrape(port_, get_request("/metrics")).status, 500);
}

TEST_F(PrometheusServerTest, PartialRequestTimesOutWith408) {
    PrometheusServerOptions options = loopback_options();
    options.request_timeout_ms = 200;
    start(options);
    Client client(port_);
    ASSERT_TRUE(client.connected());
    client.send("GET /metrics HTTP/1.1\r\n");
    EXPECT_EQ(parse_response(client.read_to_end()).status, 408);
}

TEST_F(PrometheusServerTest, SilentClientsDoNotHoldUpOtherScrapes) {
    PrometheusServerOptions options = loopback_options();
    options.request_timeout_ms = 30000;
    start(options);
    std::vector<std::unique_ptr<Client>> silent;
    for (int i = 0; i < 10; ++i) {
        silent.push_back(std::make_unique<Client>(port_));
        ASSERT_TRUE(silent.back()->connected());
        silent.back()->send("GET /metrics HTTP/1.1\r\n");  // and never the rest
    }
    ASSERT_TRUE(wait_until_accepted(port_));
    const auto before = Clock::now();
    EXPECT_EQ(scrape(port_, get_request("/metrics")).status, 200);
    EXPECT_LT(Clock::now() - before, std::chrono::seconds(2));
    EXPECT_EQ(server_->stats().evicted, 0u);
}

// Slowloris: a request that trickles in one byte at a time is cut off at the request time
// limit (from accept, not from the last byte), answered 408 and counted.
TEST_F(PrometheusServerTest, TricklingRequestIsCutOffAtTheTimeLimit) {
    PrometheusServerOptions options = loopback_options();
    options.request_timeout_ms = 300;
    start(options);
    Client slow(port_);
    ASSERT_TRUE(slow.connected());
    const std::string request = "GET /metrics HTTP/1.1\r\nX-Slow: " + std::string(100, 'a');
    const auto before = Clock::now();
    size_t sent = 0;
    while (sent < request.size() && !slow.readable() &&
           Clock::now() - before < std::chrono::seconds(3)) {
        ASSERT_TRUE(slow.send(request.substr(sent++, 1)));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const Response r = parse_response(slow.read_to_end());
    const auto took = Clock::now() - before;
    EXPECT_EQ(r.status, 408);
    EXPECT_GE(took, std::chrono::milliseconds(300));
    EXPECT_LT(took, std::chrono::seconds(3));
    EXPECT_LT(sent, request.size());
    EXPECT_EQ(server_->stats().timeout, 1u);
}

// Idle connections beyond the cap: the oldest unfinished ones are closed to make room, so the
// endpoint holds a bounded number of descriptors and a scrape still gets through at once.
TEST_F(PrometheusServerTest, ConnectionsAreCappedAndTheOldestIdleOneMakesRoom) {
    PrometheusServerOptions options = loopback_options();
    options.request_timeout_ms = 30000;
    options.max_connections = 4;
    start(options);
    const size_t fds_before = open_fds();
    std::vector<std::unique_ptr<Client>> idle;
    for (int i = 0; i < 20; ++i) {
        idle.push_back(std::make_unique<Client>(port_));
        ASSERT_TRUE(idle.back()->connected());
    }
    ASSERT_TRUE(wait_until_accepted(port_));
    // Our 20 client sockets plus at most 4 the server holds (5 for a moment: a new connection
    // is accepted before the oldest idle one is closed).
    EXPECT_LE(open_fds(), fds_before + idle.size() + options.max_connections + 1);
    const auto before = Clock::now();
    EXPECT_EQ(scrape(port_, get_request("/metrics")).status, 200);
    EXPECT_LT(Clock::now() - before, std::chrono::seconds(2));
    EXPECT_GE(server_->stats().evicted, 16u);
    // The first ones were closed by the server.
    EXPECT_EQ(idle.front()->read_to_end(), "");
}

// Each response in flight holds a whole render: past the cap a scrape is answered 503 with a
// Retry-After, until the slow reader's response is done or dropped.
TEST_F(PrometheusServerTest, ResponsesInFlightAreCapped) {
    PrometheusServerOptions options = loopback_options();
    options.request_timeout_ms = 500;
    options.max_responses_in_flight = 1;
    const std::string big(32 << 20, 'x');
    start(options, [&big] { return big; });
    Client reader(port_, /*receive_buffer=*/4096);
    ASSERT_TRUE(reader.connected());
    ASSERT_TRUE(reader.send(get_request("/metrics")));
    // The first response cannot fit in the socket buffers: it is still in flight.
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    Response r;
    while (Clock::now() < deadline &&
           (r = scrape(port_, get_request("/metrics", "HEAD"))).status != 503) {
    }
    EXPECT_EQ(r.status, 503);
    EXPECT_NE(r.head.find("\r\nRetry-After: 1\r\n"), std::string::npos) << r.head;
    EXPECT_GE(server_->stats().busy, 1u);
    // The reader never reads: its response is dropped at the time limit, and the slot frees.
    while (Clock::now() < deadline &&
           scrape(port_, get_request("/metrics", "HEAD")).status != 200) {
    }
    EXPECT_EQ(scrape(port_, get_request("/metrics", "HEAD")).status, 200);
    EXPECT_GE(server_->stats().timeout, 1u);
}

// Every refusal is counted by reason, and the counts end every scrape.
TEST_F(PrometheusServerTest, RefusalsAreCountedInTheScrape) {
    PrometheusServerOptions options = loopback_options();
    options.request_timeout_ms = 200;
    start(options);
    scrape(port_, "junk\r\n\r\n");
    scrape(port_, "\x01\x02");
    scrape(port_, "GET /" + std::string(10000, 'a'));
    scrape(port_, get_request("/other"));           // answered, not refused
    scrape(port_, get_request("/metrics", "PUT"));  // answered, not refused
    {
        Client silent(port_);
        ASSERT_TRUE(silent.connected());
        EXPECT_EQ(silent.read_to_end(), "");  // closed at the time limit, nothing said
    }
    const Response r = scrape(port_, get_request("/metrics"));
    EXPECT_EQ(r.status, 200);
    for (const std::string_view line : {
             "sonde_prometheus_requests_rejected_total{reason=\"malformed\"} 2\n",
             "sonde_prometheus_requests_rejected_total{reason=\"too_large\"} 1\n",
             "sonde_prometheus_requests_rejected_total{reason=\"timeout\"} 1\n",
             "sonde_prometheus_requests_rejected_total{reason=\"evicted\"} 0\n",
             "sonde_prometheus_requests_rejected_total{reason=\"busy\"} 0\n",
         }) {
        EXPECT_NE(r.body.find(line), std::string::npos) << line << r.body;
    }
}

TEST_F(PrometheusServerTest, SilentClientDoesNotBlockStop) {
    PrometheusServerOptions options = loopback_options();
    options.request_timeout_ms = 30000;
    start(options);
    Client silent(port_);
    ASSERT_TRUE(silent.connected());
    ASSERT_TRUE(wait_until_accepted(port_));
    const auto before = Clock::now();
    server_->stop();
    EXPECT_LT(Clock::now() - before, std::chrono::milliseconds(100));
    // Stopping twice, and destroying after a stop, are both fine.
    server_->stop();
    server_.reset();
}

TEST_F(PrometheusServerTest, DestructorStopsPromptly) {
    Client silent(port_);
    ASSERT_TRUE(silent.connected());
    ASSERT_TRUE(wait_until_accepted(port_));
    const auto before = Clock::now();
    server_.reset();
    EXPECT_LT(Clock::now() - before, std::chrono::milliseconds(100));
}

TEST_F(PrometheusServerTest, StopWhileIdleIsPrompt) {
    const auto before = Clock::now();
    server_->stop();
    EXPECT_LT(Clock::now() - before, std::chrono::milliseconds(100));
}

TEST_F(PrometheusServerTest, BusyPortThrows) {
    PrometheusServerOptions options = loopback_options();
    options.port = port_;
    PrometheusServer second(options, [] { return std::string(); });
    EXPECT_THROW(second.start(), std::runtime_error);
}

TEST_F(PrometheusServerTest, StartingTwiceThrows) {
    EXPECT_THROW(server_->start(), std::runtime_error);
    EXPECT_EQ(scrape(port_, get_request("/metrics")).status, 200);
}

TEST(PrometheusServerBind, BadAddressThrows) {
    PrometheusServerOptions options = loopback_options();
    options.bind_address = "not an address";
    PrometheusServer server(options, [] { return std::string(); });
    EXPECT_THROW(server.start(), std::runtime_error);
}

TEST(PrometheusServerBind, ServesOnIpv6LoopbackWhenAvailable) {
    PrometheusServerOptions options = loopback_options();
    options.bind_address = "::1";
    PrometheusServer server(options, [] { return std::string(kBody); });
    try {
        server.start();
    } catch (const std::runtime_error& e) {
        GTEST_SKIP() << "no IPv6 loopback: " << e.what();
    }
    EXPECT_NE(server.bound_port(), 0);
}

struct ClassifyCase {
    std::string name;
    std::string request;
    int status;
};

class ClassifyScrapeRequest : public testing::TestWithParam<ClassifyCase> {};

TEST_P(ClassifyScrapeRequest, Table) {
    EXPECT_EQ(classify_scrape_request(GetParam().request, "/metrics", 128), GetParam().status);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ClassifyScrapeRequest,
    testing::Values(
        ClassifyCase{"Get", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200},
        ClassifyCase{"Http10NoHeaders", "GET /metrics HTTP/1.0\r\n\r\n", 200},
        ClassifyCase{"Head", "HEAD /metrics HTTP/1.1\r\n\r\n", 200},
        ClassifyCase{"BareLineFeeds", "GET /metrics HTTP/1.1\nHost: x\n\n", 200},
        ClassifyCase{"LeadingBlankLines", "\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n", 200},
        ClassifyCase{"AbsoluteForm", "GET http://host:9400/metrics HTTP/1.1\r\n\r\n", 200},
        ClassifyCase{"Query", "GET /metrics?a=b HTTP/1.1\r\n\r\n", 200},
        ClassifyCase{"BodyAfterHeadIgnored", "GET /metrics HTTP/1.1\r\n\r\njunk\x01", 200},
        ClassifyCase{"EmptyHeaderValue", "GET /metrics HTTP/1.1\r\nX:\r\n\r\n", 200},
        ClassifyCase{"OtherPath", "GET /other HTTP/1.1\r\n\r\n", 404},
        ClassifyCase{"Asterisk", "OPTIONS * HTTP/1.1\r\n\r\n", 404},
        ClassifyCase{"PathCase", "GET /METRICS HTTP/1.1\r\n\r\n", 404},
        ClassifyCase{"Post", "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405},
        ClassifyCase{"LowercaseMethod", "get /metrics HTTP/1.1\r\n\r\n", 405},
        ClassifyCase{"Empty", "", 0}, ClassifyCase{"PartialMethod", "GE", 0},
        ClassifyCase{"PartialVersion", "GET /metrics HTTP/1", 0},
        ClassifyCase{"NoBlankLine", "GET /metrics HTTP/1.1\r\nHost: x\r\n", 0},
        ClassifyCase{"HalfCrLf", "GET /metrics HTTP/1.1\r\n\r", 0},
        ClassifyCase{"TlsHandshake", std::string("\x16\x03\x01", 3), 400},
        ClassifyCase{"LeadingSpace", " GET /metrics HTTP/1.1\r\n\r\n", 400},
        ClassifyCase{"DoubleSpace", "GET  /metrics HTTP/1.1\r\n\r\n", 400},
        ClassifyCase{"NoVersion", "GET /metrics\r\n\r\n", 400},
        ClassifyCase{"Http2", "GET /metrics HTTP/2.0\r\n\r\n", 400},
        ClassifyCase{"LongVersion", "GET /metrics HTTP/1.10", 400},
        ClassifyCase{"NulInTarget", std::string("GET /met\0rics HTTP/1.1\r\n\r\n", 26), 400},
        ClassifyCase{"HeaderWithoutColon", "GET /metrics HTTP/1.1\r\nHost\r\n\r\n", 400},
        ClassifyCase{"FoldedHeader", "GET /metrics HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400},
        ClassifyCase{"CrInHeader", "GET /metrics HTTP/1.1\r\nA: b\rc\r\n\r\n", 400},
        ClassifyCase{"SpaceInHeaderName", "GET /metrics HTTP/1.1\r\nA b: c\r\n\r\n", 400},
        ClassifyCase{"HeadersTooLong",
                     "GET /metrics HTTP/1.1\r\nX: " + std::string(200, 'a') + "\r\n\r\n", 431},
        ClassifyCase{"NoEndTooLong", "GET /metrics HTTP/1.1\r\nX: " + std::string(200, 'a'), 431},
        ClassifyCase{"TargetTooLong", "GET /" + std::string(200, 'a'), 431},
        ClassifyCase{"MethodTooLong", std::string(200, 'G'), 431}),
    [](const testing::TestParamInfo<ClassifyCase>& info) { return info.param.name; });

TEST(ClassifyScrapeRequestLimits, HeadEndingExactlyAtTheLimitIsAccepted) {
    const std::string request = "GET /metrics HTTP/1.1\r\n\r\n";
    EXPECT_EQ(classify_scrape_request(request, "/metrics", request.size()), 200);
    EXPECT_EQ(classify_scrape_request(request, "/metrics", request.size() - 1), 431);
    EXPECT_EQ(classify_scrape_request(request + "body", "/metrics", request.size()), 200);
}

TEST(ClassifyScrapeRequestLimits, AnAnswerNeverChangesWithMoreBytes) {
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: example\r\n\r\n";
    for (size_t max = 0; max <= request.size() + 1; ++max) {
        int first_answer = 0;
        for (size_t n = 0; n <= request.size(); ++n) {
            const int status = classify_scrape_request(request.substr(0, n), "/metrics", max);
            if (first_answer != 0) {
                ASSERT_EQ(status, first_answer) << "max=" << max << " n=" << n;
            }
            first_answer = status;
        }
        EXPECT_EQ(first_answer, max >= request.size() ? 200 : 431) << max;
    }
}

}  // namespace
}  // namespace sonde::exporter
