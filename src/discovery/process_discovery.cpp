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
#include "discovery/read_file.h"
#include "discovery/text_util.h"
#include "discovery/unique_fd.h"

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

struct DirCloser {
    void operator()(DIR* dir) const { ::closedir(dir); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

std::optional<std::string> read_capped(const std::string& path, size_t max_bytes,
                                       DiscoveryStats& stats) {
    return read_file_capped(path, max_bytes, stats.files_truncated);
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

}  // namespace

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

struct CompiledSelector {
    Selector spec;                        // origin filled in
    std::unique_ptr<re2::RE2> exe_regex;  // null when exe_path_regex is empty
    // False when the selector has criteria that cannot be evaluated yet
    // (Kubernetes): it then matches nothing rather than more than asked for.
    bool active = true;
};

namespace {

// The sockets of one network namespace that can select a process, by inode.
using SocketTable = std::unordered_map<uint64_t, SocketUse>;

struct ScanContext {
    const DiscoveryOptions& options;
    const std::vector<CompiledSelector>& instrument;
    const std::vector<CompiledSelector>& exclude;
    const PortSet& client_ports;  // connections to other ports select nothing
    bool listener_mode;
    DiscoveryStats& stats;
    // Set during a full rescan: tables shared by processes of one netns.
    std::unordered_map<uint64_t, SocketTable>* netns_tables = nullptr;
};

// Adds the useful rows of dir/tcp and dir/tcp6; false if neither exists.
// Client rows are kept only for selector ports, so a host with many
// connections does not turn into a large table.
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
                       ctx.client_ports.contains(row.remote_port)) {
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

// What one evaluation knows about one process. The socket list is the
// expensive part (an fd directory walk and the tcp tables), so it is read
// only when a selector gets as far as asking for it, and then only once.
class ProcessFacts {
public:
    ProcessFacts(ScanContext& ctx, std::string pid_dir, std::string exe_path,
                 const SocketUse* evidence)
        : ctx_(ctx),
          pid_dir_(std::move(pid_dir)),
          exe_path_(std::move(exe_path)),
          evidence_(evidence) {}

    const std::string& exe_path() const { return exe_path_; }
    // A socket a kernel event reported, which /proc may not show yet.
    const SocketUse* evidence() const { return evidence_; }
    const std::vector<SocketUse>& sockets() {
        if (!sockets_) {
            sockets_ = socket_uses(ctx_, pid_dir_);
        }
        return *sockets_;
    }

private:
    ScanContext& ctx_;
    std::string pid_dir_;
    std::string exe_path_;
    const SocketUse* evidence_;
    std::optional<std::vector<SocketUse>> sockets_;
};

std::string describe_use(const SocketUse& use) {
    return (use.listening ? "listens on port " : "connects to port ") + std::to_string(use.port);
}

// The socket that satisfies `ports`: the event's evidence first, then the
// process's own sockets, listeners before clients (a server that is also a
// client of the same ports is reported as the server).
std::optional<SocketUse> matching_socket(const PortSet& ports, ProcessFacts& facts) {
    if (facts.evidence() != nullptr && ports.contains(facts.evidence()->port)) {
        return *facts.evidence();
    }
    for (const SocketUse& use : facts.sockets()) {
        if (ports.contains(use.port)) {
            return use;
        }
    }
    return std::nullopt;
}

// What satisfied every criterion of `selector` (for logs), or nullopt.
// The regex runs first: it is cheap, and when it fails no fd is read.
std::optional<std::string> match_criteria(const CompiledSelector& selector, ProcessFacts& facts) {
    if (!selector.active) {
        return std::nullopt;
    }
    std::string matched;
    if (selector.exe_regex != nullptr) {
        if (!RE2::PartialMatch(facts.exe_path(), *selector.exe_regex)) {
            return std::nullopt;
        }
        matched = "exe_path ~ \"" + selector.spec.exe_path_regex + "\"";
    }
    if (!selector.spec.open_ports.empty()) {
        const auto use = matching_socket(selector.spec.open_ports, facts);
        if (!use) {
            return std::nullopt;
        }
        matched += (matched.empty() ? "" : " and ") + describe_use(*use);
    }
    return matched;
}

bool excluded(ScanContext& ctx, ProcessFacts& facts) {
    for (const CompiledSelector& selector : ctx.exclude) {
        if (match_criteria(selector, facts)) {
            return true;
        }
    }
    return false;
}

// Exclusions the executable alone decides go first: an excluded process (a
// load generator, a health checker) then costs no fd walk and no socket table.
bool excluded_by_executable(ScanContext& ctx, ProcessFacts& facts) {
    for (const CompiledSelector& selector : ctx.exclude) {
        if (selector.spec.open_ports.empty() && match_criteria(selector, facts)) {
            return true;
        }
    }
    return false;
}

struct SelectorMatch {
    const Selector* selector = nullptr;  // null in listener mode
    std::string description;
};

std::optional<SelectorMatch> match_instrument(ScanContext& ctx, ProcessFacts& facts) {
    // The selectors the kernel event's port names come first: they decide without reading the
    // fd table, and a short-lived client may be gone by the time that read would finish.
    if (const SocketUse* evidence = facts.evidence(); evidence != nullptr) {
        for (const CompiledSelector& selector : ctx.instrument) {
            if (!selector.spec.open_ports.contains(evidence->port)) {
                continue;
            }
            if (auto matched = match_criteria(selector, facts)) {
                return SelectorMatch{&selector.spec, selector.spec.origin + " " + *matched};
            }
        }
    }
    for (const CompiledSelector& selector : ctx.instrument) {
        if (auto matched = match_criteria(selector, facts)) {
            return SelectorMatch{&selector.spec, selector.spec.origin + " " + *matched};
        }
    }
    if (ctx.listener_mode) {
        const SocketUse* evidence = facts.evidence();
        bool listening = evidence != nullptr && evidence->listening;
        // Listeners sort first: the first socket says whether there is one.
        listening = listening || (!facts.sockets().empty() && facts.sockets().front().listening);
        if (listening) {
            return SelectorMatch{nullptr, "any listening socket"};
        }
    }
    return std::nullopt;
}

void resolve_service_names(ScanContext& ctx, const std::string& pid_dir, const Selector* selector,
                           ServiceIdentity& identity) {
    const DiscoveryOptions& options = ctx.options;
    if (selector != nullptr) {
        identity.service_name = selector->name;
        identity.service_namespace = selector->namespace_name;
    }
    if (identity.service_name.empty()) {
        identity.service_name = options.service_name;
    }
    if (identity.service_namespace.empty()) {
        identity.service_namespace = options.service_namespace;
    }
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

std::string pid_dir_of(const DiscoveryOptions& options, uint32_t pid) {
    return options.proc_root + "/" + std::to_string(pid);
}

bool can_match_anything(const ScanContext& ctx) {
    return ctx.listener_mode || std::any_of(ctx.instrument.begin(), ctx.instrument.end(),
                                            [](const CompiledSelector& s) { return s.active; });
}

// Cheapest checks first: stat and the exe link for every process; the fd
// directory only if a selector still needs it; cmdline and environ only for
// a process that matched.
std::optional<IdentityPtr> evaluate_process(ScanContext& ctx, uint32_t pid,
                                            const SocketUse* evidence,
                                            const RememberedExec* remembered = nullptr,
                                            RememberedExec* seen = nullptr) {
    const DiscoveryOptions& options = ctx.options;
    if (pid == 0 || pid == kInitPid || pid == kKthreaddPid ||
        options.never_instrument.count(pid) != 0) {
        return std::nullopt;
    }
    if (!can_match_anything(ctx)) {
        return std::nullopt;
    }
    const std::string pid_dir = pid_dir_of(options, pid);
    const auto stat_text = read_capped(pid_dir + "/stat", kStatMaxBytes, ctx.stats);
    const auto stat = stat_text ? parse_proc_stat(*stat_text) : std::nullopt;
    if (stat && stat->ppid == kKthreaddPid) {
        return std::nullopt;  // kernel threads are children of kthreadd
    }
    // A remembered exec stands in only for the same process (pid reuse shows in the start time).
    if (remembered != nullptr && stat && stat->start_time_ticks != remembered->start_time_ticks) {
        remembered = nullptr;
    }
    if (!stat && remembered == nullptr) {
        return std::nullopt;  // gone, or not a process
    }
    const auto exe_link = stat ? read_link(pid_dir + "/exe") : std::nullopt;
    if (!exe_link && remembered == nullptr) {
        ++ctx.stats.processes_unreadable;
        return std::nullopt;
    }
    // Live and readable: /proc is the truth. Otherwise (exited, a zombie): what the exec showed.
    const bool from_memory = !exe_link;
    const uint64_t start_time_ticks = stat ? stat->start_time_ticks : remembered->start_time_ticks;
    std::string exe_path = from_memory ? remembered->exe_path : strip_deleted_suffix(*exe_link);
    if (seen != nullptr && !from_memory) {
        seen->start_time_ticks = start_time_ticks;
        seen->exe_path = exe_path;
    }
    ProcessFacts facts(ctx, pid_dir, std::move(exe_path), evidence);
    if (excluded_by_executable(ctx, facts)) {
        return std::nullopt;
    }
    auto match = match_instrument(ctx, facts);
    if (!match) {
        return std::nullopt;
    }
    // Kernel threads and zombies have an empty command line. A process a kernel event names
    // did that socket call itself, alive: it may have exited since, and still counts.
    if (evidence == nullptr && !file_has_content(pid_dir + "/cmdline")) {
        return std::nullopt;
    }
    if (excluded(ctx, facts)) {
        return std::nullopt;
    }
    auto identity = std::make_shared<ServiceIdentity>();
    identity->pid = pid;
    identity->start_time_ticks = start_time_ticks;
    identity->exe_path = facts.exe_path();
    identity->exe_name = basename_of(identity->exe_path);
    identity->language = language_of_executable(identity->exe_name);
    identity->selector = std::move(match->description);
    resolve_service_names(ctx, pid_dir, match->selector, *identity);
    return IdentityPtr(std::move(identity));
}

// Whether a tracked process has since gained a socket an exclusion names.
// Its executable cannot have changed without an exec, which re-evaluates it.
bool excluded_now(ScanContext& ctx, const ServiceIdentity& identity, const SocketUse* evidence) {
    ProcessFacts facts(ctx, pid_dir_of(ctx.options, identity.pid), identity.exe_path, evidence);
    return excluded(ctx, facts);
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

std::string quoted(std::string_view text) {
    return "\"" + std::string(text) + "\"";
}

std::vector<std::string> inactive_criteria_of(const Selector& s) {
    std::vector<std::string> out;
    if (!s.k8s_namespace.empty()) {
        out.push_back("k8s_namespace=" + quoted(s.k8s_namespace));
    }
    if (!s.k8s_pod_name.empty()) {
        out.push_back("k8s_pod_name=" + quoted(s.k8s_pod_name));
    }
    if (!s.k8s_deployment_name.empty()) {
        out.push_back("k8s_deployment_name=" + quoted(s.k8s_deployment_name));
    }
    if (!s.k8s_pod_labels.empty()) {
        std::string labels = "k8s_pod_labels={";
        for (size_t i = 0; i < s.k8s_pod_labels.size(); ++i) {
            labels += (i == 0 ? "" : ", ") + s.k8s_pod_labels[i].first + "=" +
                      quoted(s.k8s_pod_labels[i].second);
        }
        out.push_back(labels + "}");
    }
    for (const auto& [key, value] : s.other_inactive_criteria) {
        out.push_back(key + "=" + quoted(value));
    }
    return out;
}

// Validates and compiles one selector; problems go to `errors`.
CompiledSelector compile_selector(Selector spec, const std::string& default_origin,
                                  std::vector<std::string>& errors) {
    CompiledSelector out;
    if (spec.origin.empty()) {
        spec.origin = default_origin;
    }
    if (!spec.has_criteria()) {
        errors.push_back(spec.origin +
                         ": selector has no criteria and would match nothing; set exe_path, "
                         "open_ports or a Kubernetes criterion such as k8s_namespace");
    }
    for (const auto& [key, value] : spec.k8s_pod_labels) {
        if (key.empty()) {
            errors.push_back(spec.origin + ": k8s_pod_labels has an empty label name");
        }
    }
    if (!spec.exe_path_regex.empty()) {
        RE2::Options re_options;
        re_options.set_log_errors(false);
        out.exe_regex = std::make_unique<re2::RE2>(spec.exe_path_regex, re_options);
        if (!out.exe_regex->ok()) {
            errors.push_back(spec.origin + ": invalid exe_path regex " +
                             quoted(spec.exe_path_regex) + ": " + out.exe_regex->error());
        }
    }
    out.active = spec.has_criteria() && !spec.has_inactive_criteria();
    out.spec = std::move(spec);
    return out;
}

std::vector<CompiledSelector> compile_all(std::vector<Selector> specs, std::string_view list_name,
                                          std::vector<std::string>& errors) {
    std::vector<CompiledSelector> out;
    out.reserve(specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
        out.push_back(compile_selector(
            std::move(specs[i]), std::string(list_name) + "[" + std::to_string(i) + "]", errors));
    }
    return out;
}

constexpr std::string_view kInstrumentList = "discovery.instrument";
constexpr std::string_view kExcludeList = "discovery.exclude_instrument";

}  // namespace

bool Selector::has_inactive_criteria() const {
    return !k8s_namespace.empty() || !k8s_pod_name.empty() || !k8s_deployment_name.empty() ||
           !k8s_pod_labels.empty() || !other_inactive_criteria.empty();
}

bool Selector::has_criteria() const {
    return !exe_path_regex.empty() || !open_ports.empty() || has_inactive_criteria();
}

std::vector<std::string> validate_selectors(const DiscoveryOptions& options) {
    std::vector<std::string> errors;
    compile_all(options.instrument, kInstrumentList, errors);
    compile_all(options.exclude, kExcludeList, errors);
    return errors;
}

ProcessDiscovery::ProcessDiscovery(DiscoveryOptions options) : options_(std::move(options)) {
    while (options_.proc_root.size() > 1 && options_.proc_root.back() == '/') {
        options_.proc_root.pop_back();
    }
    std::vector<std::string> errors;
    instrument_ = compile_all(std::move(options_.instrument), kInstrumentList, errors);
    exclude_ = compile_all(std::move(options_.exclude), kExcludeList, errors);
    options_.instrument.clear();  // the compiled copies are the ones in use
    options_.exclude.clear();
    if (!errors.empty()) {
        std::string message = errors.front();
        for (size_t i = 1; i < errors.size(); ++i) {
            message += "; " + errors[i];
        }
        throw std::invalid_argument(message);
    }
    for (const CompiledSelector& selector : instrument_) {
        if (selector.active) {
            instrument_ports_ |= selector.spec.open_ports;
        }
    }
    for (const CompiledSelector& selector : exclude_) {
        if (selector.active) {
            exclude_ports_ |= selector.spec.open_ports;
        }
    }
    selector_ports_ = instrument_ports_;
    selector_ports_ |= exclude_ports_;
    listener_mode_ = instrument_.empty() && options_.instrument_all_listeners;
}

ProcessDiscovery::~ProcessDiscovery() = default;
ProcessDiscovery::ProcessDiscovery(ProcessDiscovery&&) noexcept = default;
ProcessDiscovery& ProcessDiscovery::operator=(ProcessDiscovery&&) noexcept = default;

bool ProcessDiscovery::has_selector() const {
    return !instrument_.empty();
}

std::vector<uint16_t> ProcessDiscovery::watched_ports(size_t max_count) const {
    return instrument_ports_.lowest(max_count);
}

std::vector<std::string> ProcessDiscovery::inactive_criteria() const {
    std::vector<std::string> out;
    for (const auto* list : {&instrument_, &exclude_}) {
        for (const CompiledSelector& selector : *list) {
            const auto criteria = inactive_criteria_of(selector.spec);
            if (criteria.empty()) {
                continue;
            }
            std::string line = selector.spec.origin + ":";
            for (const std::string& criterion : criteria) {
                line += " " + criterion;
            }
            out.push_back(std::move(line));
        }
    }
    return out;
}

std::optional<uint64_t> ProcessDiscovery::start_time_ticks(uint32_t pid) {
    const auto text = read_capped(pid_dir_of(options_, pid) + "/stat", kStatMaxBytes, stats_);
    const auto stat = text ? parse_proc_stat(*text) : std::nullopt;
    if (!stat) return std::nullopt;
    return stat->start_time_ticks;
}

std::vector<DiscoveryChange> ProcessDiscovery::rescan(RescanScope scope) {
    std::vector<DiscoveryChange> changes;
    std::unordered_map<uint64_t, SocketTable> netns_tables;
    ScanContext ctx{options_,       instrument_, exclude_,     selector_ports_,
                    listener_mode_, stats_,      &netns_tables};

    // Forget first, so a reused pid is re-evaluated below as a new process.
    std::vector<uint32_t> stale;
    for (const auto& [pid, identity] : tracked_) {
        if (start_time_ticks(pid) != identity->start_time_ticks) {
            stale.push_back(pid);
        } else if (!exclude_ports_.empty() && excluded_now(ctx, *identity, nullptr)) {
            stale.push_back(pid);
        }
    }
    std::sort(stale.begin(), stale.end());
    for (const uint32_t pid : stale) {
        tracked_.erase(pid);
        changes.push_back(forget_change(pid));
    }
    if (!can_match_anything(ctx)) {
        return changes;
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

    if (scope == RescanScope::Full || judged_.size() > kMaxProcEntries) {
        judged_.clear();
    }
    for (const uint32_t pid : pids) {
        if (tracked_.count(pid) != 0) {
            continue;
        }
        if (scope == RescanScope::Unjudged && judged_.count(pid) != 0) {
            continue;
        }
        if (auto identity = evaluate_process(ctx, pid, nullptr)) {
            tracked_.emplace(pid, *identity);
            changes.push_back(instrument_change(pid, std::move(*identity)));
        } else {
            judged_.insert(pid);
        }
    }
    return changes;
}

std::vector<DiscoveryChange> ProcessDiscovery::on_exec(uint32_t pid) {
    std::vector<DiscoveryChange> changes;
    ScanContext ctx{options_, instrument_, exclude_, selector_ports_, listener_mode_, stats_};
    RememberedExec seen;
    auto identity = evaluate_process(ctx, pid, nullptr, nullptr, &seen);
    const auto it = tracked_.find(pid);
    if (it == tracked_.end()) {
        if (identity) {
            tracked_.emplace(pid, *identity);
            changes.push_back(instrument_change(pid, std::move(*identity)));
        } else if (!seen.exe_path.empty() && !instrument_ports_.empty()) {
            remember_exec(pid, std::move(seen));
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
    return on_port(pid, SocketUse{port, true});
}

std::vector<DiscoveryChange> ProcessDiscovery::on_connect(uint32_t pid, uint16_t port) {
    return on_port(pid, SocketUse{port, false});
}

// The kernel saw the socket before /proc may show it (listen() in progress,
// a connect() just issued): evaluate as if the process had it.
std::vector<DiscoveryChange> ProcessDiscovery::on_port(uint32_t pid, const SocketUse& evidence) {
    ScanContext ctx{options_, instrument_, exclude_, selector_ports_, listener_mode_, stats_};
    if (const auto it = tracked_.find(pid); it != tracked_.end()) {
        // Exclusions win, also over a process that was picked before it
        // opened the excluded port.
        if (exclude_ports_.contains(evidence.port) && excluded_now(ctx, *it->second, &evidence)) {
            tracked_.erase(it);
            return {forget_change(pid)};
        }
        return {};
    }
    const bool relevant =
        instrument_ports_.contains(evidence.port) || (listener_mode_ && evidence.listening);
    if (!relevant) {
        return {};
    }
    const auto remembered = remembered_.find(pid);
    auto identity = evaluate_process(
        ctx, pid, &evidence, remembered == remembered_.end() ? nullptr : &remembered->second);
    if (!identity) {
        return {};
    }
    tracked_.emplace(pid, *identity);
    return {instrument_change(pid, std::move(*identity))};
}

void ProcessDiscovery::remember_exec(uint32_t pid, RememberedExec exec) {
    if (remembered_.insert_or_assign(pid, std::move(exec)).second) {
        remembered_order_.push_back(pid);
    }
    while (remembered_order_.size() > kMaxRememberedExecs) {
        remembered_.erase(remembered_order_.front());
        remembered_order_.pop_front();
    }
}

std::vector<DiscoveryChange> ProcessDiscovery::on_exit(uint32_t pid) {
    // Its queue slot stays until it reaches the front: erasing from the middle of the
    // deque would cost a scan per exit.
    remembered_.erase(pid);
    if (tracked_.erase(pid) == 0) {
        return {};
    }
    return {forget_change(pid)};
}

}  // namespace sonde::discovery
