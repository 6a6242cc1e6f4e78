// The configuration fragments of the product description (copied into
// tests/config/seed/) load unchanged, even under --strict, and mean what the
// description says they mean.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "config/config.h"

namespace sonde::config {
namespace {

const std::string kSeedDir = std::string(SONDE_SOURCE_DIR) + "/tests/config/seed/";

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

// KEY=VALUE per line; blank lines and '#' comments skipped; one pair of
// surrounding quotes removed from the value.
std::map<std::string, std::string> parse_env_file(const std::string& text) {
    std::map<std::string, std::string> env;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        const size_t first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#') {
            continue;
        }
        const size_t equals = line.find('=');
        if (equals == std::string::npos) {
            continue;
        }
        std::string key = line.substr(first, equals - first);
        std::string value = line.substr(equals + 1);
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
            value.back() == value.front()) {
            value = value.substr(1, value.size() - 2);
        }
        env[key] = value;
    }
    return env;
}

EnvLookup lookup_in(std::map<std::string, std::string> vars) {
    auto shared = std::make_shared<const std::map<std::string, std::string>>(std::move(vars));
    return [shared](const char* name) -> const char* {
        const auto it = shared->find(name);
        return it == shared->end() ? nullptr : it->second.c_str();
    };
}

// The ConfigMap mounted at /config in the DaemonSet of 09-daemonset.env.
const std::string kDaemonSetConfigPath = "/config/beyla-config.yml";

LoadResult load_seed(const std::string& name) {
    std::map<std::string, std::string> env;
    LoadOptions options;
    options.strict = true;
    if (name.size() > 4 && name.substr(name.size() - 4) == ".env") {
        env = parse_env_file(read_text(kSeedDir + name));
        for (const auto& [key, value] : env) {
            options.environment_names.push_back(key);
        }
    } else {
        options.config_path = kSeedDir + name;
    }
    options.getenv = lookup_in(env);
    options.read_file = [](const std::string& path, std::string& out, std::string& error) {
        if (path == kDaemonSetConfigPath) {
            out = read_text(kSeedDir + "01-discovery.yml");
            return true;
        }
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            error = "no such file";
            return false;
        }
        out = read_text(path);
        return true;
    };
    return load(options);
}

std::string problems_of(const LoadResult& result) {
    std::string out;
    for (const auto& problem : result.problems) {
        out += problem.to_string() + "\n";
    }
    return out;
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

TEST(SeedConfigs, EveryFileLoadsWithoutAnyProblemUnderStrict) {
    size_t checked = 0;
    for (const auto& entry : std::filesystem::directory_iterator(kSeedDir)) {
        const std::string name = entry.path().filename().string();
        if (name == "README.md") {
            continue;
        }
        const LoadResult result = load_seed(name);
        EXPECT_TRUE(result.problems.empty()) << name << ":\n" << problems_of(result);
        ++checked;
    }
    EXPECT_EQ(checked, 9u);
}

TEST(SeedConfigs, Discovery01HasThreeSelectorsWithKubernetesOnesInactive) {
    const LoadResult r = load_seed("01-discovery.yml");
    ASSERT_TRUE(r.ok()) << problems_of(r);
    const auto& selectors = r.config.discovery.instrument;
    ASSERT_EQ(selectors.size(), 3u);
    EXPECT_EQ(selectors[0].k8s_namespace, "payments");
    EXPECT_EQ(selectors[1].k8s_pod_labels,
              (std::map<std::string, std::string>{{"instrument", "beyla"}}));
    EXPECT_EQ(selectors[2].exe_path, "checkout|api-gateway");
    EXPECT_TRUE(selectors[2].k8s_namespace.empty());
    EXPECT_TRUE(r.config.discovery.exclude_instrument.empty());
    EXPECT_EQ(selectors[2].origin, kSeedDir + "01-discovery.yml:10:7");

    const auto inactive = inactive_settings(r.config);
    EXPECT_EQ(inactive, (std::vector<std::string>{"discovery.instrument[0].k8s_namespace",
                                                  "discovery.instrument[1].k8s_pod_labels"}));
    EXPECT_EQ(describe_selector(selectors[2]), "exe_path=\"checkout|api-gateway\"");
}

TEST(SeedConfigs, OtlpExport02SendsBothSignalsOverGrpcWithKubernetes) {
    const LoadResult r = load_seed("02-otlp-export.yml");
    ASSERT_TRUE(r.ok()) << problems_of(r);
    const Config& c = r.config;
    EXPECT_EQ(c.otel_metrics_export.endpoint, "http://otel-collector.observability:4317");
    EXPECT_EQ(c.otel_traces_export.endpoint, "http://otel-collector.observability:4317");
    EXPECT_EQ(c.otel_metrics_export.protocol, OtlpProtocol::Grpc);
    EXPECT_EQ(c.otel_traces_export.protocol, OtlpProtocol::Grpc);
    EXPECT_EQ(c.attributes.kubernetes.enable, KubernetesEnable::True);
    EXPECT_EQ(c.trace_printer, "disabled");
    ASSERT_EQ(c.discovery.instrument.size(), 1u);
    EXPECT_EQ(c.discovery.instrument[0].k8s_namespace, "payments");
    for (const Signal signal : {Signal::Metrics, Signal::Traces}) {
        const OtlpTarget target = resolve_otlp(c, signal);
        EXPECT_TRUE(target.enabled);
        EXPECT_EQ(target.endpoint, "http://otel-collector.observability:4317");
        EXPECT_EQ(target.protocol, OtlpProtocol::Grpc);
    }
    const auto inactive = inactive_settings(c);
    EXPECT_TRUE(contains(inactive, "attributes.kubernetes.enable"));
    EXPECT_FALSE(contains(inactive, "otel_metrics_export.endpoint"));  // metrics are exported
    EXPECT_FALSE(contains(inactive, "otel_traces_export.protocol"));   // spans are exported
    EXPECT_FALSE(contains(inactive, "trace_printer"));
}

TEST(SeedConfigs, ContextPropagation03IsAllAndInactive) {
    const LoadResult r = load_seed("03-context-propagation.yml");
    ASSERT_TRUE(r.ok()) << problems_of(r);
    EXPECT_EQ(r.config.ebpf.context_propagation, ContextPropagation::All);
    EXPECT_EQ(inactive_settings(r.config), std::vector<std::string>{"ebpf.context_propagation"});
}

TEST(SeedConfigs, Kubernetes04EnablesMetadataWithClusterName) {
    const LoadResult r = load_seed("04-kubernetes.yml");
    ASSERT_TRUE(r.ok()) << problems_of(r);
    EXPECT_EQ(r.config.attributes.kubernetes.enable, KubernetesEnable::True);
    EXPECT_EQ(r.config.attributes.kubernetes.cluster_name, "prod-eu-west-1");
    EXPECT_EQ(inactive_settings(r.config),
              (std::vector<std::string>{"attributes.kubernetes.enable",
                                        "attributes.kubernetes.cluster_name"}));
}

TEST(SeedConfigs, Routes05HasPatternsAndHeuristicAndIsActive) {
    const LoadResult r = load_seed("05-routes.yml");
    ASSERT_TRUE(r.ok()) << problems_of(r);
    EXPECT_EQ(r.config.routes.patterns,
              (std::vector<std::string>{"/orders/{id}", "/users/{id}/cart"}));
    EXPECT_EQ(r.config.routes.unmatched, UnmatchedRoutes::Heuristic);
    EXPECT_EQ(r.config.routes.ignore_mode, IgnoreMode::All);
    EXPECT_EQ(r.config.routes.wildcard_char, '*');
    EXPECT_TRUE(inactive_settings(r.config).empty());
}

TEST(SeedConfigs, MetricsOnly06ExportsMetricsButNoTraces) {
    const LoadResult r = load_seed("06-metrics-only.yml");
    ASSERT_TRUE(r.ok()) << problems_of(r);
    ASSERT_EQ(r.config.discovery.instrument.size(), 1u);
    EXPECT_EQ(r.config.discovery.instrument[0].k8s_namespace, "go-apis");
    const OtlpTarget metrics = resolve_otlp(r.config, Signal::Metrics);
    EXPECT_TRUE(metrics.enabled);
    EXPECT_EQ(metrics.endpoint, "http://otel-collector.observability:4317");
    EXPECT_EQ(metrics.protocol, OtlpProtocol::Grpc);
    EXPECT_FALSE(resolve_otlp(r.config, Signal::Traces).enabled);
    EXPECT_TRUE(r.config.otel_traces_export.endpoint.empty());
}

TEST(SeedConfigs, Sidecar07SelectsPort8080NamesCheckoutAndSharesTheEndpoint) {
    const LoadResult r = load_seed("07-sidecar.env");
    ASSERT_TRUE(r.ok()) << problems_of(r);
    EXPECT_TRUE(r.config.config_path.empty());
    EXPECT_EQ(r.config.open_port, "8080");
    EXPECT_EQ(r.config.service_name, "checkout");
    EXPECT_EQ(r.config.otlp_shared.endpoint, "http://otel-collector.observability:4317");
    EXPECT_TRUE(r.config.otel_traces_export.endpoint.empty());
    for (const Signal signal : {Signal::Metrics, Signal::Traces}) {
        const OtlpTarget target = resolve_otlp(r.config, signal);
        EXPECT_TRUE(target.enabled);
        // Port 4317: gRPC, so no /v1/<signal> path is appended.
        EXPECT_EQ(target.protocol, OtlpProtocol::Grpc);
        EXPECT_EQ(target.endpoint, "http://otel-collector.observability:4317");
    }
    // The shared endpoint serves span export, which is active.
    EXPECT_TRUE(inactive_settings(r.config).empty());
}

TEST(SeedConfigs, Sampling08SamplesEverythingParentBased) {
    const LoadResult r = load_seed("08-sampling.env");
    ASSERT_TRUE(r.ok()) << problems_of(r);
    EXPECT_EQ(r.config.otel_traces_export.sampler.name, "parentbased_always_on");
    EXPECT_TRUE(r.config.otel_traces_export.sampler.arg.empty());
}

TEST(SeedConfigs, DaemonSet09ReadsTheMountedFileAndTheSharedEndpoint) {
    const LoadResult r = load_seed("09-daemonset.env");
    ASSERT_TRUE(r.ok()) << problems_of(r);
    EXPECT_EQ(r.config.config_path, kDaemonSetConfigPath);
    EXPECT_EQ(r.config.discovery.instrument.size(), 3u);  // from the mounted file
    EXPECT_EQ(r.config.otlp_shared.endpoint, "http://otel-collector.observability:4317");
    EXPECT_TRUE(resolve_otlp(r.config, Signal::Traces).enabled);
}

TEST(SeedConfigs, CommentedAlternativeOf08ThinsAtTheSource) {
    // The two commented lines of 08-sampling.env, uncommented.
    LoadOptions options;
    options.getenv = lookup_in(
        {{"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"}, {"OTEL_TRACES_SAMPLER_ARG", "0.05"}});
    const LoadResult r = load(options);
    ASSERT_TRUE(r.ok()) << problems_of(r);
    EXPECT_EQ(r.config.otel_traces_export.sampler.name, "parentbased_traceidratio");
    EXPECT_EQ(r.config.otel_traces_export.sampler.arg, "0.05");
}

}  // namespace
}  // namespace sonde::config
