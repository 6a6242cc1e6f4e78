// sonde: zero-code RED metrics and spans for the processes it is told to watch.
//
// Data flow (docs/architecture.md): kernel programs -> ring buffer ->
// decode -> connection tracker + protocol handlers -> spans -> RED metrics,
// trace printer. Discovery decides which PIDs the kernel filter lets through.
#include <malloc.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

#include "app/termination_signals.h"
#include "config/config.h"
#include "conntrack/connection_tracker.h"
#include "discovery/port_set.h"
#include "discovery/proc_parsers.h"
#include "discovery/process_discovery.h"
#include "discovery/read_file.h"
#include "discovery/tls_libraries.h"
#include "ebpf/consumer_priority.h"
#include "ebpf/drain_pacer.h"
#include "ebpf/events.h"
#include "ebpf/kernel_features.h"
#include "ebpf/socket_tracer.h"
#include "export/otlp/batch_span_processor.h"
#include "export/otlp/otlp_exporter.h"
#include "export/otlp/otlp_transport.h"
#include "export/otlp/periodic_metric_exporter.h"
#include "export/printer/span_printer.h"
#include "export/prometheus/prometheus_server.h"
#include "pipeline/red_metrics.h"
#include "pipeline/route_matcher.h"
#include "pipeline/self_metrics.h"
#include "pipeline/trace_decorator.h"

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

discovery::DiscoveryOptions discovery_options(const config::Config& cfg);

class Agent {
public:
    Agent(const config::Config& cfg, pipeline::RouteMatcher routes, pipeline::Sampler sampler)
        : cfg_(cfg),
          red_(cfg.prometheus_export.buckets.duration_histogram,
               cfg.prometheus_export.buckets.request_size_histogram,
               cfg.prometheus_export.buckets.response_size_histogram),
          printer_(*exporter::parse_printer_mode(cfg.trace_printer), stdout),
          routes_(std::move(routes)),
          traces_(sampler),
          tracker_({}, self_, [this](pipeline::Span&& span) { on_span(std::move(span)); }),
          discovery_(discovery_options(cfg)) {
        tracker_.set_wall_clock_offset(wall_clock_offset_ns());
    }

    // `stop` holds SIGINT/SIGTERM, blocked since start-up so
    // that a signal during loading is handled, not fatal.
    int run(const app::TerminationSignals& stop) {
        if (!discovery_.has_selector())
            spdlog::warn(
                "no selector configured (open_port, executable_name, discovery.instrument): "
                "instrumenting every process with a listening TCP socket");
        for (const auto& inactive : discovery_.inactive_criteria())
            spdlog::warn(
                "selector criterion accepted, not active yet (matches nothing until "
                "Kubernetes support lands): {}",
                inactive);
        ebpf::SocketTracerOptions tracer_options;
        tracer_options.capture_bytes = cfg_.capture_bytes;
        tracer_options.agent_pid = uint32_t(getpid());
        tracer_options.force_raw_tracepoints = cfg_.force_raw_tracepoints;
        tracer_options.force_helper_reads = cfg_.force_helper_reads;
        tracer_options.bench_stage = bench_stage(cfg_.benchmark_kernel_stage);
        drop_data_records_ = cfg_.benchmark_kernel_stage == "ring";
        if (tracer_options.bench_stage != SONDE_BENCH_STAGE_FULL)
            spdlog::warn("benchmark_kernel_stage={}: measuring only, no records are produced",
                         cfg_.benchmark_kernel_stage);
        if (drop_data_records_)
            spdlog::warn(
                "benchmark_kernel_stage=ring: measuring only, data records are dropped "
                "unparsed");
        tracer_ = std::make_unique<ebpf::SocketTracer>(
            tracer_options, [this](std::span<const uint8_t> bytes) { on_record(bytes); });
        watch_ports();
        watches_ports_ = !discovery_.watched_ports(1).empty();
        attach_tls(tls_libraries_.scan_system_libraries(), 0);

        std::unique_ptr<exporter::PrometheusServer> prometheus;
        start_span_export();
        start_metric_export();
        traces_wanted_ = span_export_ || printer_.mode() != exporter::PrinterMode::Disabled;
        const auto& prom = cfg_.prometheus_export;
        metrics_wanted_ = metric_export_ || prom.port != 0;
        if (prom.port != 0) {
            exporter::PrometheusServerOptions popts;
            popts.bind_address = prom.address;
            popts.port = prom.port;
            popts.path = prom.path;
            prometheus = std::make_unique<exporter::PrometheusServer>(
                popts, [this] { return render_metrics(); });
            prometheus->start();
            spdlog::info("Prometheus endpoint on http://{}:{}{}", prom.address,
                         prometheus->bound_port(), prom.path);
        }

        apply(discovery_.rescan());
        spdlog::info("sonde {} running: {} process(es) instrumented", SONDE_VERSION,
                     discovery_.tracked_count());
        next_full_rescan_ = std::chrono::steady_clock::now() + kFullRescanInterval;
        // Loading parsed the kernel's BTF (about 12 MB, freed since); give the
        // freed heap back rather than carry it for the agent's whole life.
        malloc_trim(0);

        start_yielding_cpu();

        auto next_housekeeping = std::chrono::steady_clock::now();
        auto next_rescan = next_housekeeping + kRescanInterval;
        auto last_drain = next_housekeeping;
        auto next_idle_sample = next_housekeeping;
        ebpf::DrainPacer pacer(drain_pacer_options());
        while (!stop.requested()) {
            int handled = tracer_->poll(pacer.wait_ms());
            if (handled < 0) spdlog::warn("ring buffer poll failed: {}", std::strerror(-handled));
            auto now = std::chrono::steady_clock::now();
            pacer.drained(handled > 0 ? static_cast<uint64_t>(handled) : 0, now - last_drain);
            last_drain = now;
            pipeline::add_owned(self_.ring_drains);
            // The idle share only matters to a pacer that can shorten its wait.
            if (cfg_.ring_drain_batch != 0 && now >= next_idle_sample) {
                if (const auto share = host_idle_share()) pacer.host_idle_share(*share);
                next_idle_sample = now + kIdleSampleInterval;
            }
            if (now >= next_housekeeping) {
                housekeeping();
                next_housekeeping = now + std::chrono::seconds(1);
            }
            if (now >= next_rescan) {
                apply(discovery_.rescan(rescan_scope(now)));
                reconcile_kernel_filter();
                malloc_trim(0);  // heap freed by bursts (scans, exports) goes back too
                next_rescan = now + kRescanInterval;
            }
        }
        spdlog::info("shutting down: detaching eBPF programs");
        consumer_priority_.reset();
        if (prometheus) prometheus->stop();
        tracer_.reset();
        if (span_export_) span_export_->Shutdown(std::chrono::seconds(2));
        if (metric_export_) metric_export_->Shutdown(std::chrono::seconds(2));
        mirror_export_counters();
        return 0;
    }

private:
    static uint32_t bench_stage(const std::string& name) {
        if (name == "socket") return SONDE_BENCH_STAGE_SOCKET;
        if (name == "header") return SONDE_BENCH_STAGE_HEADER;
        if (name == "payload") return SONDE_BENCH_STAGE_PAYLOAD;
        // "ring": the kernel's part is the product's; the agent drops the records.
        return SONDE_BENCH_STAGE_FULL;
    }

    // This thread drains the ring: at idle CPU priority while it keeps up
    // (ebpf/consumer_priority.h explains why, and when it takes normal back).
    void start_yielding_cpu() {
        if (!cfg_.yield_cpu) return;
        if (!ebpf::ConsumerPriority::can_return_from_idle()) {
            spdlog::warn(
                "yield_cpu: the ring is drained at normal CPU priority, because this process "
                "could not take normal priority back from idle (no CAP_SYS_NICE): grant it "
                "(docs/security.md), or set yield_cpu: false");
            return;
        }
        ebpf::ConsumerPriorityOptions options;
        options.escalate_at_bytes = SONDE_RINGBUF_WAKEUP_BYTES;
        options.caught_up_below_bytes = SONDE_RINGBUF_WAKEUP_BYTES / 8;
        consumer_priority_ = std::make_unique<ebpf::ConsumerPriority>(
            [tracer = tracer_.get()] { return tracer->ring_backlog_bytes(); }, options);
        spdlog::info("ring drained at idle CPU priority while it keeps up (yield_cpu)");
    }

    // Batches of ring_drain_batch records, or a drain every 50 ms at 0.
    ebpf::DrainPacerOptions drain_pacer_options() const {
        ebpf::DrainPacerOptions options;
        options.max_wait = std::chrono::milliseconds(kLongestDrainWaitMs);
        options.min_wait =
            cfg_.ring_drain_batch == 0 ? options.max_wait : std::chrono::milliseconds(1);
        options.target_records = cfg_.ring_drain_batch;
        return options;
    }

    // The share of the host's CPU time that was idle since the last call, from
    // /proc/stat; nullopt the first time, or when /proc/stat is unreadable.
    std::optional<double> host_idle_share() {
        uint64_t truncated = 0;  // only the first line is read; the rest may be cut
        const auto text = discovery::read_file_capped("/proc/stat", 4096, truncated);
        const auto times = text ? discovery::parse_host_cpu_times(*text) : std::nullopt;
        if (!times) return std::nullopt;
        std::optional<double> share;
        if (last_cpu_times_ && times->total > last_cpu_times_->total &&
            times->idle >= last_cpu_times_->idle) {
            share = static_cast<double>(times->idle - last_cpu_times_->idle) /
                    static_cast<double>(times->total - last_cpu_times_->total);
        }
        last_cpu_times_ = times;
        return share;
    }

    static constexpr int kLongestDrainWaitMs = 50;
    static constexpr auto kIdleSampleInterval = std::chrono::milliseconds(250);
    static constexpr auto kRescanInterval = std::chrono::seconds(5);
    static constexpr auto kFullRescanInterval = std::chrono::seconds(60);

    // Every minute, or when the kernel lost records since the last rescan (a
    // listen() or connect() report may be among them), every process is judged
    // again; in between only processes never judged are.
    discovery::ProcessDiscovery::RescanScope rescan_scope(
        std::chrono::steady_clock::time_point now) {
        const uint64_t lost = tracer_->kernel_counters()[SONDE_KCOUNTER_RINGBUF_FULL];
        const bool full = now >= next_full_rescan_ || lost != lost_at_last_rescan_;
        lost_at_last_rescan_ = lost;
        if (!full) return discovery::ProcessDiscovery::RescanScope::Unjudged;
        next_full_rescan_ = now + kFullRescanInterval;
        return discovery::ProcessDiscovery::RescanScope::Full;
    }

    // Client-side and listen-time selection: connect()/listen() on one of
    // these ports is reported, and filtered in, by the kernel at once.
    void watch_ports() {
        auto ports = discovery_.watched_ports(SONDE_MAX_WATCHED_PORTS + 1);
        if (ports.size() > SONDE_MAX_WATCHED_PORTS) {
            ports.resize(SONDE_MAX_WATCHED_PORTS);
            spdlog::warn(
                "selectors cover more than {} ports: processes on the others are found by the "
                "periodic rescan only",
                SONDE_MAX_WATCHED_PORTS);
        }
        for (uint16_t port : ports) {
            tracer_->watch_port(port);
            watched_ports_.insert(port);
        }
    }

    void on_record(std::span<const uint8_t> bytes) {
        pipeline::add_owned(self_.events_read);
        if (drop_data_records_ && !bytes.empty() && bytes[0] == SONDE_EVENT_DATA) return;
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
                // A process that may become a client of a watched port later: an executable
                // with TLS built in (Node) is probed now, as the first request of a
                // short-lived client would be over before its connect() could be acted on.
                if (!discovery_.is_tracked(pid) && watches_ports_) probe_tls_libraries(pid);
                break;
            case SONDE_EVENT_PROC_FORK:
                // Same question as after an exec: does this process match now? Unless it
                // exec'd since the fork: the kernel then dropped the fork's entry (see
                // SONDE_TRACKED_FORKED), and the new program's connect() to a watched port
                // may have tracked it provisionally again, which is not ours to overrule.
                apply(discovery_.on_exec(pid));
                if (tracer_->fork_entry_unconfirmed(pid)) drop_unconfirmed(pid);
                break;
            case SONDE_EVENT_PROC_EXIT:
                apply(discovery_.on_exit(pid));
                break;
            case SONDE_EVENT_PROC_MAPPED_EXEC:
                // dlopen: a TLS library may have arrived after the process was instrumented.
                if (discovery_.is_tracked(pid)) probe_tls_libraries(pid);
                break;
            case SONDE_EVENT_LISTEN:
                apply(discovery_.on_listen(pid, ev.port));
                // The kernel filters in a listener on a watched port only; on another port
                // there is nothing to settle, and an ignored entry would hide this process's
                // later connect() to a watched port (it would never become a client).
                if (watched_ports_.count(ev.port) != 0) drop_unconfirmed(pid);
                break;
            case SONDE_EVENT_CONNECT_WATCHED:
                apply(discovery_.on_connect(pid, ev.port));
                drop_unconfirmed(pid);
                break;
            default:
                break;
        }
    }

    // fork() of a tracked process and listen()/connect() on a watched port
    // put the pid in the kernel filter before user space saw it; discovery
    // has the last word. A rejected process stays in the filter as ignored,
    // so that an excluded client (a load generator) does not cost a record, a
    // wake-up and a /proc scan per connection; the kernel drops that entry
    // when the process execs or exits.
    void drop_unconfirmed(uint32_t pid) {
        if (discovery_.is_tracked(pid)) return;
        if (const auto start = discovery_.start_time_ticks(pid))
            tracer_->ignore_pid(pid, *start);
        else
            tracer_->untrack_pid(pid);  // gone already
    }

    void apply(const std::vector<discovery::DiscoveryChange>& changes) {
        for (const auto& change : changes) {
            if (change.kind == discovery::DiscoveryChange::Kind::Instrument) {
                const auto& id = *change.identity;
                tracker_.set_process(change.identity);
                tracer_->track_pid(id.pid, id.start_time_ticks);
                probe_tls_libraries(id.pid);
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

    // Uprobes on the TLS libraries `pid` maps that are not probed yet (once per file).
    void probe_tls_libraries(uint32_t pid) { attach_tls(tls_libraries_.scan(pid), pid); }

    void attach_tls(const std::vector<discovery::TlsLibrary>& libraries, uint32_t pid) {
        for (const discovery::TlsLibrary& library : libraries) {
            ebpf::TlsFunctionOffsets offsets;
            offsets.ssl_read = library.ssl_read;
            offsets.ssl_write = library.ssl_write;
            offsets.ssl_read_ex = library.ssl_read_ex;
            offsets.ssl_write_ex = library.ssl_write_ex;
            offsets.ssl_free = library.ssl_free;
            const ebpf::TlsAttachResult result = tracer_->attach_tls_library(library.path, offsets);
            if (result.attached > 0) ++self_.tls_libraries_probed;
            self_.tls_probes_failed += result.failed;
            spdlog::info("TLS probes on {}{}: {} attached, {} failed", library.mapped_path,
                         pid != 0 ? fmt::format(" (found via pid {})", pid) : std::string(),
                         result.attached, result.failed);
        }
    }

    // The kernel's PID filter may hold entries discovery does not know: ones
    // the kernel added on connect() whose record was lost, or left behind by a
    // lost exit record. Entries younger than the grace period may still have
    // their record on the way.
    //
    // Ignored entries stay while their process lives (the kernel removes them
    // at exec and exit); one whose pid now names another process, or none
    // (it exited between our check and our write), is removed.
    void reconcile_kernel_filter() {
        constexpr uint64_t kGraceNs = 2'000'000'000ull;
        const uint64_t now = clock_ns(CLOCK_MONOTONIC);
        for (const auto& entry : tracer_->kernel_tracked_pids()) {
            if (entry.value.flags & SONDE_TRACKED_IGNORED) {
                if (discovery_.start_time_ticks(entry.pid) != entry.value.proc_start_ns)
                    tracer_->untrack_pid(entry.pid);
                continue;
            }
            if (discovery_.is_tracked(entry.pid)) continue;
            if (now < entry.value.since_ns + kGraceNs) continue;
            tracer_->untrack_pid(entry.pid);
            spdlog::debug("removed stale kernel filter entry pid={}", entry.pid);
        }
    }

    static exporter::otlp::OtlpTransportOptions transport_options(const config::OtlpTarget& target,
                                                                  std::string_view signal) {
        exporter::otlp::OtlpTransportOptions options;
        options.endpoint = target.endpoint;
        options.protocol = target.protocol == config::OtlpProtocol::Grpc
                               ? exporter::otlp::OtlpProtocol::Grpc
                               : exporter::otlp::OtlpProtocol::HttpProtobuf;
        if (target.protocol == config::OtlpProtocol::HttpJson)
            spdlog::warn("OTLP http/json is not supported: exporting {} as http/protobuf", signal);
        options.headers = target.headers;
        options.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(target.timeout);
        options.compression = target.gzip ? "gzip" : "";
        options.certificate_path = target.certificate;
        spdlog::info("exporting {} over OTLP {} to {}{}", signal,
                     config::to_string(target.protocol), target.endpoint,
                     target.gzip ? " (gzip)" : "");
        return options;
    }

    // Sampled spans go to the OTLP collector when an endpoint is configured
    // (otel_traces_export.endpoint, OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT).
    void start_span_export() {
        const config::OtlpTarget target = config::resolve_otlp(cfg_, config::Signal::Traces);
        if (!target.enabled) return;
        exporter::otlp::OtlpExporterOptions options;
        static_cast<exporter::otlp::OtlpTransportOptions&>(options) =
            transport_options(target, "spans");
        options.ids = [](const pipeline::Span& span) {
            exporter::otlp::SpanIds ids;
            ids.trace_id = span.trace_id;
            ids.span_id = span.span_id;
            ids.parent_span_id = span.parent_span_id;
            ids.sampled = span.sampled;
            ids.parent_is_remote = span.has_parent();
            ids.trace_state = span.tracestate;
            return ids;
        };
        exporter::otlp::BatchSpanProcessorOptions batch;
        batch.schedule_delay =
            std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.otel_traces_export.interval);
        auto span_exporter = std::make_unique<exporter::otlp::OtlpSpanExporter>(std::move(options));
        span_exporter_stats_ = &span_exporter->stats();
        span_export_ =
            std::make_unique<exporter::otlp::BatchSpanProcessor>(std::move(span_exporter), batch);
    }

    // RED histograms go to the OTLP collector every interval when a metrics
    // endpoint is configured. They come from their own RedMetrics when the
    // OTLP buckets differ from the Prometheus ones.
    void start_metric_export() {
        const config::OtlpTarget target = config::resolve_otlp(cfg_, config::Signal::Metrics);
        if (!target.enabled) return;
        const auto& otel = cfg_.otel_metrics_export;
        const auto& prom = cfg_.prometheus_export;
        if (!(otel.buckets.duration_histogram == prom.buckets.duration_histogram &&
              otel.buckets.request_size_histogram == prom.buckets.request_size_histogram &&
              otel.buckets.response_size_histogram == prom.buckets.response_size_histogram)) {
            otlp_red_ = std::make_unique<pipeline::RedMetrics>(
                otel.buckets.duration_histogram, otel.buckets.request_size_histogram,
                otel.buckets.response_size_histogram);
        }
        exporter::otlp::PeriodicMetricExporterOptions options;
        options.interval = std::chrono::duration_cast<std::chrono::milliseconds>(otel.interval);
        options.temporality = otel.temporality == config::MetricsTemporality::Delta
                                  ? exporter::otlp::Temporality::Delta
                                  : exporter::otlp::Temporality::Cumulative;
        const pipeline::RedMetrics& source = otlp_red_ ? *otlp_red_ : red_;
        metric_export_ = std::make_unique<exporter::otlp::PeriodicMetricExporter>(
            [&source] { return source.snapshot(); },
            exporter::otlp::make_otlp_transport(transport_options(target, "metrics"),
                                                exporter::otlp::OtlpSignal::Metrics),
            options);
        spdlog::info("metric export every {} ms, {} temporality", options.interval.count(),
                     config::to_string(otel.temporality));
    }

    void mirror_export_counters() {
        if (span_export_) {
            const auto& c = span_export_->counters();
            self_.spans_exported = c.exported.load();
            self_.span_export_dropped_queue_full = c.dropped_queue_full.load();
            self_.span_export_dropped_failed = c.dropped_export_failed.load();
            self_.span_export_dropped_timeout = c.dropped_timeout.load();
            self_.span_export_rejected = span_exporter_stats_->spans_rejected.load();
        }
        if (metric_export_) {
            const auto& m = metric_export_->counters();
            self_.metric_exports = m.exports.load();
            self_.metric_points_exported = m.data_points_exported.load();
            self_.metric_export_dropped_failed = m.data_points_dropped_failed.load();
            self_.metric_export_rejected = m.data_points_rejected.load();
            self_.metric_export_retries = m.retries.load();
        }
    }

    void housekeeping() {
        mirror_export_counters();
        auto k = tracer_->kernel_counters();
        self_.kernel_ringbuf_full = k[SONDE_KCOUNTER_RINGBUF_FULL];
        self_.kernel_entry_missing = k[SONDE_KCOUNTER_ENTRY_MISSING];
        self_.kernel_read_user_failed = k[SONDE_KCOUNTER_READ_USER_FAILED];
        self_.kernel_tls_ciphertext_skipped = k[SONDE_KCOUNTER_TLS_CIPHERTEXT_SKIPPED];
        self_.kernel_tls_socket_unknown = k[SONDE_KCOUNTER_TLS_SOCKET_UNKNOWN];
        if (consumer_priority_) {
            self_.consumer_yielding = consumer_priority_->yielding() ? 1 : 0;
            self_.consumer_priority_raised = consumer_priority_->escalations();
        }
        self_.metric_series_dropped =
            red_.dropped_series() + (otlp_red_ ? otlp_red_->dropped_series() : 0);
        const auto& ds = discovery_.stats();
        const auto& ts = tls_libraries_.stats();
        self_.discovery_problems = ds.tcp_rows_malformed + ds.files_truncated +
                                   ds.fd_scans_truncated + ds.processes_unreadable + ts.unreadable +
                                   ts.maps_truncated;
        tracker_.expire_idle(clock_ns(CLOCK_MONOTONIC));
        tracker_.set_wall_clock_offset(wall_clock_offset_ns());
        for (const std::string& line : drop_log_.due(self_, std::chrono::steady_clock::now()))
            spdlog::warn("{}", line);
    }

    void on_span(pipeline::Span&& span) {
        static const std::string kNoService;
        const std::string& service = span.service ? span.service->service_name : kNoService;
        // An RPC's path is its method: bounded, not rewritten into a route.
        const pipeline::RouteDecision route = span.rpc ? routes_.classify_rpc(service, span.path)
                                                       : routes_.classify(service, span.path);
        span.route.assign(route.route);
        if (route.overflow) pipeline::add_owned(self_.routes_overflowed);
        bool exported = false;
        if (!route.ignore_in_metrics) {
            // Recorded whatever is configured; they leave the node only through the
            // Prometheus endpoint or OTLP metric export.
            exported = red_.record(span) && metrics_wanted_;
            if (otlp_red_) otlp_red_->record(span);
        }
        // Metrics-only mode: no trace context, ids or sampling for spans nobody receives.
        if (!route.ignore_in_traces && traces_wanted_) {
            traces_.decorate(span);
            if (span.sampled) {
                exported = true;
                if (printer_.mode() != exporter::PrinterMode::Disabled) printer_.print(span);
                if (span_export_) span_export_->OnEnd(std::move(span));
            }
        }
        // The ledger: neither exported nor left out on purpose (an ignored route, or an
        // unsampled span where no metric is exported) means a drop counter (the series cap)
        // has it.
        if (exported) {
            pipeline::add_owned(self_.requests_exported);
        } else if (route.ignore_in_metrics || !metrics_wanted_) {
            pipeline::add_owned(self_.requests_filtered);
        }
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
    pipeline::RouteMatcher routes_;
    pipeline::TraceDecorator traces_;
    conntrack::ConnectionTracker tracker_;
    discovery::ProcessDiscovery discovery_;
    std::optional<discovery::HostCpuTimes> last_cpu_times_;  // host_idle_share()'s last sample
    discovery::TlsLibraryFinder tls_libraries_;
    bool watches_ports_ = false;  // selectors name ports: clients are picked at connect()
    std::unordered_set<uint16_t> watched_ports_;  // as written to the kernel's watched_ports
    pipeline::DropLog drop_log_;  // growth of the loss counters, one line per 30 s each
    std::chrono::steady_clock::time_point next_full_rescan_{};  // set after the initial full scan
    uint64_t lost_at_last_rescan_ = 0;
    bool drop_data_records_ = false;                  // benchmark_kernel_stage=ring
    std::unique_ptr<pipeline::RedMetrics> otlp_red_;  // OTLP buckets differ from Prometheus'
    std::unique_ptr<exporter::otlp::BatchSpanProcessor> span_export_;
    const exporter::otlp::ExporterStats* span_exporter_stats_ = nullptr;  // owned by span_export_
    std::unique_ptr<exporter::otlp::PeriodicMetricExporter> metric_export_;
    bool traces_wanted_ = false;   // a span printer or span export is on
    bool metrics_wanted_ = false;  // the Prometheus endpoint or OTLP metric export is on
    std::unique_ptr<ebpf::SocketTracer> tracer_;
    std::unique_ptr<ebpf::ConsumerPriority> consumer_priority_;  // after tracer_: reads its ring
};

// A configuration selector as discovery evaluates it. Criteria discovery
// cannot evaluate yet are carried along so that the selector matches nothing
// rather than more than it asks for.
discovery::Selector to_discovery_selector(const config::Selector& c, std::string origin) {
    discovery::Selector d;
    d.name = c.service_name;
    d.namespace_name = c.service_namespace;
    d.exe_path_regex = c.exe_path;
    if (!c.open_ports.empty()) {
        auto parsed = discovery::PortSet::parse(c.open_ports);
        if (auto* ports = std::get_if<discovery::PortSet>(&parsed)) d.open_ports = *ports;
    }
    d.k8s_namespace = c.k8s_namespace;
    d.k8s_pod_name = c.k8s_pod_name;
    d.k8s_deployment_name = c.k8s_deployment_name;
    for (const auto& [label, value] : c.k8s_pod_labels) d.k8s_pod_labels.emplace_back(label, value);
    auto inactive = [&](const char* key, const std::string& value) {
        if (!value.empty()) d.other_inactive_criteria.emplace_back(key, value);
    };
    inactive("k8s_replicaset_name", c.k8s_replicaset_name);
    inactive("k8s_statefulset_name", c.k8s_statefulset_name);
    inactive("k8s_daemonset_name", c.k8s_daemonset_name);
    inactive("k8s_owner_name", c.k8s_owner_name);
    for (const auto& [key, value] : c.k8s_pod_annotations)
        d.other_inactive_criteria.emplace_back("k8s_pod_annotations." + key, value);
    if (c.containers_only) d.other_inactive_criteria.emplace_back("containers_only", "true");
    d.origin = std::move(origin);
    return d;
}

// The top-level open_port/executable_name pair is one selector: a process
// must satisfy both when both are set, as in Beyla.
discovery::DiscoveryOptions discovery_options(const config::Config& cfg) {
    discovery::DiscoveryOptions o;
    if (!cfg.open_port.empty() || !cfg.executable_name.empty()) {
        config::Selector top;
        top.open_ports = cfg.open_port;
        top.exe_path = cfg.executable_name;
        o.instrument.push_back(to_discovery_selector(top, "open_port/executable_name"));
    }
    const auto& d = cfg.discovery;
    for (size_t i = 0; i < d.instrument.size(); ++i)
        o.instrument.push_back(to_discovery_selector(
            d.instrument[i], "discovery.instrument[" + std::to_string(i) + "]"));
    for (size_t i = 0; i < d.exclude_instrument.size(); ++i)
        o.exclude.push_back(to_discovery_selector(
            d.exclude_instrument[i], "discovery.exclude_instrument[" + std::to_string(i) + "]"));
    o.service_name = cfg.service_name;
    o.service_namespace = cfg.service_namespace;
    o.instrument_all_listeners = o.instrument.empty();
    o.never_instrument.insert(uint32_t(getpid()));
    return o;
}

pipeline::RouteMatcherOptions route_options(const config::Routes& r) {
    pipeline::RouteMatcherOptions o;
    o.patterns = r.patterns;
    o.ignored_patterns = r.ignored_patterns;
    o.ignore_mode = *pipeline::parse_ignore_mode(config::to_string(r.ignore_mode));
    o.unmatched = *pipeline::parse_unmatched_mode(config::to_string(r.unmatched));
    o.wildcard_char = std::string(1, r.wildcard_char);
    o.max_path_segment_cardinality = r.max_path_segment_cardinality;
    o.max_routes_per_service = r.max_routes;
    return o;
}

struct CommandLine {
    bool check_only = false;  // `sonde config check [FILE]`
    bool strict = false;
    std::string config_path;
};

struct LoadedConfiguration {
    config::Config config;
    pipeline::RouteMatcher routes;
    pipeline::Sampler sampler;
};

// Loads the configuration and reports every problem on stderr, one line
// each; also runs the checks only the consumers can make (selectors, routes).
std::optional<LoadedConfiguration> load_configuration(const CommandLine& cli) {
    config::LoadOptions options = config::process_load_options();
    options.config_path = cli.config_path;
    options.strict = cli.strict;
    config::LoadResult loaded = config::load(options);
    for (const auto& problem : loaded.problems)
        std::fprintf(stderr, "%s\n", problem.to_string().c_str());
    if (!loaded.ok()) return std::nullopt;
    bool ok = true;
    for (const auto& problem : discovery::validate_selectors(discovery_options(loaded.config))) {
        std::fprintf(stderr, "error: %s\n", problem.c_str());
        ok = false;
    }
    auto routes = pipeline::RouteMatcher::create(route_options(loaded.config.routes));
    if (auto* err = std::get_if<std::string>(&routes)) {
        std::fprintf(stderr, "error: routes: %s\n", err->c_str());
        ok = false;
    }
    const auto& sampler_cfg = loaded.config.otel_traces_export.sampler;
    pipeline::SamplerConfigResult sampler =
        pipeline::make_sampler(sampler_cfg.name, sampler_cfg.arg);
    if (!sampler.ok()) {
        std::fprintf(stderr, "error: otel_traces_export.sampler: %s\n", sampler.error.c_str());
        ok = false;
    } else if (!sampler.warning.empty()) {
        std::fprintf(stderr, "warning: otel_traces_export.sampler: %s\n", sampler.warning.c_str());
    }
    if (!ok) return std::nullopt;
    return LoadedConfiguration{std::move(loaded.config),
                               std::move(std::get<pipeline::RouteMatcher>(routes)),
                               sampler.sampler};
}

void print_usage() {
    std::printf(
        "usage: sonde [--config FILE] [--strict]\n"
        "       sonde config check [FILE] [--strict]\n\n"
        "  --config FILE  YAML configuration (else SONDE_CONFIG_PATH, then BEYLA_CONFIG_PATH)\n"
        "  --strict       unknown configuration keys are errors, not warnings\n"
        "  config check   print the effective configuration and every problem;\n"
        "                 exit 0 when it is usable\n\n%s",
        config::render_environment_help().c_str());
}

}  // namespace

int main(int argc, char** argv) {
    const app::TerminationSignals signals;
    exporter::otlp::route_protobuf_logs_to_debug();
    CommandLine cli;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--version") {
            std::printf("sonde %s\n", SONDE_VERSION);
            return 0;
        }
        if (arg == "--help" || arg == "-h") {
            print_usage();
            return 0;
        }
        if (arg == "--strict") {
            cli.strict = true;
        } else if (arg == "--config" && i + 1 < argc) {
            cli.config_path = argv[++i];
        } else if (arg.rfind("--config=", 0) == 0) {
            cli.config_path = arg.substr(9);
        } else if (arg == "config" && i + 1 < argc && std::string_view(argv[i + 1]) == "check") {
            cli.check_only = true;
            ++i;
            if (i + 1 < argc && argv[i + 1][0] != '-') cli.config_path = argv[++i];
        } else {
            std::fprintf(stderr, "sonde: unknown argument '%s' (try --help)\n", arg.c_str());
            return 2;
        }
    }

    std::optional<LoadedConfiguration> loaded = load_configuration(cli);
    if (cli.check_only) {
        if (!loaded) return 1;
        std::printf("%s", config::render_effective_yaml(loaded->config).c_str());
        for (const auto& setting : config::inactive_settings(loaded->config))
            std::fprintf(stderr, "note: accepted, not active yet: %s\n", setting.c_str());
        return 0;
    }
    if (!loaded) return 2;

    auto logger = spdlog::stderr_color_mt("sonde");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
    spdlog::set_level(spdlog::level::from_str(loaded->config.log_level));
    for (const auto& setting : config::inactive_settings(loaded->config))
        spdlog::warn("configuration accepted, not active yet: {}", setting);

    const ebpf::CapabilityCheck caps = ebpf::check_capabilities();
    std::string missing_caps;
    for (const auto& c : caps.missing) missing_caps += (missing_caps.empty() ? "" : ", ") + c;
    if (!caps.ok()) {
        if (loaded->config.enforce_sys_caps) {
            spdlog::error(
                "missing capabilities: {}. Grant them (docs/security.md), or set "
                "enforce_sys_caps: false to run with what works without them",
                ebpf::describe_missing(caps));
            return 1;
        }
        spdlog::warn("missing capabilities, running without them (enforce_sys_caps: false): {}",
                     ebpf::describe_missing(caps));
    }
    if (!loaded->config.force_raw_tracepoints) {
        // Still one thread here, as unshare() needs.
        const ebpf::PrivateTracefs tracefs = ebpf::mount_private_tracefs();
        if (tracefs.mounted)
            spdlog::info(
                "tracefs was not mounted: mounted it in the agent's own mount namespace (the "
                "host's mounts are unchanged) to attach per-syscall tracepoints");
        else if (!tracefs.problem.empty())
            spdlog::warn(
                "tracefs is not mounted and the agent could not mount it ({}; it needs "
                "CAP_SYS_ADMIN): raw syscall tracepoints instead, which run for every syscall "
                "on the host",
                tracefs.problem);
    }
    if (!ebpf::kernel_btf_available()) {
        spdlog::error(
            "kernel BTF not found at /sys/kernel/btf/vmlinux: Sonde needs a kernel "
            "built with CONFIG_DEBUG_INFO_BTF=y");
        return 1;
    }
    try {
        Agent agent(loaded->config, std::move(loaded->routes), loaded->sampler);
        spdlog::info("trace sampler: {}", loaded->sampler.description());
        return agent.run(signals);
    } catch (const std::exception& e) {
        if (caps.ok())
            spdlog::error("{}", e.what());
        else
            spdlog::error("{} (started without {})", e.what(), missing_caps);
        return 1;
    }
}
