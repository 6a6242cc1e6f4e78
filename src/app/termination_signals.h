// SIGINT/SIGTERM, blocked from the start and read from a signalfd, so that a
// signal arriving while programs are being loaded still ends in an orderly
// detach instead of killing the process mid-attach. Shared by the binaries.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

namespace sonde::app {

class TerminationSignals {
public:
    TerminationSignals() {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, nullptr);
        fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    }
    ~TerminationSignals() {
        if (fd_ >= 0) close(fd_);
    }
    TerminationSignals(const TerminationSignals&) = delete;
    TerminationSignals& operator=(const TerminationSignals&) = delete;

    bool ok() const { return fd_ >= 0; }
    int fd() const { return fd_; }

    // Whether a signal is pending; never blocks (for event loops).
    bool requested() const {
        signalfd_siginfo info{};
        return read(fd_, &info, sizeof info) == sizeof info;
    }

    // Blocks until SIGINT or SIGTERM arrives; returns its number.
    int wait() const {
        for (;;) {
            signalfd_siginfo info{};
            const ssize_t n = read(fd_, &info, sizeof info);
            if (n == sizeof info) return int(info.ssi_signo);
            if (n < 0 && errno != EAGAIN && errno != EINTR) return SIGTERM;
            pollfd p{fd_, POLLIN, 0};
            poll(&p, 1, -1);
        }
    }

private:
    int fd_ = -1;
};

}  // namespace sonde::app
