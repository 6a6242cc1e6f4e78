// Which processes to instrument. Discovery reads /proc (under a configurable
// root, so tests can point it at a fake tree), matches processes against the
// selectors, resolves their service identity, and reports what changed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "discovery/port_set.h"
#include "pipeline/span.h"

namespace re2 {
class RE2;
}

namespace sonde::discovery {

struct DiscoveryOptions {
    std::string proc_root = "/proc";
    PortSet open_ports;             // processes listening on or connecting to these ports
    std::string exe_path_regex;     // RE2, partial match against the executable path; empty = none
    std::string service_name;       // explicit override for every process (SONDE_SERVICE_NAME)
    std::string service_namespace;  // explicit override (SONDE_SERVICE_NAMESPACE)
    // With no selector at all: every process with a listening TCP socket.
    bool instrument_all_listeners = false;
    std::unordered_set<uint32_t> never_instrument;  // the agent itself
};

// Degraded-mode counts for the agent's own metrics. Discovery runs on one
// thread, so these are plain integers.
struct DiscoveryStats {
    uint64_t tcp_rows_malformed = 0;    // rows of net/tcp{,6} that did not parse
    uint64_t files_truncated = 0;       // reads that hit their size cap
    uint64_t fd_scans_truncated = 0;    // processes with more fds than one scan looks at
    uint64_t processes_unreadable = 0;  // exe link unreadable (no permission, or a zombie)
};

struct DiscoveryChange {
    enum class Kind { Instrument, Forget } kind;
    std::shared_ptr<const pipeline::ServiceIdentity> identity;  // set for Instrument
    uint32_t pid = 0;
};

class ProcessDiscovery {
public:
    // Throws std::invalid_argument if exe_path_regex does not compile.
    explicit ProcessDiscovery(DiscoveryOptions options);
    ~ProcessDiscovery();

    // Full /proc walk: new matches, and tracked processes that are gone or
    // were replaced (pid reuse detected by start time).
    std::vector<DiscoveryChange> rescan();

    // Cheap targeted checks driven by kernel events.
    std::vector<DiscoveryChange> on_exec(uint32_t pid);
    std::vector<DiscoveryChange> on_listen(uint32_t pid, uint16_t port);
    std::vector<DiscoveryChange> on_connect(uint32_t pid, uint16_t port);
    std::vector<DiscoveryChange> on_exit(uint32_t pid);

    bool is_tracked(uint32_t pid) const { return tracked_.count(pid) != 0; }
    size_t tracked_count() const { return tracked_.size(); }
    bool has_selector() const;
    const DiscoveryStats& stats() const { return stats_; }

private:
    std::vector<DiscoveryChange> track_with_port(uint32_t pid, uint16_t port);
    std::optional<std::shared_ptr<const pipeline::ServiceIdentity>> evaluate(
        uint32_t pid, const std::unordered_set<uint16_t>* extra_ports);
    DiscoveryOptions options_;
    std::unique_ptr<re2::RE2> exe_regex_;
    std::unordered_map<uint32_t, std::shared_ptr<const pipeline::ServiceIdentity>> tracked_;
    DiscoveryStats stats_;
};

}  // namespace sonde::discovery
