// Stand-ins for an OTLP collector, for exporter tests: a loopback HTTP/1.1 server that records
// what it receives and answers with a fixed status, plus small socket helpers.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cctype>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sonde::exporter::otlp::testing {

struct FdCloser {
    int fd = -1;
    ~FdCloser() {
        if (fd >= 0) close(fd);
    }
};

// A loopback port nobody listens on: bound, then closed.
inline uint16_t closed_port() {
    FdCloser s{socket(AF_INET, SOCK_STREAM, 0)};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
}

inline std::string gunzip(const std::string& in) {
    z_stream zs{};
    EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
    std::string out(1 << 20, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
    out.resize(zs.total_out);
    inflateEnd(&zs);
    return out;
}

// One-request-per-connection HTTP/1.1 server on 127.0.0.1:0 that records what it receives.
class LoopbackHttpServer {
public:
    struct Request {
        std::string head;  // request line and headers, lowercased
        std::string body;
    };

    explicit LoopbackHttpServer(std::string status_line, std::string reply_body = {})
        : status_line_(std::move(status_line)), reply_body_(std::move(reply_body)) {
        listener_.fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(listener_.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(bind(listener_.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
        EXPECT_EQ(listen(listener_.fd, 8), 0);
        socklen_t len = sizeof(addr);
        getsockname(listener_.fd, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~LoopbackHttpServer() {
        stop_ = true;
        thread_.join();
    }

    uint16_t port() const { return port_; }
    std::vector<Request> requests() {
        std::lock_guard lock(mutex_);
        return requests_;
    }

private:
    void serve() {
        while (!stop_) {
            pollfd p{listener_.fd, POLLIN, 0};
            if (poll(&p, 1, 20) <= 0) continue;
            FdCloser conn{accept(listener_.fd, nullptr, nullptr)};
            if (conn.fd < 0) continue;
            std::string data;
            char buf[4096];
            size_t head_end = std::string::npos;
            size_t content_length = 0;
            while (true) {
                ssize_t n = recv(conn.fd, buf, sizeof(buf), 0);
                if (n <= 0) break;
                data.append(buf, size_t(n));
                if (head_end == std::string::npos) {
                    head_end = data.find("\r\n\r\n");
                    if (head_end == std::string::npos) continue;
                    std::string head = data.substr(0, head_end);
                    for (auto& c : head) c = char(std::tolower(static_cast<unsigned char>(c)));
                    auto cl = head.find("content-length:");
                    if (cl != std::string::npos) content_length = std::stoul(head.substr(cl + 15));
                }
                if (data.size() >= head_end + 4 + content_length) break;
            }
            Request request;
            request.head = data.substr(0, head_end);
            for (auto& c : request.head) c = char(std::tolower(static_cast<unsigned char>(c)));
            request.body = data.substr(head_end + 4, content_length);
            {
                std::lock_guard lock(mutex_);
                requests_.push_back(std::move(request));
            }
            std::string reply =
                status_line_ + "\r\nContent-Type: application/x-protobuf\r\nContent-Length: " +
                std::to_string(reply_body_.size()) + "\r\nConnection: close\r\n\r\n" + reply_body_;
            send(conn.fd, reply.data(), reply.size(), MSG_NOSIGNAL);
        }
    }

    std::string status_line_;
    std::string reply_body_;
    FdCloser listener_;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::vector<Request> requests_;
    std::thread thread_;
};

}  // namespace sonde::exporter::otlp::testing
