#include "discovery/process_discovery.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <re2/re2.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <utility>

#include "discovery/proc_parsers.h"
#include "discovery/text_util.h"

namespace sonde::discovery {

namespace {

using pipeline::ServiceIdentity;
using IdentityPtr = std::shared_ptr<const ServiceIdentity>;

// Caps that keep one look at a hostile or huge process bounded.
constexpr size_t kStatMaxBytes = 4 * 1024;
constexpr size_t kEnvironMaxBytes = 64 * 1024;
// The kernel lists listening sockets before established ones, so a table cut
// at the cap still holds every LISTEN row unless there are ~25k listeners.
constexpr size_t kTcpTableMaxBytes = 4 * 1024 * 1024;
// /proc/PID/fd lists fds in ascending order and servers open their listening
// sockets early, so the first fds are the ones that matter.
constexpr size_t kMaxFdsScanned = 16 * 1024;
constexpr size_t kMaxProcEntries = 4 * 1024 * 1024;  // PID_MAX_LIMIT

constexpr uint8_t kTcpStateSynSent = 0x02;  // a connect() still in progress
constexpr uint32_t kInitPid = 1;
constexpr uint32_t kKthreaddPid = 2;

class UniqueFd {
public:
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

struct DirCloser {
    void operator()(DIR* dir) const { ::closedir(dir); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

// Whole file up to `max_bytes`. /proc files report size 0, so read to EOF.
std::optional<std::string> read_capped(const std::string& path, size_t max_bytes,
                                       DiscoveryStats& stats) {
    // O_NONBLOCK: a fake or hostile tree could put a FIFO where a file should be.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (fd.get() < 0) {
        return std::nullopt;
    }
    std::string out(std::min<size_t>(max_bytes, 4096), '\0');
    size_t used = 0;
    while (true) {
        if (used == out.size()) {
            if (out.size() == max_bytes) {
                char probe;
                ssize_t more;
                do {
                    more = ::read(fd.get(), &probe, 1);
                } while (more < 0 && errno == EINTR);
                if (more > 0) {
                    ++stats.files_truncated;
                }
                break;
            }
            out.resize(std::min(max_bytes, out.size() * 2));
        }
        const ssize_t got = ::read(fd.get(), out.data() + used, out.size() - used);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return std::nullopt;
        }
        if (got == 0) {
            break;
        }
        used += static_cast<size_t>(got);
    }
    out.resize(used);
    return out;
}

bool file_has_content(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (fd.get() < 0) {
        return false;
    }
    char first;
    ssize_t got;
    do {
        got = ::read(fd.get(), &first, 1);
    } while (got < 0 && errno == EINTR);
    return got > 0;
}

std::optional<std::string> read_link(const std::string& path) {
    char buf[PATH_MAX];
    const ssize_t len = ::readlink(path.c_str(), buf, sizeof(buf));
    // A full buffer may mean a cut-off target; an unknown path is useless.
    if (len <= 0 || static_cast<size_t>(len) >= sizeof(buf)) {
        return std::nullopt;
    }
    return std::string(buf, static_cast<size_t>(len));
}

std::optional<uint32_t> parse_pid_name(std::string_view name) {
    // "0012" is not how /proc names a pid; rejecting it keeps one pid one dir.
    if (name.empty() || name.size() > 10 || name.front() == '0') {
        return std::nullopt;
    }
    return detail::parse_whole_unsigned<uint32_t>(name);
}

std::string basename_of(std::string_view path) {
    const size_t slash = path.rfind('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string strip_deleted_suffix(std::string path) {
    constexpr std::string_view kDeleted = " (deleted)";
    if (path.size() > kDeleted.size() &&
        std::string_view(path).substr(path.size() - kDeleted.size()) == kDeleted) {
        path.resize(path.size() - kDeleted.size());
    }
    return path;
}

// What a socket says about its owner: it listens on `port`, or it is
// connected (or connecting) to `port` on some server.
struct SocketUse {
    uint16_t port = 0;
    bool listening = false;
    bool operator<(const SocketUse& o) const {
        return listening != o.listening ? listening : port < o.port;
    }
    bool operator==(const SocketUse& o) const = default;
};

// The sockets of one network namespace that can select a process, by inode.
using SocketTable = std::unordered_map<uint64_t, SocketUse>;

struct ScanContext {
    const DiscoveryOptions& options;
    const re2::RE2* exe_regex;
    DiscoveryStats& stats;
    // Set during a full rescan: tables shared by processes of one netns.
    std::unordered_map<uint64_t, SocketTable>* netns_tables = nullptr;
};

// Adds the useful rows of dir/tcp and dir/tcp6; false if neither exists.
// Client rows are kept only for open_ports, so a host with many connections
// does not turn into a large table.
bool load_socket_rows(ScanContext& ctx, const std::string& net_dir, SocketTable& table) {
    bool found_any = false;
    for (const bool ipv6 : {false, true}) {
        const auto text =
            read_capped(net_dir + (ipv6 ? "/tcp6" : "/tcp"), kTcpTableMaxBytes, ctx.stats);
        if (!text) {
            continue;
        }
        found_any = true;
        size_t bad_rows = 0;
        for (const TcpSocketRow& row : parse_proc_net_tcp(*text, ipv6, &bad_rows)) {
            if (row.inode == 0) {
                continue;  // TIME_WAIT and request sockets belong to no fd
            }
            if (row.state == kTcpStateListen) {
                table.emplace(row.inode, SocketUse{row.local_port, true});
            } else if ((row.state == kTcpStateEstablished || row.state == kTcpStateSynSent) &&
                       ctx.options.open_ports.contains(row.remote_port)) {
                table.emplace(row.inode, SocketUse{row.remote_port, false});
            }
        }
        ctx.stats.tcp_rows_malformed += bad_rows;
    }
    return found_any;
}

SocketTable load_socket_table(ScanContext& ctx, const std::string& pid_dir) {
    SocketTable table;
    // Each process sees the tables of its own network namespace; the root
    // net/ directory is only the reader's namespace, a last resort.
    if (!load_socket_rows(ctx, pid_dir + "/net", table)) {
        load_socket_rows(ctx, ctx.options.proc_root + "/net", table);
    }
    return table;
}

std::unordered_set<uint64_t> socket_inodes(ScanContext& ctx, const std::string& pid_dir) {
    std::unordered_set<uint64_t> inodes;
    const std::string fd_dir = pid_dir + "/fd";
    UniqueDir dir(::opendir(fd_dir.c_str()));
    if (!dir) {
        return inodes;
    }
    size_t seen = 0;
    while (const dirent* entry = ::readdir(dir.get())) {
        const std::string_view name = entry->d_name;
        if (name == "." || name == "..") {
            continue;
        }
        if (++seen > kMaxFdsScanned) {
            ++ctx.stats.fd_scans_truncated;
            break;
        }
        const auto target = read_link(fd_dir + "/" + std::string(name));
        if (!target) {
            continue;
        }
        if (const auto inode = parse_socket_link(*target)) {
            inodes.insert(*inode);
        }
    }
    return inodes;
}

// The process's selecting sockets: listeners first, then by port, no duplicates.
std::vector<SocketUse> socket_uses(ScanContext& ctx, const std::string& pid_dir) {
    const auto inodes = socket_inodes(ctx, pid_dir);
    if (inodes.empty()) {
        return {};
    }
    SocketTable own_table;
    const SocketTable* table = nullptr;
    std::optional<uint64_t> netns;
    if (ctx.netns_tables != nullptr) {
        if (const auto link = read_link(pid_dir + "/ns/net")) {
            netns = detail::parse_kind_id_link(*link, "net");
        }
    }
    if (netns) {
        auto [it, inserted] = ctx.netns_tables->try_emplace(*netns);
        if (inserted) {
            it->second = load_socket_table(ctx, pid_dir);
        }
        table = &it->second;
    } else {
        own_table = load_socket_table(ctx, pid_dir);
        table = &own_table;
    }
    std::vector<SocketUse> uses;
    for (const uint64_t inode : inodes) {
        if (const auto it = table->find(inode); it != table->end()) {
            uses.push_back(it->second);
        }
    }
    std::sort(uses.begin(), uses.end());
    uses.erase(std::unique(uses.begin(), uses.end()), uses.end());
    return uses;
}

bool any_selector(const DiscoveryOptions& options) {
    return !options.open_ports.empty() || !options.exe_path_regex.empty();
}

// Which selector, if any, picks this process; the text goes into logs.
std::optional<std::string> match_selector(ScanContext& ctx, const std::string& pid_dir,
                                          const std::string& exe_path,
                                          const std::unordered_set<uint16_t>* extra_ports) {
    const DiscoveryOptions& options = ctx.options;
    if (ctx.exe_regex != nullptr && RE2::PartialMatch(exe_path, *ctx.exe_regex)) {
        return "exe_path ~ " + options.exe_path_regex;
    }
    if (!options.open_ports.empty()) {
        // Ports reported by a kernel event count even before /proc shows them.
        if (extra_ports != nullptr) {
            std::vector<uint16_t> hinted(extra_ports->begin(), extra_ports->end());
            std::sort(hinted.begin(), hinted.end());
            for (const uint16_t port : hinted) {
                if (options.open_ports.contains(port)) {
                    return "open_port " + std::to_string(port);
                }
            }
        }
        // Listeners sort first, so a server that is also a client of the
        // same port set is reported as the server.
        for (const SocketUse& use : socket_uses(ctx, pid_dir)) {
            if (options.open_ports.contains(use.port)) {
                return "open_port " + std::to_string(use.port);
            }
        }
        return std::nullopt;
    }
    if (!any_selector(options) && options.instrument_all_listeners) {
        if (extra_ports != nullptr && !extra_ports->empty()) {
            return std::string("any listening socket");
        }
        for (const SocketUse& use : socket_uses(ctx, pid_dir)) {
            if (use.listening) {
                return std::string("any listening socket");
            }
        }
    }
    return std::nullopt;
}

void resolve_service_names(ScanContext& ctx, const std::string& pid_dir,
                           ServiceIdentity& identity) {
    const DiscoveryOptions& options = ctx.options;
    identity.service_name = options.service_name;
    identity.service_namespace = options.service_namespace;
    if (!identity.service_name.empty() && !identity.service_namespace.empty()) {
        return;
    }
    // Unreadable environ (another user's process) leaves the defaults below.
    const auto environ = read_capped(pid_dir + "/environ", kEnvironMaxBytes, ctx.stats);
    std::optional<std::string> attributes;
    if (environ) {
        attributes = environ_value(*environ, "OTEL_RESOURCE_ATTRIBUTES");
    }
    if (identity.service_name.empty() && environ) {
        if (auto name = environ_value(*environ, "OTEL_SERVICE_NAME")) {
            identity.service_name = std::move(*name);
        }
    }
    if (identity.service_name.empty() && attributes) {
        if (auto name = resource_attribute(*attributes, "service.name")) {
            identity.service_name = std::move(*name);
        }
    }
    if (identity.service_name.empty()) {
        identity.service_name = identity.exe_name;
    }
    if (identity.service_namespace.empty() && attributes) {
        if (auto ns = resource_attribute(*attributes, "service.namespace")) {
            identity.service_namespace = std::move(*ns);
        }
    }
}

std::optional<IdentityPtr> evaluate_process(ScanContext& ctx, uint32_t pid,
                                            const std::unordered_set<uint16_t>* extra_ports) {
    const DiscoveryOptions& options = ctx.options;
    if (pid == 0 || pid == kInitPid || pid == kKthreaddPid ||
        options.never_instrument.count(pid) != 0) {
        return std::nullopt;
    }
    if (!any_selector(options) && !options.instrument_all_listeners) {
        return std::nullopt;
    }
    const std::string pid_dir = options.proc_root + "/" + std::to_string(pid);
    const auto stat_text = read_capped(pid_dir + "/stat", kStatMaxBytes, ctx.stats);
    if (!stat_text) {
        return std::nullopt;  // gone, or not a process
    }
    const auto stat = parse_proc_stat(*stat_text);
    if (!stat || stat->ppid == kKthreaddPid) {
        return std::nullopt;  // kernel threads are children of kthreadd
    }
    const auto exe_link = read_link(pid_dir + "/exe");
    if (!exe_link) {
        ++ctx.stats.processes_unreadable;
        return std::nullopt;
    }
    // Kernel threads and zombies have an empty command line.
    if (!file_has_content(pid_dir + "/cmdline")) {
        return std::nullopt;
    }
    auto identity = std::make_shared<ServiceIdentity>();
    identity->pid = pid;
    identity->start_time_ticks = stat->start_time_ticks;
    identity->exe_path = strip_deleted_suffix(*exe_link);
    identity->exe_name = basename_of(identity->exe_path);
    auto selector = match_selector(ctx, pid_dir, identity->exe_path, extra_ports);
    if (!selector) {
        return std::nullopt;
    }
    identity->selector = std::move(*selector);
    resolve_service_names(ctx, pid_dir, *identity);
    return IdentityPtr(std::move(identity));
}

bool same_identity(const ServiceIdentity& a, const ServiceIdentity& b) {
    return a.start_time_ticks == b.start_time_ticks && a.exe_path == b.exe_path &&
           a.service_name == b.service_name && a.service_namespace == b.service_namespace;
}

DiscoveryChange instrument_change(uint32_t pid, IdentityPtr identity) {
    return DiscoveryChange{DiscoveryChange::Kind::Instrument, std::move(identity), pid};
}

DiscoveryChange forget_change(uint32_t pid) {
    return DiscoveryChange{DiscoveryChange::Kind::Forget, nullptr, pid};
}

}  // namespace

ProcessDiscovery::ProcessDiscovery(DiscoveryOptions options) : options_(std::move(options)) {
    while (options_.proc_root.size() > 1 && options_.proc_root.back() == '/') {
        options_.proc_root.pop_back();
    }
    if (!options_.exe_path_regex.empty()) {
        RE2::Options re_options;
        re_options.set_log_errors(false);
        exe_regex_ = std::make_unique<re2::RE2>(options_.exe_path_regex, re_options);
        if (!exe_regex_->ok()) {
            throw std::invalid_argument("invalid exe_path_regex '" + options_.exe_path_regex +
                                        "': " + exe_regex_->error());
        }
    }
}

ProcessDiscovery::~ProcessDiscovery() = default;

bool ProcessDiscovery::has_selector() const {
    return any_selector(options_);
}

std::optional<IdentityPtr> ProcessDiscovery::evaluate(
    uint32_t pid, const std::unordered_set<uint16_t>* extra_ports) {
    ScanContext ctx{options_, exe_regex_.get(), stats_};
    return evaluate_process(ctx, pid, extra_ports);
}

std::vector<DiscoveryChange> ProcessDiscovery::rescan() {
    std::vector<DiscoveryChange> changes;

    // Forget first, so a reused pid is re-evaluated below as a new process.
    std::vector<uint32_t> stale;
    for (const auto& [pid, identity] : tracked_) {
        const std::string stat_path = options_.proc_root + "/" + std::to_string(pid) + "/stat";
        const auto text = read_capped(stat_path, kStatMaxBytes, stats_);
        const auto stat = text ? parse_proc_stat(*text) : std::nullopt;
        if (!stat || stat->start_time_ticks != identity->start_time_ticks) {
            stale.push_back(pid);
        }
    }
    std::sort(stale.begin(), stale.end());
    for (const uint32_t pid : stale) {
        tracked_.erase(pid);
        changes.push_back(forget_change(pid));
    }

    std::vector<uint32_t> pids;
    if (UniqueDir dir{::opendir(options_.proc_root.c_str())}) {
        while (const dirent* entry = ::readdir(dir.get())) {
            if (const auto pid = parse_pid_name(entry->d_name)) {
                pids.push_back(*pid);
                if (pids.size() >= kMaxProcEntries) {
                    break;
                }
            }
        }
    }
    // Sorted so the order of changes does not depend on directory order.
    std::sort(pids.begin(), pids.end());

    std::unordered_map<uint64_t, SocketTable> netns_tables;
    ScanContext ctx{options_, exe_regex_.get(), stats_, &netns_tables};
    for (const uint32_t pid : pids) {
        if (tracked_.count(pid) != 0) {
            continue;
        }
        if (auto identity = evaluate_process(ctx, pid, nullptr)) {
            tracked_.emplace(pid, *identity);
            changes.push_back(instrument_change(pid, std::move(*identity)));
        }
    }
    return changes;
}

std::vector<DiscoveryChange> ProcessDiscovery::on_exec(uint32_t pid) {
    std::vector<DiscoveryChange> changes;
    auto identity = evaluate(pid, nullptr);
    const auto it = tracked_.find(pid);
    if (it == tracked_.end()) {
        if (identity) {
            tracked_.emplace(pid, *identity);
            changes.push_back(instrument_change(pid, std::move(*identity)));
        }
        return changes;
    }
    if (identity && same_identity(*it->second, **identity)) {
        return changes;
    }
    tracked_.erase(it);
    changes.push_back(forget_change(pid));
    if (identity) {
        tracked_.emplace(pid, *identity);
        changes.push_back(instrument_change(pid, std::move(*identity)));
    }
    return changes;
}

std::vector<DiscoveryChange> ProcessDiscovery::on_listen(uint32_t pid, uint16_t port) {
    const bool relevant = options_.open_ports.contains(port) ||
                          (!has_selector() && options_.instrument_all_listeners);
    return relevant ? track_with_port(pid, port) : std::vector<DiscoveryChange>{};
}

std::vector<DiscoveryChange> ProcessDiscovery::on_connect(uint32_t pid, uint16_t port) {
    return options_.open_ports.contains(port) ? track_with_port(pid, port)
                                              : std::vector<DiscoveryChange>{};
}

// The kernel saw `port` before /proc may show it (listen() in progress, a
// connect() just issued): evaluate as if the process had that socket.
std::vector<DiscoveryChange> ProcessDiscovery::track_with_port(uint32_t pid, uint16_t port) {
    if (is_tracked(pid)) {
        return {};
    }
    const std::unordered_set<uint16_t> ports{port};
    auto identity = evaluate(pid, &ports);
    if (!identity) {
        return {};
    }
    tracked_.emplace(pid, *identity);
    return {instrument_change(pid, std::move(*identity))};
}

std::vector<DiscoveryChange> ProcessDiscovery::on_exit(uint32_t pid) {
    if (tracked_.erase(pid) == 0) {
        return {};
    }
    return {forget_change(pid)};
}

}  // namespace sonde::discovery
