#include "config/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "pipeline/red_metrics.h"

namespace sonde::config {
namespace {

using Env = std::map<std::string, std::string>;
using Files = std::map<std::string, std::string>;

LoadOptions options_with(Env env, Files files = {}) {
    LoadOptions options;
    auto shared_env = std::make_shared<const Env>(std::move(env));
    options.getenv = [shared_env](const char* name) -> const char* {
        const auto it = shared_env->find(name);
        return it == shared_env->end() ? nullptr : it->second.c_str();
    };
    for (const auto& [name, value] : *shared_env) {
        options.environment_names.push_back(name);
    }
    auto shared_files = std::make_shared<const Files>(std::move(files));
    options.read_file = [shared_files](const std::string& path, std::string& out,
                                       std::string& error) {
        const auto it = shared_files->find(path);
        if (it == shared_files->end()) {
            error = "No such file or directory";
            return false;
        }
        out = it->second;
        return true;
    };
    return options;
}

LoadResult load_env(Env env) {
    return load(options_with(std::move(env)));
}

LoadResult load_yaml(std::string_view yaml, Env env = {}, bool strict = false) {
    LoadOptions options = options_with(std::move(env));
    options.strict = strict;
    return load_from_text(yaml, "test.yml", options);
}

std::string problems_of(const LoadResult& result) {
    std::string out;
    for (const auto& problem : result.problems) {
        out += problem.to_string() + "\n";
    }
    return out;
}

size_t count(const LoadResult& result, Severity severity) {
    return std::count_if(result.problems.begin(), result.problems.end(),
                         [&](const Problem& p) { return p.severity == severity; });
}

bool has_problem(const LoadResult& result, Severity severity, const std::string& location,
                 const std::string& part) {
    return std::any_of(result.problems.begin(), result.problems.end(), [&](const Problem& p) {
        return p.severity == severity && p.location == location &&
               p.message.find(part) != std::string::npos;
    });
}

TEST(Config, DefaultsWithEmptyEnvironment) {
    const LoadResult r = load_env({});
    EXPECT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_TRUE(r.config.config_path.empty());
    EXPECT_EQ(r.config.trace_printer, "disabled");
    EXPECT_EQ(r.config.log_level, "info");
    EXPECT_EQ(r.config.prometheus_export.port, 0);
    EXPECT_EQ(r.config.prometheus_export.address, "0.0.0.0");
    EXPECT_EQ(r.config.prometheus_export.path, "/metrics");
    EXPECT_EQ(r.config.capture_bytes, 4096u);
    EXPECT_EQ(r.config.routes.unmatched, UnmatchedRoutes::Heuristic);
    EXPECT_EQ(r.config.routes.ignore_mode, IgnoreMode::All);
    EXPECT_EQ(r.config.routes.max_routes, 500u);
    EXPECT_EQ(r.config.otel_traces_export.sampler.name, "parentbased_always_on");
    EXPECT_EQ(r.config.otel_metrics_export.interval, std::chrono::seconds(60));
    EXPECT_EQ(r.config.metrics.features, std::vector<std::string>{"application"});
    EXPECT_TRUE(r.config.enforce_sys_caps);
    EXPECT_TRUE(inactive_settings(r.config).empty());
}

TEST(Config, DefaultBucketsAreThePipelineDefaults) {
    const HistogramBuckets buckets;
    EXPECT_EQ(buckets.duration_histogram, pipeline::default_duration_buckets());
    EXPECT_EQ(buckets.request_size_histogram, pipeline::default_size_buckets());
    EXPECT_EQ(buckets.response_size_histogram, pipeline::default_size_buckets());
}

TEST(Config, EmptyOrCommentOnlyFilesKeepEveryDefault) {
    for (const char* text : {"", "\n", "# nothing here\n", "---\n", "~\n", "---\n...\n"}) {
        const LoadResult r = load_yaml(text);
        EXPECT_TRUE(r.problems.empty()) << '"' << text << "\"\n" << problems_of(r);
        EXPECT_EQ(render_effective_yaml(r.config), render_effective_yaml(Config{}));
    }
}

TEST(Config, NullValuesAndSectionsKeepDefaults) {
    const LoadResult r = load_yaml("open_port:\nprometheus_export:\nroutes:\n  patterns:\n");
    EXPECT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_TRUE(r.config.open_port.empty());
    EXPECT_EQ(r.config.prometheus_export.path, "/metrics");
}

TEST(Config, BeylaVariablesAreAliases) {
    const LoadResult r = load_env({{"BEYLA_OPEN_PORT", "8080"},
                                   {"BEYLA_SERVICE_NAME", "checkout"},
                                   {"BEYLA_TRACE_PRINTER", "JSON"},
                                   {"BEYLA_PROMETHEUS_PORT", "9400"},
                                   {"BEYLA_KUBE_METADATA_ENABLE", "autodetect"},
                                   {"BEYLA_BPF_CONTEXT_PROPAGATION", "headers"},
                                   {"BEYLA_ROUTES_UNMATCHED", "path"}});
    ASSERT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_EQ(r.config.open_port, "8080");
    EXPECT_EQ(r.config.service_name, "checkout");
    EXPECT_EQ(r.config.trace_printer, "json");
    EXPECT_EQ(r.config.prometheus_export.port, 9400);
    EXPECT_EQ(r.config.attributes.kubernetes.enable, KubernetesEnable::Autodetect);
    EXPECT_EQ(r.config.ebpf.context_propagation, ContextPropagation::Headers);
    EXPECT_EQ(r.config.routes.unmatched, UnmatchedRoutes::Path);
}

TEST(Config, SondeVariableWinsOverBeyla) {
    const LoadResult r =
        load_env({{"BEYLA_OPEN_PORT", "8080"}, {"SONDE_OPEN_PORT", "80,443,8000-8999"}});
    ASSERT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_EQ(r.config.open_port, "80,443,8000-8999");
}

TEST(Config, EmptyVariableCountsAsUnset) {
    const LoadResult r =
        load_yaml("open_port: 9090\n", {{"SONDE_OPEN_PORT", ""}, {"BEYLA_OPEN_PORT", "8080"}});
    ASSERT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_EQ(r.config.open_port, "8080");
}

TEST(Config, EnvironmentOverridesTheFileWhichOverridesDefaults) {
    const LoadResult r =
        load_yaml("open_port: 80\nlog_level: debug\nprometheus_export:\n  port: 9400\n  path: /m\n",
                  {{"BEYLA_OPEN_PORT", "8080"}, {"SONDE_PROMETHEUS_PATH", "/metrics-env"}});
    ASSERT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_EQ(r.config.open_port, "8080");                       // environment
    EXPECT_EQ(r.config.prometheus_export.path, "/metrics-env");  // environment
    EXPECT_EQ(r.config.prometheus_export.port, 9400);            // file
    EXPECT_EQ(r.config.log_level, "debug");                      // file
    EXPECT_EQ(r.config.prometheus_export.address, "0.0.0.0");    // default
}

TEST(Config, ConfigPathComesFromArgumentThenSondeThenBeyla) {
    const Files files = {{"/arg.yml", "log_level: debug\n"},
                         {"/sonde.yml", "log_level: warn\n"},
                         {"/beyla.yml", "log_level: error\n"}};
    LoadOptions all = options_with(
        {{"SONDE_CONFIG_PATH", "/sonde.yml"}, {"BEYLA_CONFIG_PATH", "/beyla.yml"}}, files);
    all.config_path = "/arg.yml";
    LoadResult r = load(all);
    EXPECT_EQ(r.config.config_path, "/arg.yml");
    EXPECT_EQ(r.config.log_level, "debug");

    r = load(options_with(
        {{"SONDE_CONFIG_PATH", "/sonde.yml"}, {"BEYLA_CONFIG_PATH", "/beyla.yml"}}, files));
    EXPECT_EQ(r.config.config_path, "/sonde.yml");
    EXPECT_EQ(r.config.log_level, "warn");

    r = load(options_with({{"BEYLA_CONFIG_PATH", "/beyla.yml"}}, files));
    EXPECT_EQ(r.config.config_path, "/beyla.yml");
    EXPECT_EQ(r.config.log_level, "error");
    EXPECT_TRUE(r.problems.empty()) << problems_of(r);
}

TEST(Config, UnreadableFileIsOneErrorNamingIt) {
    LoadOptions options = options_with({});
    options.config_path = "/no/such/beyla-config.yml";
    const LoadResult r = load(options);
    ASSERT_EQ(r.problems.size(), 1u) << problems_of(r);
    EXPECT_EQ(r.problems[0].location, "/no/such/beyla-config.yml");
    EXPECT_NE(r.problems[0].message.find("cannot read"), std::string::npos);
}

TEST(Config, DefaultReaderRejectsDirectoriesAndLargeFiles) {
    LoadOptions options;
    options.getenv = [](const char*) -> const char* { return nullptr; };
    options.config_path = std::string(SONDE_SOURCE_DIR) + "/tests";
    LoadResult r = load(options);
    ASSERT_EQ(r.problems.size(), 1u) << problems_of(r);
    EXPECT_FALSE(r.ok());

    const std::string big(kMaxConfigFileBytes + 1, '#');
    r = load_yaml(big);
    ASSERT_EQ(r.problems.size(), 1u) << problems_of(r);
    EXPECT_NE(r.problems[0].message.find("larger than 1 MiB"), std::string::npos);
}

TEST(Config, ServiceNameFromOtelVariables) {
    LoadResult r = load_env(
        {{"OTEL_SERVICE_NAME", "from-otel"},
         {"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,service.namespace=shop%20floor"}});
    EXPECT_EQ(r.config.service_name, "from-otel");
    EXPECT_EQ(r.config.service_namespace, "shop floor");

    r = load_env({{"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,service.name=attrs"}});
    EXPECT_EQ(r.config.service_name, "attrs");
    EXPECT_TRUE(r.config.service_namespace.empty());

    r = load_env({{"BEYLA_SERVICE_NAME", "beyla"}, {"OTEL_SERVICE_NAME", "otel"}});
    EXPECT_EQ(r.config.service_name, "beyla");

    r = load_yaml("service_name: file\n", {{"OTEL_SERVICE_NAME", "otel"}});
    EXPECT_EQ(r.config.service_name, "otel");
    EXPECT_TRUE(r.problems.empty()) << problems_of(r);
}

TEST(Config, OtlpTargetsFollowTheOtelRules) {
    // Shared endpoint on an HTTP port: protocol inferred, signal path appended.
    LoadResult r = load_env({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"}});
    OtlpTarget t = resolve_otlp(r.config, Signal::Traces);
    EXPECT_TRUE(t.enabled);
    EXPECT_EQ(t.protocol, OtlpProtocol::HttpProtobuf);
    EXPECT_EQ(t.endpoint, "http://collector:4318/v1/traces");
    EXPECT_EQ(resolve_otlp(r.config, Signal::Metrics).endpoint, "http://collector:4318/v1/metrics");

    // A signal's own endpoint is used as written and wins over the shared one.
    r = load_env({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://shared:4318"},
                  {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces:443/custom"},
                  {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}});
    t = resolve_otlp(r.config, Signal::Traces);
    EXPECT_EQ(t.endpoint, "https://traces:443/custom");
    EXPECT_EQ(t.protocol, OtlpProtocol::HttpJson);
    EXPECT_EQ(resolve_otlp(r.config, Signal::Metrics).endpoint, "http://shared:4318/v1/metrics");

    // As in Beyla, a YAML endpoint of the signal beats the shared variable.
    r = load_yaml("otel_metrics_export:\n  endpoint: http://file:4317\n",
                  {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://shared:4318"}});
    t = resolve_otlp(r.config, Signal::Metrics);
    EXPECT_EQ(t.endpoint, "http://file:4317");
    EXPECT_EQ(t.protocol, OtlpProtocol::Grpc);

    // Unknown port: the OTel default protocol.
    r = load_yaml("otel_traces_export:\n  endpoint: http://collector:9999\n");
    EXPECT_EQ(resolve_otlp(r.config, Signal::Traces).protocol, OtlpProtocol::HttpProtobuf);
    EXPECT_FALSE(resolve_otlp(Config{}, Signal::Metrics).enabled);
}

TEST(Config, IntervalsFromBeylaDurationsAndOtelMilliseconds) {
    LoadResult r =
        load_env({{"OTEL_METRIC_EXPORT_INTERVAL", "15000"}, {"OTEL_BSP_SCHEDULE_DELAY", "250"}});
    ASSERT_TRUE(r.ok()) << problems_of(r);
    EXPECT_EQ(r.config.otel_metrics_export.interval, std::chrono::seconds(15));
    EXPECT_EQ(r.config.otel_traces_export.interval, std::chrono::milliseconds(250));

    r = load_env({{"OTEL_METRIC_EXPORT_INTERVAL", "15000"}, {"BEYLA_METRICS_INTERVAL", "1m30s"}});
    EXPECT_EQ(r.config.otel_metrics_export.interval, std::chrono::seconds(90));

    r = load_env({{"OTEL_METRIC_EXPORT_INTERVAL", "soon"}});
    ASSERT_EQ(r.problems.size(), 1u);
    EXPECT_EQ(r.problems[0].location, "env OTEL_METRIC_EXPORT_INTERVAL");
}

TEST(Config, VariablesInYamlValuesAreExpanded) {
    const LoadResult r = load_yaml(
        "service_name: ${APP}-${REGION:-eu}\n"
        "service_namespace: ${MISSING}\n"
        "executable_name: \"cost$${literal}\"\n"
        "open_port: ${PORT}\n"
        "routes:\n"
        "  patterns: [\"/${PREFIX}/{id}\"]\n"
        "discovery:\n"
        "  instrument:\n"
        "    - exe_path: ${EXE:-checkout}\n",
        {{"APP", "checkout"}, {"PORT", "8080"}, {"PREFIX", "orders"}, {"REGION", ""}});
    SCOPED_TRACE(problems_of(r));
    EXPECT_EQ(r.config.service_name, "checkout-eu");
    EXPECT_EQ(r.config.service_namespace, "");
    EXPECT_EQ(r.config.executable_name, "cost${literal}");
    EXPECT_EQ(r.config.open_port, "8080");
    EXPECT_EQ(r.config.routes.patterns, std::vector<std::string>{"/orders/{id}"});
    ASSERT_EQ(r.config.discovery.instrument.size(), 1u);
    EXPECT_EQ(r.config.discovery.instrument[0].exe_path, "checkout");
    ASSERT_EQ(r.problems.size(), 1u) << problems_of(r);
    EXPECT_EQ(r.problems[0].severity, Severity::Warning);
    EXPECT_EQ(r.problems[0].location, "test.yml:2:20");
    EXPECT_NE(r.problems[0].message.find("${MISSING} is not set"), std::string::npos);
}

TEST(Config, ExpandedValuesAreValidatedLikeWrittenOnes) {
    const LoadResult r = load_yaml("open_port: ${PORT}\n", {{"PORT", "http"}});
    ASSERT_EQ(r.problems.size(), 1u) << problems_of(r);
    EXPECT_TRUE(has_problem(r, Severity::Error, "test.yml:1:12", "open_port"));
}

TEST(Config, EnvironmentValuesAreNotExpanded) {
    const LoadResult r = load_env({{"SONDE_SERVICE_NAME", "${HOME}"}, {"HOME", "/root"}});
    EXPECT_EQ(r.config.service_name, "${HOME}");
}

TEST(Config, UnknownKeysWarnWithTheClosestKnownKey) {
    LoadResult r = load_yaml("otel_metric_export:\n  endpoint: http://c:4317\nport: 9400\n");
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(has_problem(r, Severity::Warning, "test.yml:1:1",
                            "unknown key 'otel_metric_export' (did you mean "
                            "'otel_metrics_export'?)"));
    EXPECT_TRUE(has_problem(r, Severity::Warning, "test.yml:3:1",
                            "unknown key 'port' (did you mean 'prometheus_export.port'?)"));

    r = load_yaml("zzzzzzzz: 1\n");
    ASSERT_EQ(r.problems.size(), 1u);
    EXPECT_EQ(r.problems[0].message, "unknown key 'zzzzzzzz'");

    r = load_yaml("otel_metric_export:\n  endpoint: http://c:4317\n", {}, /*strict=*/true);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(count(r, Severity::Error), 1u);
}

TEST(Config, BeylaOptionsSondeDoesNotImplementAreNamedAsSuch) {
    const LoadResult r = load_yaml("log_format: json\nebpf:\n  track_request_headers: true\n");
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(count(r, Severity::Warning), 2u) << problems_of(r);
    EXPECT_TRUE(has_problem(r, Severity::Warning, "test.yml:1:1",
                            "Beyla option 'log_format' is not supported by Sonde"));
}

TEST(Config, UnknownSondeAndMisspelledBeylaVariablesAreReported) {
    LoadOptions options = options_with({{"SONDE_OPEN_PROT", "80"},
                                        {"BEYLA_OPEN_PROT", "80"},
                                        {"BEYLA_LOG_FORMAT", "json"},
                                        {"SONDE_NONSENSE_THING", "1"},
                                        {"PATH", "/bin"}});
    LoadResult r = load(options);
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(
        has_problem(r, Severity::Warning, "env SONDE_OPEN_PROT", "did you mean SONDE_OPEN_PORT?"));
    EXPECT_TRUE(
        has_problem(r, Severity::Warning, "env BEYLA_OPEN_PROT", "did you mean BEYLA_OPEN_PORT?"));
    EXPECT_TRUE(has_problem(r, Severity::Warning, "env BEYLA_LOG_FORMAT", "not supported"));
    EXPECT_TRUE(has_problem(r, Severity::Warning, "env SONDE_NONSENSE_THING", "unknown"));
    EXPECT_EQ(r.problems.size(), 4u) << problems_of(r);

    // --strict: SONDE_ names are errors; Beyla has many variables Sonde does
    // not read, so BEYLA_ ones stay warnings.
    options.strict = true;
    r = load(options);
    EXPECT_EQ(count(r, Severity::Error), 2u) << problems_of(r);
    EXPECT_EQ(count(r, Severity::Warning), 2u) << problems_of(r);

    r = load_env({{"BEYLA_PROMETHEUS_TTL", "5m"}});
    ASSERT_EQ(r.problems.size(), 1u);
    EXPECT_NE(r.problems[0].message.find("not supported"), std::string::npos);
}

// Beyla's enforce_sys_caps: a Beyla configuration that sets it keeps its meaning, and it is
// an option Sonde implements (no "not supported" warning). Sonde's default is true.
TEST(Config, EnforceSysCapsFromYamlAndBothVariables) {
    LoadResult r = load_yaml("enforce_sys_caps: false\n", {}, /*strict=*/true);
    EXPECT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_FALSE(r.config.enforce_sys_caps);
    r = load_yaml("enforce_sys_caps: true\n");
    EXPECT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_TRUE(r.config.enforce_sys_caps);

    for (const char* var : {"BEYLA_ENFORCE_SYS_CAPS", "SONDE_ENFORCE_SYS_CAPS"}) {
        r = load_env({{var, "false"}});
        EXPECT_TRUE(r.problems.empty()) << var << "\n" << problems_of(r);
        EXPECT_FALSE(r.config.enforce_sys_caps) << var;
    }
    // SONDE_ wins over BEYLA_, the environment over the file.
    r = load_env({{"SONDE_ENFORCE_SYS_CAPS", "true"}, {"BEYLA_ENFORCE_SYS_CAPS", "false"}});
    EXPECT_TRUE(r.config.enforce_sys_caps);
    r = load_yaml("enforce_sys_caps: true\n", {{"BEYLA_ENFORCE_SYS_CAPS", "false"}});
    EXPECT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_FALSE(r.config.enforce_sys_caps);

    r = load_yaml("enforce_sys_caps: sometimes\n");
    EXPECT_TRUE(has_problem(r, Severity::Error, "test.yml:1:19", "is not a boolean"))
        << problems_of(r);
    EXPECT_TRUE(r.config.enforce_sys_caps);  // a bad value keeps the default
}

TEST(Config, BadValuesNameTheVariable) {
    const std::pair<const char*, const char*> cases[] = {
        {"SONDE_OPEN_PORT", "80,,90"},
        {"SONDE_OPEN_PORT", "9000-8000"},
        {"BEYLA_OPEN_PORT", "http"},
        {"SONDE_PROMETHEUS_PORT", "70000"},
        {"SONDE_PROMETHEUS_PORT", "-1"},
        {"SONDE_TRACE_PRINTER", "xml"},
        {"SONDE_LOG_LEVEL", "loud"},
        {"SONDE_CAPTURE_BYTES", "999999"},
        {"SONDE_PROMETHEUS_PATH", "metrics"},
        {"SONDE_FORCE_RAW_TRACEPOINTS", "maybe"},
        {"BEYLA_ENFORCE_SYS_CAPS", "nope"},
        {"SONDE_EXECUTABLE_NAME", "(a"},
        {"BEYLA_ROUTES_IGNORE_MODE", "logs"},
        {"BEYLA_ROUTES_WILDCARD_CHAR", "**"},
        {"BEYLA_METRICS_FEATURES", "application,telepathy"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"},
        {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp"},
        {"OTEL_TRACES_SAMPLER", "sometimes"},
        {"OTEL_TRACES_SAMPLER_ARG", "1.5"},
        {"BEYLA_KUBE_METADATA_ENABLE", "perhaps"},
        {"SONDE_PROMETHEUS_BUCKETS_DURATION_HISTOGRAM", "1,0.5"},
    };
    for (const auto& [var, value] : cases) {
        const LoadResult r = load_env({{var, value}});
        ASSERT_EQ(r.problems.size(), 1u) << var << "=" << value << "\n" << problems_of(r);
        EXPECT_EQ(r.problems[0].severity, Severity::Error);
        EXPECT_EQ(r.problems[0].location, std::string("env ") + var);
        EXPECT_NE(r.problems[0].to_string().find(var), std::string::npos);
    }
}

TEST(Config, PortListsAcceptNumbersTextAndLists) {
    LoadResult r = load_yaml(
        "open_port: 8080\n"
        "discovery:\n"
        "  instrument:\n"
        "    - open_ports: \"443, 80\"\n"
        "    - open_ports: [8000-8099, 9090]\n");
    ASSERT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_EQ(r.config.open_port, "8080");
    ASSERT_EQ(r.config.discovery.instrument.size(), 2u);
    EXPECT_EQ(r.config.discovery.instrument[0].open_ports, "80,443");
    EXPECT_EQ(r.config.discovery.instrument[1].open_ports, "8000-8099,9090");
}

TEST(Config, ListsAcceptYamlSequencesOrCommaSeparatedText) {
    LoadResult r = load_yaml(
        "routes:\n  ignored_patterns: /health, /metrics\nmetrics:\n  features: [Application, "
        "network]\n");
    ASSERT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_EQ(r.config.routes.ignored_patterns, (std::vector<std::string>{"/health", "/metrics"}));
    EXPECT_EQ(r.config.metrics.features, (std::vector<std::string>{"application", "network"}));
    EXPECT_EQ(inactive_settings(r.config), std::vector<std::string>{"metrics.features"});

    r = load_env({{"SONDE_ROUTES_PATTERNS", "/a/{x}, /b/*"}});
    EXPECT_EQ(r.config.routes.patterns, (std::vector<std::string>{"/a/{x}", "/b/*"}));
}

TEST(Config, SelectorsKeepEveryField) {
    const LoadResult r = load_yaml(
        "discovery:\n"
        "  instrument:\n"
        "    - exe_path: ^/usr/bin/nginx$\n"
        "      open_ports: 80\n"
        "      name: edge\n"
        "      namespace: web\n"
        "      containers_only: true\n"
        "      k8s_pod_name: ^web-\n"
        "      k8s_deployment_name: web\n"
        "      k8s_replicaset_name: web-.*\n"
        "      k8s_statefulset_name: db\n"
        "      k8s_daemonset_name: agent\n"
        "      k8s_owner_name: owner\n"
        "      k8s_pod_annotations:\n"
        "        sonde.io/instrument: \"true\"\n"
        "  exclude_instrument:\n"
        "    - exe_path: sonde$\n");
    ASSERT_TRUE(r.problems.empty()) << problems_of(r);
    ASSERT_EQ(r.config.discovery.instrument.size(), 1u);
    const Selector& s = r.config.discovery.instrument[0];
    EXPECT_EQ(s.exe_path, "^/usr/bin/nginx$");
    EXPECT_EQ(s.open_ports, "80");
    EXPECT_EQ(s.service_name, "edge");
    EXPECT_EQ(s.service_namespace, "web");
    EXPECT_TRUE(s.containers_only);
    EXPECT_EQ(s.k8s_pod_name, "^web-");
    EXPECT_EQ(s.k8s_deployment_name, "web");
    EXPECT_EQ(s.k8s_replicaset_name, "web-.*");
    EXPECT_EQ(s.k8s_statefulset_name, "db");
    EXPECT_EQ(s.k8s_daemonset_name, "agent");
    EXPECT_EQ(s.k8s_owner_name, "owner");
    EXPECT_EQ(s.k8s_pod_annotations.at("sonde.io/instrument"), "true");
    ASSERT_EQ(r.config.discovery.exclude_instrument.size(), 1u);
    EXPECT_EQ(r.config.discovery.exclude_instrument[0].exe_path, "sonde$");
    EXPECT_EQ(describe_selector(r.config.discovery.exclude_instrument[0]), "exe_path=\"sonde$\"");
    EXPECT_EQ(inactive_settings(r.config).size(), 8u);
}

TEST(Config, OlderBeylaNamesAreAliases) {
    const LoadResult r = load_yaml(
        "discovery:\n"
        "  services:\n"
        "    - open_ports: 8080\n"
        "      name: checkout\n"
        "  exclude_services:\n"
        "    - exe_path: alloy\n"
        "prometheus_export:\n"
        "  features: [application, application_span]\n");
    ASSERT_TRUE(r.problems.empty()) << problems_of(r);
    ASSERT_EQ(r.config.discovery.instrument.size(), 1u);
    EXPECT_EQ(r.config.discovery.instrument[0].service_name, "checkout");
    EXPECT_EQ(describe_selector(r.config.discovery.instrument[0]),
              "open_ports=\"8080\" name=\"checkout\"");
    ASSERT_EQ(r.config.discovery.exclude_instrument.size(), 1u);
    EXPECT_EQ(r.config.metrics.features,
              (std::vector<std::string>{"application", "application_span"}));
}

TEST(Config, AcceptedAliasesOfValuesWarn) {
    const LoadResult r = load_yaml("trace_printer: json_indent\nlog_level: WARNING\n");
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.config.trace_printer, "json");
    EXPECT_EQ(r.config.log_level, "warn");
    EXPECT_EQ(count(r, Severity::Warning), 2u) << problems_of(r);
}

TEST(Config, EnumsAreCaseInsensitiveLikeBeyla) {
    const LoadResult r = load_yaml(
        "log_level: DEBUG\nroutes:\n  unmatched: Low-Cardinality\n  ignore_mode: Traces\n"
        "attributes:\n  kubernetes:\n    enable: TRUE\n");
    ASSERT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_EQ(r.config.log_level, "debug");
    EXPECT_EQ(r.config.routes.unmatched, UnmatchedRoutes::LowCardinality);
    EXPECT_EQ(r.config.routes.ignore_mode, IgnoreMode::Traces);
    EXPECT_EQ(r.config.attributes.kubernetes.enable, KubernetesEnable::True);
}

TEST(Config, OneMistakeGivesOneError) {
    // A bad field inside a selector: no second "no criteria" error.
    LoadResult r = load_yaml("discovery:\n  instrument:\n    - exe_path: \"[\"\n");
    EXPECT_EQ(r.problems.size(), 1u) << problems_of(r);
    // A bad item in a list: the rest of the list is not reported again.
    r = load_yaml("routes:\n  patterns: [a, b, c]\n");
    EXPECT_EQ(r.problems.size(), 1u) << problems_of(r);
}

TEST(Config, ErrorsDoNotStopOtherSettings) {
    const LoadResult r =
        load_yaml("log_level: loud\ntrace_printer: text\n", {{"SONDE_CAPTURE_BYTES", "1"}});
    EXPECT_EQ(count(r, Severity::Error), 2u) << problems_of(r);
    EXPECT_EQ(r.config.trace_printer, "text");
}

TEST(Config, KeysThatAreNotStringsAreErrors) {
    const LoadResult r = load_yaml("? [a, b]\n: 1\n");
    ASSERT_EQ(r.problems.size(), 1u) << problems_of(r);
    EXPECT_NE(r.problems[0].message.find("keys must be plain strings"), std::string::npos);
}

TEST(Config, AliasedNodesAreBoundedNotExpanded) {
    std::string yaml = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    std::string previous = "a";
    for (int i = 1; i < 12; ++i) {
        const std::string name = "b" + std::to_string(i);
        yaml += name + ": &" + name + " [";
        for (int k = 0; k < 10; ++k) {
            yaml += (k ? ", *" : "*") + previous;
        }
        yaml += "]\n";
        previous = name;
    }
    yaml += "routes:\n  ignored_patterns: *" + previous + "\n";
    const LoadResult r = load_yaml(yaml);
    EXPECT_FALSE(r.ok());
    EXPECT_LE(r.problems.size(), 20u);
}

TEST(Config, TooManyNodesStopWithOneError) {
    std::string yaml = "routes:\n  patterns:\n";
    for (int i = 0; i < 100'001; ++i) {
        yaml += "    - /p\n";
    }
    const LoadResult r = load_yaml(yaml);
    EXPECT_EQ(count(r, Severity::Error), 1u) << problems_of(r).substr(0, 500);
    EXPECT_NE(problems_of(r).find("more than 100000 YAML nodes"), std::string::npos);
}

TEST(Config, ResponseSizeBucketsAreTheirOwn) {
    const LoadResult r = load_yaml(
        "prometheus_export:\n  buckets:\n    request_size_histogram: [0, 10]\n"
        "    response_size_histogram: [0, 20]\n");
    ASSERT_TRUE(r.problems.empty()) << problems_of(r);
    EXPECT_TRUE(inactive_settings(r.config).empty());
    EXPECT_EQ(r.config.prometheus_export.buckets.response_size_histogram,
              (std::vector<double>{0, 20}));
}

TEST(Config, OtlpConnectionSettingsPerSignalWinOverShared) {
    LoadResult r = load_env({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"},
                             {"OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc, x-org=7"},
                             {"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"},
                             {"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
                             {"OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"},
                             {"OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-org=9"},
                             {"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "500"},
                             {"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "none"},
                             {"OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "/etc/metrics-ca.pem"}});
    ASSERT_TRUE(r.ok()) << problems_of(r);
    const OtlpTarget traces = resolve_otlp(r.config, Signal::Traces);
    EXPECT_EQ(traces.headers, (std::map<std::string, std::string>{{"Authorization", "Bearer abc"},
                                                                  {"x-org", "7"}}));
    EXPECT_EQ(traces.timeout, std::chrono::milliseconds(2500));
    EXPECT_TRUE(traces.gzip);
    EXPECT_EQ(traces.certificate, "/etc/ca.pem");
    const OtlpTarget metrics = resolve_otlp(r.config, Signal::Metrics);
    EXPECT_EQ(metrics.headers, (std::map<std::string, std::string>{{"x-org", "9"}}));
    EXPECT_EQ(metrics.timeout, std::chrono::milliseconds(500));
    EXPECT_FALSE(metrics.gzip);
    EXPECT_EQ(metrics.certificate, "/etc/metrics-ca.pem");

    // Nothing set: no headers, the 10 s default timeout, no compression.
    r = load_yaml(
        "otel_traces_export:\n  endpoint: http://c:4318/v1/traces\n"
        "  headers: a=1\n  timeout: 3s\n  compression: GZIP\n");
    ASSERT_TRUE(r.ok()) << problems_of(r);
    EXPECT_EQ(resolve_otlp(r.config, Signal::Traces).headers,
              (std::map<std::string, std::string>{{"a", "1"}}));
    EXPECT_EQ(resolve_otlp(r.config, Signal::Traces).timeout, std::chrono::seconds(3));
    EXPECT_TRUE(resolve_otlp(r.config, Signal::Traces).gzip);
    r = load_env({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"}});
    const OtlpTarget plain = resolve_otlp(r.config, Signal::Metrics);
    EXPECT_TRUE(plain.headers.empty());
    EXPECT_EQ(plain.timeout, std::chrono::seconds(10));
    EXPECT_FALSE(plain.gzip);
}

TEST(Config, BadOtlpConnectionValuesNameTheVariable) {
    for (const auto& [variable, value] : std::vector<std::pair<std::string, std::string>>{
             {"OTEL_EXPORTER_OTLP_HEADERS", "novalue"},
             {"OTEL_EXPORTER_OTLP_HEADERS", "bad name=1"},
             {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x=a%0d%0aInjected: 1"},
             {"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"},
             {"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "soon"},
             {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes"},
         }) {
        const LoadResult r = load_env({{variable, value}});
        ASSERT_EQ(count(r, Severity::Error), 1u) << variable << "=" << value << problems_of(r);
        EXPECT_EQ(r.problems[0].location, "env " + variable) << problems_of(r);
    }
}

TEST(Config, MetricsTemporalityPreference) {
    EXPECT_EQ(load_env({}).config.otel_metrics_export.temporality, MetricsTemporality::Cumulative);
    for (const char* value : {"delta", "Delta", "lowmemory"}) {
        const LoadResult r =
            load_env({{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", value}});
        ASSERT_TRUE(r.ok()) << problems_of(r);
        EXPECT_EQ(r.config.otel_metrics_export.temporality, MetricsTemporality::Delta) << value;
    }
    const LoadResult r = load_yaml("otel_metrics_export:\n  temporality: cumulative\n");
    ASSERT_TRUE(r.ok()) << problems_of(r);
    EXPECT_EQ(r.config.otel_metrics_export.temporality, MetricsTemporality::Cumulative);
}

TEST(Config, InactiveSettingsListNonDefaultLaterFeatures) {
    const LoadResult r = load_yaml(
        "attributes:\n  kubernetes:\n    enable: false\n"  // the default: not listed
        "otel_traces_export:\n  sampler:\n    name: always_off\n"
        "ebpf:\n  context_propagation: tcp\n",
        {{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}});
    ASSERT_TRUE(r.problems.empty()) << problems_of(r);
    // Span export and samplers are active; context propagation is not yet.
    EXPECT_EQ(inactive_settings(r.config), (std::vector<std::string>{"ebpf.context_propagation"}));
}

const char kRichConfig[] =
    "open_port: 80,443,8000-8999\n"
    "executable_name: \"^/opt/(api|web)$\"\n"
    "service_name: 'checkout: \"eu\"'\n"
    "service_namespace: shop$${x}\n"
    "log_level: debug\n"
    "trace_printer: text\n"
    "capture_bytes: 512\n"
    "force_raw_tracepoints: yes\n"
    "enforce_sys_caps: false\n"
    "discovery:\n"
    "  instrument:\n"
    "    - k8s_namespace: payments\n"
    "      k8s_pod_labels: {app: \"^checkout$\", tier: \".*\"}\n"
    "    - exe_path: '#weird: [value]'\n"
    "      open_ports: 8080\n"
    "  exclude_instrument:\n"
    "    - exe_path: sonde\n"
    "routes:\n"
    "  patterns: [\"/orders/{id}\", \"/users/{id}/cart\"]\n"
    "  ignored_patterns: [/health]\n"
    "  ignore_mode: traces\n"
    "  unmatched: low-cardinality\n"
    "  wildcard_char: '#'\n"
    "  max_routes: 300\n"
    "prometheus_export:\n"
    "  port: 9400\n"
    "  address: 127.0.0.1\n"
    "  path: /prom\n"
    "  buckets:\n"
    "    duration_histogram: [0.001, 0.1, 1e3]\n"
    "otel_metrics_export:\n"
    "  endpoint: http://c:4318\n"
    "  protocol: http/json\n"
    "  interval: 1500ms\n"
    "  temporality: delta\n"
    "  headers: \"api-key=a%2Cb, x=1\"\n"
    "  timeout: 2s\n"
    "  compression: gzip\n"
    "  certificate: /etc/ca.pem\n"
    "otel_traces_export:\n"
    "  endpoint: https://c:4317\n"
    "  protocol: grpc\n"
    "  sampler: {name: traceidratio, arg: \"0.25\"}\n"
    "attributes:\n"
    "  kubernetes: {enable: autodetect, cluster_name: prod}\n"
    "ebpf:\n"
    "  context_propagation: ip\n"
    "metrics:\n"
    "  features: [application, network]\n";

TEST(Config, EffectiveYamlLoadsBackToTheSameConfiguration) {
    const LoadResult first = load_yaml(kRichConfig, {}, /*strict=*/true);
    ASSERT_TRUE(first.problems.empty()) << problems_of(first);
    const std::string rendered = render_effective_yaml(first.config);
    const LoadResult second = load_yaml(rendered, {}, /*strict=*/true);
    ASSERT_TRUE(second.problems.empty()) << problems_of(second) << rendered;
    EXPECT_EQ(render_effective_yaml(second.config), rendered);

    const Config& c = second.config;
    EXPECT_EQ(c.service_name, "checkout: \"eu\"");
    EXPECT_EQ(c.executable_name, "^/opt/(api|web)$");
    EXPECT_EQ(c.service_namespace, "shop${x}");
    EXPECT_TRUE(c.force_raw_tracepoints);
    EXPECT_FALSE(c.enforce_sys_caps);
    EXPECT_EQ(c.routes.wildcard_char, '#');
    EXPECT_EQ(c.routes.max_routes, 300u);
    EXPECT_EQ(c.prometheus_export.buckets.duration_histogram,
              (std::vector<double>{0.001, 0.1, 1000}));
    EXPECT_EQ(c.otel_metrics_export.interval, std::chrono::milliseconds(1500));
    EXPECT_EQ(c.otel_traces_export.sampler.arg, "0.25");
    EXPECT_EQ(c.discovery.instrument[0].k8s_pod_labels.at("tier"), ".*");
    EXPECT_EQ(c.discovery.instrument[1].exe_path, "#weird: [value]");
    EXPECT_NE(rendered.find("context_propagation: ip"), std::string::npos);
}

TEST(Config, EffectiveYamlNamesTheFileAndEnvironmentOnlySettings) {
    Config config;
    config.config_path = "/etc/sonde.yml";
    config.otlp_shared.endpoint = "http://collector:4317";
    const std::string rendered = render_effective_yaml(config);
    EXPECT_NE(rendered.find("# config file: /etc/sonde.yml\n"), std::string::npos);
    EXPECT_NE(rendered.find("# OTEL_EXPORTER_OTLP_ENDPOINT (environment only): "
                            "http://collector:4317\n"),
              std::string::npos)
        << rendered;
}

TEST(Config, EnvironmentHelpListsEveryVariableOnce) {
    const std::string help = render_environment_help();
    for (const char* var : {"SONDE_OPEN_PORT", "SONDE_CONFIG_PATH", "OTEL_SERVICE_NAME",
                            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER_ARG",
                            "SONDE_BPF_CONTEXT_PROPAGATION"}) {
        EXPECT_NE(help.find(var), std::string::npos) << var;
    }
    EXPECT_EQ(help.find("BEYLA_OPEN_PORT"), std::string::npos);
    EXPECT_NE(help.find("BEYLA_OTEL_METRICS_FEATURES"), std::string::npos);
}

TEST(Config, ProcessOptionsSeeTheRealEnvironment) {
    ASSERT_EQ(setenv("SONDE_TEST_ONLY_VARIABLE", "1", 1), 0);
    const LoadOptions options = process_load_options();
    unsetenv("SONDE_TEST_ONLY_VARIABLE");
    const auto& names = options.environment_names;
    EXPECT_NE(std::find(names.begin(), names.end(), "SONDE_TEST_ONLY_VARIABLE"), names.end());
    ASSERT_TRUE(options.getenv);
    EXPECT_NE(options.getenv("PATH"), nullptr);
}

TEST(Config, EnumNames) {
    EXPECT_EQ(to_string(OtlpProtocol::HttpProtobuf), "http/protobuf");
    EXPECT_EQ(to_string(UnmatchedRoutes::LowCardinality), "low-cardinality");
    EXPECT_EQ(to_string(IgnoreMode::All), "all");
    EXPECT_EQ(to_string(KubernetesEnable::Autodetect), "autodetect");
    EXPECT_EQ(to_string(ContextPropagation::Tcp), "tcp");
}

}  // namespace
}  // namespace sonde::config
