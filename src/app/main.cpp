// sonde: zero-code RED metrics and spans for the processes it is told to watch.
//
// Data flow (docs/architecture.md): kernel programs -> ring buffer ->
// decode -> connection tracker + protocol handlers -> spans -> RED metrics,
// trace printer. Discovery decides which PIDs the kernel filter lets through.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "config/config.h"
#include "conntrack/connection_tracker.h"
#include "discovery/port_set.h"
#include "discovery/process_discovery.h"
#include "ebpf/events.h"
#include "ebpf/kernel_features.h"
#include "ebpf/socket_tracer.h"
#include "export/printer/span_printer.h"
#include "export/prometheus/prometheus_server.h"
#include "pipeline/red_metrics.h"
#include "pipeline/self_metrics.h"

namespace {

using namespace sonde;

uint64_t clock_ns(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

int64_t wall_clock_offset_ns() {
    return int64_t(clock_ns(CLOCK_REALTIME)) - int64_t(clock_ns(CLOCK_MONOTONIC));
}

// Blocks SIGINT/SIGTERM and reads them from a signalfd, so shutdown is
// handled in the event loop rather than in a signal handler.
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
    int fd() const { return fd_; }

private:
    int fd_ = -1;
};

bool termination_requested(int sfd) {
    signalfd_siginfo info{};
    return read(sfd, &info, sizeof info) == sizeof info;
}

class Agent {
public:
    explicit Agent(const config::Config& cfg)
        : cfg_(cfg),
          red_(pipeline::default_duration_buckets(), pipeline::default_size_buckets()),
          printer_(*exporter::parse_printer_mode(cfg.trace_printer), stdout),
          tracker_({}, self_, [this](pipeline::Span&& span) { on_span(std::move(span)); }),
          discovery_(discovery_options(cfg)) {
        tracker_.set_wall_clock_offset(wall_clock_offset_ns());
    }

    // `stop_fd` is a signalfd for SIGINT/SIGTERM, blocked since start-up so
    // that a signal during loading is handled, not fatal.
    int run(int stop_fd) {
        if (!discovery_.has_selector())
            spdlog::warn(
                "no selector configured (SONDE_OPEN_PORT, SONDE_EXECUTABLE_NAME): "
                "instrumenting every process with a listening TCP socket");
        ebpf::SocketTracerOptions tracer_options;
        tracer_options.capture_bytes = cfg_.capture_bytes;
        tracer_options.agent_pid = uint32_t(getpid());
        tracer_options.force_raw_tracepoints = cfg_.force_raw_tracepoints;
        tracer_ = std::make_unique<ebpf::SocketTracer>(
            tracer_options, [this](std::span<const uint8_t> bytes) { on_record(bytes); });
        watch_ports();

        std::unique_ptr<exporter::PrometheusServer> prometheus;
        if (cfg_.prometheus_port != 0) {
            exporter::PrometheusServerOptions popts;
            popts.bind_address = cfg_.prometheus_address;
            popts.port = cfg_.prometheus_port;
            popts.path = cfg_.prometheus_path;
            prometheus = std::make_unique<exporter::PrometheusServer>(
                popts, [this] { return render_metrics(); });
            prometheus->start();
            spdlog::info("Prometheus endpoint on http://{}:{}{}", cfg_.prometheus_address,
                         prometheus->bound_port(), cfg_.prometheus_path);
        }

        apply(discovery_.rescan());
        spdlog::info("sonde {} running: {} process(es) instrumented", SONDE_VERSION,
                     discovery_.tracked_count());

        auto next_housekeeping = std::chrono::steady_clock::now();
        auto next_rescan = next_housekeeping + kRescanInterval;
        while (!termination_requested(stop_fd)) {
            int handled = tracer_->poll(kPollMs);
            if (handled < 0) spdlog::warn("ring buffer poll failed: {}", std::strerror(-handled));
            auto now = std::chrono::steady_clock::now();
            if (now >= next_housekeeping) {
                housekeeping();
                next_housekeeping = now + std::chrono::seconds(1);
            }
            if (now >= next_rescan) {
                apply(discovery_.rescan());
                reconcile_kernel_filter();
                next_rescan = now + kRescanInterval;
            }
        }
        spdlog::info("shutting down: detaching eBPF programs");
        if (prometheus) prometheus->stop();
        tracer_.reset();
        return 0;
    }

private:
    static constexpr int kPollMs = 50;
    static constexpr auto kRescanInterval = std::chrono::seconds(5);

    static discovery::DiscoveryOptions discovery_options(const config::Config& cfg) {
        discovery::DiscoveryOptions o;
        if (!cfg.open_port.empty())
            o.open_ports = std::get<discovery::PortSet>(discovery::PortSet::parse(cfg.open_port));
        o.exe_path_regex = cfg.executable_name;
        o.service_name = cfg.service_name;
        o.service_namespace = cfg.service_namespace;
        o.instrument_all_listeners = cfg.open_port.empty() && cfg.executable_name.empty();
        o.never_instrument.insert(uint32_t(getpid()));
        return o;
    }

    // Client-side selection: a connect() to one of these ports by an
    // untracked process is reported by the kernel.
    void watch_ports() {
        if (cfg_.open_port.empty()) return;
        auto ports = std::get<discovery::PortSet>(discovery::PortSet::parse(cfg_.open_port));
        size_t watched = 0;
        for (uint32_t p = 1; p <= 65535 && watched < SONDE_MAX_WATCHED_PORTS; ++p) {
            if (!ports.contains(uint16_t(p))) continue;
            tracer_->watch_port(uint16_t(p));
            ++watched;
        }
        if (watched == SONDE_MAX_WATCHED_PORTS)
            spdlog::warn(
                "open_port covers more than {} ports: connections to the rest are "
                "found by the periodic rescan only",
                SONDE_MAX_WATCHED_PORTS);
    }

    void on_record(std::span<const uint8_t> bytes) {
        ++self_.events_read;
        ebpf::Record record = ebpf::decode_record(bytes);
        if (auto* data = std::get_if<ebpf::DataRecord>(&record)) {
            tracker_.on_data(*data);
        } else if (auto* conn = std::get_if<ebpf::ConnRecord>(&record)) {
            tracker_.on_connection(conn->event);
        } else if (auto* proc = std::get_if<ebpf::ProcRecord>(&record)) {
            on_process_event(proc->event);
        } else {
            ++self_.events_malformed;
            spdlog::debug("dropped ring record: {}", std::get<ebpf::DecodeError>(record).reason);
        }
    }

    void on_process_event(const sonde_proc_event& ev) {
        const uint32_t pid = ev.hdr.pid;
        spdlog::debug("process event type={} pid={} ppid={} port={}", ev.hdr.type, pid, ev.ppid,
                      ev.port);
        switch (ev.hdr.type) {
            case SONDE_EVENT_PROC_EXEC:
                apply(discovery_.on_exec(pid));
                break;
            case SONDE_EVENT_PROC_FORK:
                // Same question as after an exec: does this process match now?
                apply(discovery_.on_exec(pid));
                if (!discovery_.is_tracked(pid)) tracer_->untrack_pid(pid);
                break;
            case SONDE_EVENT_PROC_EXIT:
                apply(discovery_.on_exit(pid));
                break;
            case SONDE_EVENT_LISTEN:
                apply(discovery_.on_listen(pid, ev.port));
                // On a watched port the kernel tracked it already; discovery decides.
                if (!discovery_.is_tracked(pid)) tracer_->untrack_pid(pid);
                break;
            case SONDE_EVENT_CONNECT_WATCHED:
                apply(discovery_.on_connect(pid, ev.port));
                // The kernel tracked it provisionally; discovery had the last word.
                if (!discovery_.is_tracked(pid)) tracer_->untrack_pid(pid);
                break;
            default:
                break;
        }
    }

    void apply(const std::vector<discovery::DiscoveryChange>& changes) {
        for (const auto& change : changes) {
            if (change.kind == discovery::DiscoveryChange::Kind::Instrument) {
                const auto& id = *change.identity;
                tracker_.set_process(change.identity);
                tracer_->track_pid(id.pid, id.start_time_ticks);
                spdlog::info(
                    "instrumenting process pid={} exe={} service={} namespace={} "
                    "selector=\"{}\"",
                    id.pid, id.exe_path, id.service_name, id.service_namespace, id.selector);
            } else {
                tracer_->untrack_pid(change.pid);
                tracker_.forget_process(change.pid);
                spdlog::info("forgetting process pid={}", change.pid);
            }
        }
        self_.instrumented_processes = discovery_.tracked_count();
    }

    // The kernel's PID filter may hold entries discovery does not know: ones
    // the kernel added on connect() whose record was lost, or left behind by a
    // lost exit record. Entries younger than the grace period may still have
    // their record on the way.
    void reconcile_kernel_filter() {
        constexpr uint64_t kGraceNs = 2'000'000'000ull;
        const uint64_t now = clock_ns(CLOCK_MONOTONIC);
        for (const auto& entry : tracer_->kernel_tracked_pids()) {
            if (discovery_.is_tracked(entry.pid)) continue;
            if (now < entry.value.since_ns + kGraceNs) continue;
            tracer_->untrack_pid(entry.pid);
            spdlog::debug("removed stale kernel filter entry pid={}", entry.pid);
        }
    }

    void housekeeping() {
        auto k = tracer_->kernel_counters();
        self_.kernel_ringbuf_full = k[SONDE_KCOUNTER_RINGBUF_FULL];
        self_.kernel_inflight_missing = k[SONDE_KCOUNTER_INFLIGHT_MISSING];
        self_.kernel_read_user_failed = k[SONDE_KCOUNTER_READ_USER_FAILED];
        self_.metric_series_dropped = red_.dropped_series();
        tracker_.expire_idle(clock_ns(CLOCK_MONOTONIC));
        tracker_.set_wall_clock_offset(wall_clock_offset_ns());
    }

    void on_span(pipeline::Span&& span) {
        red_.record(span);
        if (printer_.mode() != exporter::PrinterMode::Disabled) printer_.print(span);
    }

    std::string render_metrics() {
        std::string out;
        red_.render_prometheus(out);
        self_.render_prometheus(out);
        return out;
    }

    config::Config cfg_;
    pipeline::SelfMetrics self_;
    pipeline::RedMetrics red_;
    exporter::SpanPrinter printer_;
    conntrack::ConnectionTracker tracker_;
    discovery::ProcessDiscovery discovery_;
    std::unique_ptr<ebpf::SocketTracer> tracer_;
};

}  // namespace

int main(int argc, char** argv) {
    const TerminationSignals signals;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--version") {
            std::printf("sonde %s\n", SONDE_VERSION);
            return 0;
        }
        if (arg == "--help" || arg == "-h") {
            std::printf(
                "usage: sonde\n\nConfigured through environment variables "
                "(SONDE_X, or BEYLA_X as an alias):\n");
            for (const auto& spec : config::option_specs())
                std::printf("  SONDE_%-24s %s\n", std::string(spec.name).c_str(),
                            std::string(spec.help).c_str());
            return 0;
        }
        std::fprintf(stderr, "sonde: unknown argument '%s' (try --help)\n", arg.c_str());
        return 2;
    }

    auto logger = spdlog::stderr_color_mt("sonde");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);

    config::LoadResult loaded = config::load_from_environment(
        [](const char* name) -> const char* { return std::getenv(name); });
    for (const auto& err : loaded.errors) spdlog::error("configuration: {}", err);
    if (!loaded.errors.empty()) return 2;
    spdlog::set_level(spdlog::level::from_str(loaded.config.log_level));

    auto caps = ebpf::check_capabilities();
    if (!caps.ok()) {
        std::string list;
        for (const auto& c : caps.missing) list += (list.empty() ? "" : ", ") + c;
        spdlog::error("missing capabilities: {} (run as root or grant them)", list);
        return 1;
    }
    if (!ebpf::kernel_btf_available()) {
        spdlog::error(
            "kernel BTF not found at /sys/kernel/btf/vmlinux: Sonde needs a kernel "
            "built with CONFIG_DEBUG_INFO_BTF=y");
        return 1;
    }
    try {
        Agent agent(loaded.config);
        return agent.run(signals.fd());
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
}
