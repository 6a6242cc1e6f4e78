// A file descriptor that closes itself: the /proc and ELF readers' files, and
// the benchmark load generator's sockets (src/app/paced_load_main.cpp).
#pragma once

#include <unistd.h>

#include <utility>

namespace sonde::discovery {

class UniqueFd {
public:
    explicit UniqueFd(int fd = -1) : fd_(fd) {}
    ~UniqueFd() {
        if (fd_ >= 0) ::close(fd_);
    }
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    // The fd held before is closed when `other` (which now holds it) goes.
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        std::swap(fd_, other.fd_);
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

}  // namespace sonde::discovery
