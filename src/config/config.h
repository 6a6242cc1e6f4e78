// Sonde's configuration: one tree of plain structs. Every field is declared once
// in the option table (options.cpp) with its YAML key, its environment
// variables, its default and its validation; loading, `sonde config check`,
// `--help` and docs/configuration.md are all driven by that table.
//
// Precedence: defaults < YAML file < environment. The file is the --config
// argument, else SONDE_CONFIG_PATH, else BEYLA_CONFIG_PATH.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sonde::config {

// One discovery selector: every criterion that is set must match (AND); the
// selectors of a list are alternatives (OR). Regexes are RE2, partial match.
struct Selector {
    std::string exe_path;           // regex over the executable path
    std::string open_ports;         // canonical port list "80,443,8000-8999"
    std::string service_name;       // YAML `name`: service name of what matches
    std::string service_namespace;  // YAML `namespace`
    bool containers_only = false;
    std::string k8s_namespace;  // Kubernetes criteria: regexes
    std::string k8s_pod_name;
    std::string k8s_deployment_name;
    std::string k8s_replicaset_name;
    std::string k8s_statefulset_name;
    std::string k8s_daemonset_name;
    std::string k8s_owner_name;
    std::map<std::string, std::string> k8s_pod_labels;  // label -> regex over its value
    std::map<std::string, std::string> k8s_pod_annotations;
    // Where the selector was written, "beyla-config.yml:7:7", for log lines.
    // Not a criterion.
    std::string origin;

    bool operator==(const Selector&) const = default;
};

struct Discovery {
    std::vector<Selector> instrument;
    std::vector<Selector> exclude_instrument;  // wins over `instrument`
};

// Histogram bucket boundaries, ascending.
struct HistogramBuckets {
    std::vector<double> duration_histogram = {0,   0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                              0.5, 0.75,  1,    2.5,   5,    7.5,   10};
    std::vector<double> request_size_histogram = {0, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
    std::vector<double> response_size_histogram = {0,   32,   64,   128,  256,
                                                   512, 1024, 2048, 4096, 8192};
};

struct PrometheusExport {
    uint16_t port = 0;  // 0: endpoint disabled
    std::string address = "0.0.0.0";
    std::string path = "/metrics";
    HistogramBuckets buckets;
};

enum class OtlpProtocol { Unset, Grpc, HttpProtobuf, HttpJson };

// How to talk to an OTLP endpoint beyond its URL. Empty / zero: not set at this
// level (a signal's own value wins over the shared OTEL_EXPORTER_OTLP_* one).
struct OtlpConnection {
    std::string headers;  // "k1=v1,k2=v2", values percent-encoded, as in OTEL_EXPORTER_OTLP_HEADERS
    std::chrono::nanoseconds timeout{0};
    std::string compression;  // "none" or "gzip"
    std::string certificate;  // PEM file of the CAs that sign an https endpoint's certificate

    bool operator==(const OtlpConnection&) const = default;
};

enum class MetricsTemporality { Cumulative, Delta };

struct OtelMetricsExport {
    std::string endpoint;  // empty: OTEL_EXPORTER_OTLP_ENDPOINT, else export off
    OtlpProtocol protocol = OtlpProtocol::Unset;
    OtlpConnection connection;
    std::chrono::nanoseconds interval = std::chrono::seconds(60);
    MetricsTemporality temporality = MetricsTemporality::Cumulative;
    HistogramBuckets buckets;
};

struct Sampler {
    std::string name = "parentbased_always_on";
    std::string arg;  // ratio for the *traceidratio samplers; empty = 1.0
};

struct OtelTracesExport {
    std::string endpoint;
    OtlpProtocol protocol = OtlpProtocol::Unset;
    OtlpConnection connection;
    std::chrono::nanoseconds interval = std::chrono::seconds(5);  // batch delay
    Sampler sampler;
};

// OTEL_EXPORTER_OTLP_ENDPOINT / _PROTOCOL: shared by both signals, environment
// only; a signal's own setting wins over them.
struct OtlpShared {
    std::string endpoint;
    OtlpProtocol protocol = OtlpProtocol::Unset;
    OtlpConnection connection;
};

enum class IgnoreMode { Metrics, Traces, All };
enum class UnmatchedRoutes { Unset, Path, Wildcard, Heuristic, LowCardinality };

struct Routes {
    std::vector<std::string> patterns;  // "/orders/{id}", "/files/*"
    std::vector<std::string> ignored_patterns;
    IgnoreMode ignore_mode = IgnoreMode::All;
    UnmatchedRoutes unmatched = UnmatchedRoutes::Heuristic;
    char wildcard_char = '*';
    uint32_t max_routes = 500;  // distinct routes per service; the rest share one overflow route
    uint32_t max_path_segment_cardinality = 10;  // low-cardinality mode
};

enum class KubernetesEnable { False, True, Autodetect };

struct Attributes {
    struct Kubernetes {
        KubernetesEnable enable = KubernetesEnable::False;
        std::string cluster_name;
    } kubernetes;
};

enum class ContextPropagation { Disabled, Headers, Tcp, Ip, All };

struct Ebpf {
    ContextPropagation context_propagation = ContextPropagation::Disabled;
};

struct Metrics {
    // application, application_span, application_service_graph,
    // application_process, network, network_inter_zone
    std::vector<std::string> features = {"application"};
};

struct Config {
    std::string config_path;      // the YAML file that was read; empty: none
    std::string open_port;        // canonical port list "80,443,8000-8999"
    std::string executable_name;  // RE2 regex over the executable path
    std::string service_name;     // overrides every discovered name
    std::string service_namespace;
    std::string log_level = "info";          // trace, debug, info, warn, error
    std::string trace_printer = "disabled";  // disabled, text, json
    uint32_t capture_bytes = 4096;           // payload prefix copied per syscall
    bool force_raw_tracepoints = false;      // ignore tracefs even when mounted
    bool force_helper_reads = false;         // no bpf_rdonly_cast even where it exists
    bool yield_cpu = true;  // the ring consumer at idle CPU priority while it keeps up
    // Records the ring's consumer aims to find per drain (ebpf/drain_pacer.h);
    // 0: a drain every 50 ms whatever the rate.
    uint32_t ring_drain_batch = 64;
    std::string benchmark_kernel_stage = "full";  // full | socket | header | payload | ring
    // A missing capability ends the start (status 1) rather than a warning.
    // Beyla's default is false; see the option's help for why Sonde's is true.
    bool enforce_sys_caps = true;

    Discovery discovery;
    PrometheusExport prometheus_export;
    OtelMetricsExport otel_metrics_export;
    OtelTracesExport otel_traces_export;
    OtlpShared otlp_shared;
    Routes routes;
    Attributes attributes;
    Ebpf ebpf;
    Metrics metrics;
};

enum class Severity { Warning, Error };

struct Problem {
    Severity severity = Severity::Error;
    std::string location;  // "beyla-config.yml:3:9", "env BEYLA_OPEN_PORT", or a file name
    std::string message;   // "prometheus_export.port: '70000' is out of range (0-65535)"

    std::string to_string() const;  // "error: <location>: <message>", always one line
};

struct LoadResult {
    Config config;
    std::vector<Problem> problems;  // in the order found: file first, then environment

    bool ok() const;  // no Severity::Error
    std::vector<std::string> errors() const;
};

// Returns the variable's value, or nullptr when it is not set.
using EnvLookup = std::function<const char*(const char*)>;
// Reads a whole file into `out`; on failure returns false and fills `error`.
using FileReader =
    std::function<bool(const std::string& path, std::string& out, std::string& error)>;

inline constexpr size_t kMaxConfigFileBytes = 1 << 20;

struct LoadOptions {
    std::string config_path;  // --config; empty: SONDE_CONFIG_PATH, then BEYLA_CONFIG_PATH
    bool strict = false;      // unknown keys and SONDE_* variables are errors, not warnings
    EnvLookup getenv;         // required
    // Names of every variable in the environment, to warn about misspelled
    // SONDE_*/BEYLA_* ones. Optional.
    std::vector<std::string> environment_names;
    FileReader read_file;  // default: the file system, at most kMaxConfigFileBytes
};

// Options reading this process's environment (getenv and every name in
// `environ`); set config_path and strict from the command line.
LoadOptions process_load_options();

// defaults < the YAML file (if any) < the environment.
LoadResult load(const LoadOptions& options);

// Same, with `yaml_text` standing for the file's content (config_path and the
// *_CONFIG_PATH variables are not consulted). `source_name` names it in messages.
LoadResult load_from_text(std::string_view yaml_text, std::string_view source_name,
                          const LoadOptions& options);

// Settings that were given non-default values but whose feature is not
// implemented yet, e.g. "attributes.kubernetes.enable",
// "discovery.instrument[0].k8s_namespace". Log them once at start.
std::vector<std::string> inactive_settings(const Config& config);

// The whole effective configuration as YAML that load_from_text accepts.
std::string render_effective_yaml(const Config& config);

// The full text of docs/configuration.md.
std::string render_reference_markdown();

// `sonde --help`: every environment variable with its YAML key and meaning.
std::string render_environment_help();

// Short description of a selector for log lines: `exe_path=~"checkout" open_ports=8080`.
std::string describe_selector(const Selector& selector);

// Where and how a signal is exported, after applying the OTel rules: the
// signal's own endpoint wins over the shared one; the shared one gets
// "/v1/metrics" or "/v1/traces" appended for the HTTP protocols; an unset
// protocol is inferred from the port (…4317 grpc, …4318 http/protobuf), else
// http/protobuf.
enum class Signal { Metrics, Traces };
struct OtlpTarget {
    bool enabled = false;  // an endpoint is configured
    std::string endpoint;
    OtlpProtocol protocol = OtlpProtocol::Unset;
    std::map<std::string, std::string> headers;  // decoded
    std::chrono::nanoseconds timeout = std::chrono::seconds(10);
    bool gzip = false;
    std::string certificate;
};
OtlpTarget resolve_otlp(const Config& config, Signal signal);

std::string_view to_string(OtlpProtocol value);
std::string_view to_string(MetricsTemporality value);
std::string_view to_string(IgnoreMode value);
std::string_view to_string(UnmatchedRoutes value);
std::string_view to_string(KubernetesEnable value);
std::string_view to_string(ContextPropagation value);

}  // namespace sonde::config
