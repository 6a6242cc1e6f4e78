// Which processes to instrument. Discovery reads /proc (under a configurable
// root, so tests can point it at a fake tree), matches processes against the
// selectors, resolves their service identity, and reports what changed.
//
// Selection (Beyla's `discovery` section):
//  - `instrument` selectors are ORed; the criteria inside one selector are
//    ANDed (exe_path and open_ports both set: the process needs both).
//  - A process matching any `exclude` selector is never instrumented, even if
//    an `instrument` selector picks it; pid 1, kernel threads and
//    `never_instrument` (the agent itself) are never instrumented either.
//  - open_ports matches a process listening on, or connected / connecting to,
//    any of the ports, in `instrument` and `exclude` alike.
//  - Kubernetes criteria (k8s_*, and other_inactive_criteria) cannot be
//    evaluated until Kubernetes support lands: a selector that has any of them
//    matches nothing for now (in `exclude` too: it excludes nothing), and
//    inactive_criteria() lists them so the caller can say so once.
//  - With no `instrument` selector at all and instrument_all_listeners set:
//    every process with a listening TCP socket (exclusions still apply).
//
// Service naming, first non-empty wins:
//  service.name:      the `name` of the first instrument selector that matched
//                     > DiscoveryOptions::service_name (the agent-wide explicit
//                       SONDE_/BEYLA_/OTEL_SERVICE_NAME)
//                     > OTEL_SERVICE_NAME in the target's own environment
//                     > service.name in the target's OTEL_RESOURCE_ATTRIBUTES
//                     > the executable's file name.
//  service.namespace: the selector's `namespace` > service_namespace >
//                     service.namespace in the target's OTEL_RESOURCE_ATTRIBUTES > "".
//  The selector beats the agent-wide name because it is the more specific
//  statement: with several named selectors, one agent-wide name would
//  otherwise erase them all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "discovery/port_set.h"
#include "pipeline/span.h"

namespace sonde::discovery {

// One entry of discovery.instrument or discovery.exclude_instrument.
struct Selector {
    std::string name;            // service.name for what it matches ("" = not set)
    std::string namespace_name;  // service.namespace for what it matches ("" = not set)
    std::string exe_path_regex;  // RE2, partial match against the executable path
    PortSet open_ports;
    // Kubernetes criteria: accepted, not evaluated yet (see the top of this file).
    std::string k8s_namespace, k8s_pod_name, k8s_deployment_name;
    std::vector<std::pair<std::string, std::string>> k8s_pod_labels;
    // Any other criterion the configuration accepts but discovery cannot
    // evaluate yet, as (key, value), e.g. {"k8s_owner_name", "shop"} or
    // {"containers_only", "true"}. Like k8s_*, one makes the selector match
    // nothing, never more than it asks for.
    std::vector<std::pair<std::string, std::string>> other_inactive_criteria;
    // Where the selector came from, for logs and errors, e.g.
    // "discovery.instrument[2] (config.yml:7)". Empty: "discovery.instrument[i]"
    // or "discovery.exclude_instrument[i]" is filled in.
    std::string origin;

    bool has_inactive_criteria() const;
    // Any criterion at all, active or not. A selector without one is rejected.
    bool has_criteria() const;
};

struct DiscoveryOptions {
    std::string proc_root = "/proc";
    std::vector<Selector> instrument;  // ORed
    std::vector<Selector> exclude;     // any match excludes
    std::string service_name;          // agent-wide explicit name (SONDE_SERVICE_NAME)
    std::string service_namespace;     // agent-wide explicit namespace
    // With no instrument selector at all: every process with a listening TCP socket.
    bool instrument_all_listeners = false;
    std::unordered_set<uint32_t> never_instrument;  // the agent itself
};

// Every problem in the selectors (no criteria, regex that does not compile),
// one message each naming the selector's origin. Empty when all is well.
std::vector<std::string> validate_selectors(const DiscoveryOptions& options);

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

// Defined in the .cpp: a selector after validation, and what a socket (or a
// kernel event standing in for one) says about its owner.
struct CompiledSelector;
struct SocketUse;

// What an exec showed of a process no selector wanted then. A short-lived
// client (curl against a fast server) can connect, finish and exit before its
// connect() event is handled, and a zombie's /proc no longer names its
// executable: the connect is then judged on what the exec showed.
struct RememberedExec {
    uint64_t start_time_ticks = 0;
    std::string exe_path;
};

class ProcessDiscovery {
public:
    // The kernel's watched-port map holds this many entries.
    static constexpr size_t kMaxWatchedPorts = 1024;

    // Throws std::invalid_argument carrying every validate_selectors() message.
    explicit ProcessDiscovery(DiscoveryOptions options);
    ~ProcessDiscovery();
    ProcessDiscovery(ProcessDiscovery&&) noexcept;
    ProcessDiscovery& operator=(ProcessDiscovery&&) noexcept;

    // Which processes a periodic rescan evaluates.
    enum class RescanScope {
        Full,      // every process
        Unjudged,  // only those not judged since the last full rescan
    };
    // Unjudged is what a periodic rescan needs between full ones: the kernel
    // reports exec(), listen() and connect() to a watched port for every
    // process, and each report re-judges that process, so a process judged
    // once changes its answer only through an event, unless events were lost
    // (the caller then asks for Full). Skipping them spares the socket tables,
    // which cost the most on a host with many short connections.
    //
    // A /proc walk: new matches, tracked processes that are gone or were
    // replaced (pid reuse detected by start time), and tracked processes that
    // now match a port exclusion.
    std::vector<DiscoveryChange> rescan(RescanScope scope = RescanScope::Full);

    // Cheap targeted checks driven by kernel events. on_listen / on_connect
    // take the port as evidence the socket exists (it may not be in /proc yet).
    std::vector<DiscoveryChange> on_exec(uint32_t pid);
    std::vector<DiscoveryChange> on_listen(uint32_t pid, uint16_t port);
    std::vector<DiscoveryChange> on_connect(uint32_t pid, uint16_t port);
    std::vector<DiscoveryChange> on_exit(uint32_t pid);

    bool is_tracked(uint32_t pid) const { return tracked_.count(pid) != 0; }
    // The start time of process `pid` (/proc/PID/stat), nullopt when it is gone.
    std::optional<uint64_t> start_time_ticks(uint32_t pid);
    size_t tracked_count() const { return tracked_.size(); }
    // At least one instrument selector (active or not) is configured.
    bool has_selector() const;
    // The ports of all active instrument selectors, lowest first, at most
    // `max_count` (ask for one more than the kernel holds to detect overflow).
    std::vector<uint16_t> watched_ports(size_t max_count = kMaxWatchedPorts) const;
    // One line per selector with criteria that are accepted but not evaluated
    // yet, e.g. `discovery.instrument[0]: k8s_namespace="payments"`.
    std::vector<std::string> inactive_criteria() const;
    const DiscoveryStats& stats() const { return stats_; }

private:
    std::vector<DiscoveryChange> on_port(uint32_t pid, const SocketUse& evidence);
    void remember_exec(uint32_t pid, RememberedExec exec);

    DiscoveryOptions options_;
    std::vector<CompiledSelector> instrument_;
    std::vector<CompiledSelector> exclude_;
    PortSet instrument_ports_;  // of active instrument selectors
    PortSet exclude_ports_;     // of active exclude selectors
    PortSet selector_ports_;    // both: the client connections worth reading
    bool listener_mode_ = false;
    std::unordered_map<uint32_t, std::shared_ptr<const pipeline::ServiceIdentity>> tracked_;
    // Processes a rescan evaluated without a match, since the last full one.
    std::unordered_set<uint32_t> judged_;
    DiscoveryStats stats_;
    // Bounded: the oldest entries go first; an exit removes its own.
    static constexpr size_t kMaxRememberedExecs = 1024;
    std::unordered_map<uint32_t, RememberedExec> remembered_;
    std::deque<uint32_t> remembered_order_;
};

}  // namespace sonde::discovery
