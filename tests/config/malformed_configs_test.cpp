// Every file in tests/config/malformed/ is rejected with exactly one error,
// on one line, that names the problem and where it is. Files whose name
// contains "strict" are loaded with --strict.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "config/config.h"

namespace sonde::config {
namespace {

const std::string kMalformedDir = std::string(SONDE_SOURCE_DIR) + "/tests/config/malformed/";

struct Case {
    const char* file;
    const char* location;  // "file:line:column" as reported
    const char* message;   // a part of the message naming the problem
};

const Case kCases[] = {
    {"bad-type-port.yml", "bad-type-port.yml:2:9",
     "prometheus_export.port: 'ninety' is not a whole number (0-65535)"},
    {"bad-regex.yml", "bad-regex.yml:3:17",
     "discovery.instrument[0].exe_path: invalid regex '(checkout|api': missing )"},
    {"bad-port-range.yml", "bad-port-range.yml:1:12", "open_port: invalid port item '8000-7000'"},
    {"unknown-key-strict.yml", "unknown-key-strict.yml:3:3",
     "unknown key 'prometheus_export.prot' (did you mean 'prometheus_export.port'?)"},
    {"syntax-unclosed-flow.yml", "syntax-unclosed-flow.yml:2:22",
     "YAML syntax error: end of sequence flow not found"},
    {"binary-garbage.bin", "binary-garbage.bin:1:1", "not a YAML text file"},
    {"tabs-indent.yml", "tabs-indent.yml:2:10",
     "line 2 is indented with a tab; YAML allows only spaces"},
    {"duplicate-key.yml", "duplicate-key.yml:3:1", "duplicate key 'log_level'"},
    {"huge-number.yml", "huge-number.yml:1:16",
     "capture_bytes: '123456789012345678901234567890' is out of range (64-4096)"},
    {"negative-port.yml", "negative-port.yml:2:9",
     "prometheus_export.port: '-9400' is negative (0-65535)"},
    {"wrong-enum.yml", "wrong-enum.yml:2:14",
     "routes.unmatched: 'sometimes' is not one of unset, path, wildcard, heuristic, "
     "low-cardinality"},
    {"list-where-map.yml", "list-where-map.yml:2:3",
     "prometheus_export: expected a map with keys port, address, path, buckets"},
    {"top-level-scalar.yml", "top-level-scalar.yml:1:1",
     "the top level must be a map of settings, got a scalar"},
    {"top-level-list.yml", "top-level-list.yml:1:1",
     "the top level must be a map of settings, got a sequence"},
    {"duration-without-unit.yml", "duration-without-unit.yml:2:13",
     "otel_metrics_export.interval: '5': missing unit"},
    {"wrong-protocol.yml", "wrong-protocol.yml:3:13",
     "otel_traces_export.protocol: 'http' is not one of grpc, http/protobuf, http/json"},
    {"map-where-scalar.yml", "map-where-scalar.yml:2:3", "log_level: expected one of"},
    {"endpoint-without-scheme.yml", "endpoint-without-scheme.yml:2:13",
     "must start with http:// or https://"},
    {"unterminated-variable.yml", "unterminated-variable.yml:1:15",
     "service_name: unterminated ${"},
    {"deeply-nested.yml", "deeply-nested.yml:1:73", "YAML nested more than 64 levels deep"},
    {"empty-selector.yml", "empty-selector.yml:4:7",
     "discovery.instrument[1]: selector has no criteria"},
    {"buckets-not-increasing.yml", "buckets-not-increasing.yml:3:36",
     "bucket boundaries must increase: 0.25 follows 0.5"},
    {"labels-list-where-map.yml", "labels-list-where-map.yml:3:23",
     "k8s_pod_labels: expected a map of name: regex, got a sequence"},
    {"two-documents.yml", "two-documents.yml:3:1", "more than one YAML document"},
    {"sampler-arg-not-number.yml", "sampler-arg-not-number.yml:4:10",
     "otel_traces_export.sampler.arg: 'half' is not a sampling ratio from 0 to 1"},
    {"unknown-selector-key-strict.yml", "unknown-selector-key-strict.yml:5:7",
     "unknown selector key 'exe_paht' (did you mean 'exe_path'?)"},
    {"kubernetes-enable-enum.yml", "kubernetes-enable-enum.yml:3:13",
     "attributes.kubernetes.enable: 'maybe' is not one of false, true, autodetect"},
    {"route-pattern-no-slash.yml", "route-pattern-no-slash.yml:3:7",
     "route pattern 'orders/{id}' must start with '/'"},
};

LoadResult load_malformed(const std::string& file) {
    LoadOptions options;
    options.config_path = kMalformedDir + file;
    options.strict = file.find("strict") != std::string::npos;
    options.getenv = [](const char*) -> const char* { return nullptr; };
    return load(options);
}

TEST(MalformedConfigs, EachGivesExactlyOneErrorOnOneLineWithItsLocation) {
    for (const Case& c : kCases) {
        SCOPED_TRACE(c.file);
        const LoadResult result = load_malformed(c.file);
        ASSERT_EQ(result.problems.size(), 1u);
        const Problem& problem = result.problems.front();
        EXPECT_EQ(problem.severity, Severity::Error);
        EXPECT_FALSE(result.ok());
        const std::string line = problem.to_string();
        EXPECT_EQ(line.find('\n'), std::string::npos) << line;
        EXPECT_EQ(problem.location, kMalformedDir + c.location) << line;
        EXPECT_NE(problem.message.find(c.message), std::string::npos) << line;
        EXPECT_EQ(line.rfind("error: " + kMalformedDir, 0), 0u) << line;
    }
}

TEST(MalformedConfigs, EveryFileInTheDirectoryHasAnExpectation) {
    std::set<std::string> expected;
    for (const Case& c : kCases) {
        expected.insert(c.file);
    }
    std::set<std::string> present;
    for (const auto& entry : std::filesystem::directory_iterator(kMalformedDir)) {
        present.insert(entry.path().filename().string());
    }
    EXPECT_EQ(present, expected);
    EXPECT_GE(present.size(), 20u);
}

TEST(MalformedConfigs, StrictFilesOnlyWarnWithoutStrict) {
    for (const char* file : {"unknown-key-strict.yml", "unknown-selector-key-strict.yml"}) {
        LoadOptions options;
        options.config_path = kMalformedDir + file;
        options.getenv = [](const char*) -> const char* { return nullptr; };
        const LoadResult result = load(options);
        EXPECT_TRUE(result.ok()) << file;
        ASSERT_EQ(result.problems.size(), 1u) << file;
        EXPECT_EQ(result.problems[0].severity, Severity::Warning);
    }
}

}  // namespace
}  // namespace sonde::config
