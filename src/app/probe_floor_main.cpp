// sonde-probe-floor: Sonde's kernel hooks with programs that only do the PID
// lookup and return (bpf/probe_floor.bpf.c). Run in a benchmark in place of
// the agent, it measures what the hooks cost by themselves: the floor under
// any design that uses these hooks. No events, no ring buffer, no user-space
// work; this process only sleeps until SIGTERM/SIGINT.
//
// The hooks are chosen as SocketTracer chooses them: per-syscall tracepoints
// when tracefs is mounted (unless --raw-tracepoints), raw_tp/sys_enter and
// raw_tp/sys_exit otherwise; raw_tp/sched_process_{exec,fork,exit} always;
// uprobes on the TLS functions of each --tls-library.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "app/termination_signals.h"
#include "discovery/elf_symbols.h"
#include "ebpf/kernel_features.h"
#include "probe_floor.skel.h"
#include "sonde_events.h"

namespace {

using namespace sonde;

constexpr const char* kProgram = "sonde-probe-floor";

struct CommandLine {
    std::vector<uint32_t> pids;
    std::vector<std::string> tls_libraries;
    bool force_raw_tracepoints = false;
};

void print_usage(FILE* out) {
    std::fprintf(out,
                 "usage: %s [--pid PID]... [--tls-library PATH]... [--raw-tracepoints]\n\n"
                 "Attaches Sonde's kernel hooks with programs that only look the caller up in\n"
                 "the PID filter and return, prints READY on stdout, and runs until SIGTERM or\n"
                 "SIGINT. Needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN).\n\n"
                 "  --pid PID           put PID in the filter (repeat for every process,\n"
                 "                      e.g. a server's master and each worker)\n"
                 "  --tls-library PATH  uprobes on SSL_read, SSL_write, SSL_read_ex,\n"
                 "                      SSL_write_ex (entry and return) and SSL_free (entry)\n"
                 "                      of this file, as Sonde attaches them\n"
                 "  --raw-tracepoints   raw syscall tracepoints even when tracefs is mounted\n"
                 "                      (Sonde's force_raw_tracepoints)\n",
                 kProgram);
}

std::optional<uint32_t> parse_pid(std::string_view text) {
    uint32_t pid = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
    if (ec != std::errc() || end != text.data() + text.size() || pid == 0) return std::nullopt;
    return pid;
}

// Returns nullopt after printing why on stderr; `help` is set for --help.
std::optional<CommandLine> parse_command_line(int argc, char** argv, bool& help) {
    CommandLine cli;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        // "--name VALUE" or "--name=VALUE"; nullopt when `arg` is not --name.
        const auto value_of = [&](std::string_view name) -> std::optional<std::string_view> {
            if (arg == name) {
                if (i + 1 >= argc)
                    throw std::invalid_argument(std::string(name) + " needs a value");
                return std::string_view(argv[++i]);
            }
            if (arg.size() > name.size() && arg.substr(0, name.size()) == name &&
                arg[name.size()] == '=')
                return arg.substr(name.size() + 1);
            return std::nullopt;
        };
        try {
            if (arg == "--help" || arg == "-h") {
                help = true;
                return std::nullopt;
            }
            if (arg == "--raw-tracepoints") {
                cli.force_raw_tracepoints = true;
            } else if (auto pid = value_of("--pid")) {
                auto parsed = parse_pid(*pid);
                if (!parsed)
                    throw std::invalid_argument("--pid: not a process id: " + std::string(*pid));
                cli.pids.push_back(*parsed);
            } else if (auto path = value_of("--tls-library")) {
                cli.tls_libraries.emplace_back(*path);
            } else {
                throw std::invalid_argument("unknown argument '" + std::string(arg) + "'");
            }
        } catch (const std::invalid_argument& e) {
            std::fprintf(stderr, "%s: %s (try --help)\n", kProgram, e.what());
            return std::nullopt;
        }
    }
    return cli;
}

using sonde::app::TerminationSignals;

int libbpf_log(enum libbpf_print_level level, const char* format, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;
    std::fprintf(stderr, "%s: libbpf: ", kProgram);
    return std::vfprintf(stderr, format, args);
}

[[noreturn]] void fail(const std::string& step, int err) {
    throw std::runtime_error(step + ": " + std::strerror(std::abs(err)));
}

bool starts_with(const char* s, std::string_view prefix) {
    return s != nullptr && std::string_view(s).substr(0, prefix.size()) == prefix;
}

uint64_t monotonic_ns() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return uint64_t(now.tv_sec) * 1'000'000'000ull + uint64_t(now.tv_nsec);
}

// The TLS functions Sonde probes, and whether it probes their return too.
struct TlsFunction {
    std::string_view name;
    bool with_return;
};
constexpr std::array<TlsFunction, 5> kTlsFunctions = {{
    {"SSL_read", true},
    {"SSL_write", false},
    {"SSL_read_ex", true},
    {"SSL_write_ex", false},
    {"SSL_free", false},
}};

class ProbeFloor {
public:
    explicit ProbeFloor(bool force_raw_tracepoints) {
        skel_.reset(probe_floor__open());
        if (!skel_) fail("opening the eBPF object", errno);

        const bool tracefs = !ebpf::find_tracefs_with_syscalls().empty();
        raw_syscalls_ = force_raw_tracepoints || !tracefs;
        bpf_program* prog = nullptr;
        bpf_object__for_each_program(prog, skel_->obj) {
            const char* section = bpf_program__section_name(prog);
            if (starts_with(section, "tracepoint/syscalls/"))
                bpf_program__set_autoload(prog, !raw_syscalls_);
            if (starts_with(section, "raw_tp/sys_")) bpf_program__set_autoload(prog, raw_syscalls_);
            if (starts_with(section, "uprobe") || starts_with(section, "uretprobe"))
                bpf_program__set_autoattach(prog, false);
        }
        if (int err = probe_floor__load(skel_.get())) fail("loading the eBPF programs", err);
        if (int err = probe_floor__attach(skel_.get())) fail("attaching the eBPF programs", err);
    }

    bool raw_syscalls() const { return raw_syscalls_; }

    void track_pid(uint32_t pid) {
        sonde_tracked_pid value{};
        value.since_ns = monotonic_ns();
        if (bpf_map__update_elem(skel_->maps.tracked_pids, &pid, sizeof pid, &value, sizeof value,
                                 BPF_ANY) != 0)
            fail("adding pid " + std::to_string(pid) + " to tracked_pids", errno);
    }

    // Returns the number of probes attached to `path`.
    unsigned attach_tls_library(const std::string& path) {
        std::string error;
        auto file = discovery::MappedFile::open(path, error);
        if (!file) throw std::runtime_error("--tls-library " + error);
        std::array<std::string_view, kTlsFunctions.size()> names{};
        for (size_t i = 0; i < kTlsFunctions.size(); ++i) names[i] = kTlsFunctions[i].name;
        const discovery::ElfFunctionLookup lookup =
            discovery::find_elf_functions(file->bytes(), names);
        if (!lookup.error.empty())
            throw std::runtime_error("--tls-library " + path + ": " + lookup.error);
        // Sonde leaves a file without both of these alone; so does the floor.
        const auto has = [&](std::string_view name) {
            for (const auto& f : lookup.found)
                if (f.name == name) return true;
            return false;
        };
        if (!has("SSL_read") || !has("SSL_write"))
            throw std::runtime_error("--tls-library " + path +
                                     ": no SSL_read and SSL_write (Sonde would not probe it)");

        unsigned attached = 0;
        for (const discovery::ElfFunction& f : lookup.found) {
            const TlsFunction* spec = nullptr;
            for (const auto& candidate : kTlsFunctions)
                if (candidate.name == f.name) spec = &candidate;
            if (spec == nullptr || f.file_offset == 0) continue;
            attach_uprobe(skel_->progs.floor_ssl_enter, false, path, f);
            ++attached;
            if (spec->with_return) {
                attach_uprobe(skel_->progs.floor_ssl_exit, true, path, f);
                ++attached;
            }
        }
        return attached;
    }

    // Kernel ids of the loaded programs, for `bpftool prog show id N`.
    std::vector<uint32_t> program_ids() const {
        std::vector<uint32_t> ids;
        bpf_program* prog = nullptr;
        bpf_object__for_each_program(prog, skel_->obj) {
            const int fd = bpf_program__fd(prog);
            if (fd < 0) continue;
            bpf_prog_info info{};
            uint32_t len = sizeof info;
            if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) ids.push_back(info.id);
        }
        return ids;
    }

private:
    struct SkeletonDeleter {
        void operator()(probe_floor* skel) const { probe_floor__destroy(skel); }
    };
    struct LinkDeleter {
        void operator()(bpf_link* link) const { bpf_link__destroy(link); }
    };

    void attach_uprobe(bpf_program* prog, bool retprobe, const std::string& path,
                       const discovery::ElfFunction& f) {
        // pid -1: every process that maps the file, as Sonde attaches; the program filters.
        bpf_link* link =
            bpf_program__attach_uprobe(prog, retprobe, -1, path.c_str(), f.file_offset);
        if (link == nullptr)
            fail(std::string("attaching ") + (retprobe ? "uretprobe" : "uprobe") + " to " + path +
                     ":" + f.name,
                 errno);
        uprobe_links_.emplace_back(link);
    }

    // Declared first, destroyed last: the links go before the programs they hold.
    std::unique_ptr<probe_floor, SkeletonDeleter> skel_;
    std::vector<std::unique_ptr<bpf_link, LinkDeleter>> uprobe_links_;
    bool raw_syscalls_ = true;
};

bool can_load_bpf() {
    const ebpf::CapabilityCheck caps = ebpf::check_capabilities();
    for (const std::string& missing : caps.missing)
        if (missing == "CAP_BPF" || missing == "CAP_PERFMON") return false;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    bool help = false;
    const std::optional<CommandLine> cli = parse_command_line(argc, argv, help);
    if (help) {
        print_usage(stdout);
        return 0;
    }
    if (!cli) return 2;
    if (!can_load_bpf()) {
        std::fprintf(stderr,
                     "%s: needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) to load and "
                     "attach eBPF programs\n",
                     kProgram);
        return 1;
    }
    for (uint32_t pid : cli->pids)
        if (kill(pid_t(pid), 0) != 0 && errno == ESRCH) {
            std::fprintf(stderr, "%s: --pid %u: no such process\n", kProgram, pid);
            return 1;
        }

    const TerminationSignals signals;
    if (!signals.ok()) {
        std::fprintf(stderr, "%s: signalfd: %s\n", kProgram, std::strerror(errno));
        return 1;
    }
    libbpf_set_print(libbpf_log);
    // The same hooks as Sonde's: tracefs mounted privately where Sonde would.
    if (!cli->force_raw_tracepoints) {
        const ebpf::PrivateTracefs tracefs = ebpf::mount_private_tracefs();
        if (!tracefs.problem.empty())
            std::fprintf(stderr, "%s: tracefs not mounted, not mountable: %s\n", kProgram,
                         tracefs.problem.c_str());
    }
    try {
        ProbeFloor floor(cli->force_raw_tracepoints);
        for (uint32_t pid : cli->pids) floor.track_pid(pid);
        unsigned uprobes = 0;
        for (const std::string& path : cli->tls_libraries) {
            const unsigned n = floor.attach_tls_library(path);
            std::fprintf(stderr, "%s: %u uprobes on %s\n", kProgram, n, path.c_str());
            uprobes += n;
        }
        std::string ids;
        for (uint32_t id : floor.program_ids())
            ids += (ids.empty() ? "" : ",") + std::to_string(id);
        std::fprintf(stderr,
                     "%s: attached: syscalls via %s, sched_process_{exec,fork,exit}, %u uprobes; "
                     "%zu pid(s) tracked; program ids %s\n",
                     kProgram,
                     floor.raw_syscalls() ? "raw_tp/sys_{enter,exit}"
                                          : "tracepoint/syscalls/sys_{enter,exit}_*",
                     uprobes, cli->pids.size(), ids.c_str());
        std::printf("READY\n");
        std::fflush(stdout);
        const int signo = signals.wait();
        std::fprintf(stderr, "%s: %s: detaching\n", kProgram, strsignal(signo));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", kProgram, e.what());
        return 1;
    }
    return 0;
}
