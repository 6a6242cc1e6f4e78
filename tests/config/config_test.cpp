#include "config/config.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace sonde::config {
namespace {

LoadResult load(const std::map<std::string, std::string>& env) {
    return load_from_environment([&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
    });
}

TEST(Config, DefaultsWithEmptyEnvironment) {
    auto r = load({});
    EXPECT_TRUE(r.errors.empty());
    EXPECT_EQ(r.config.trace_printer, "disabled");
    EXPECT_EQ(r.config.prometheus_port, 0);
    EXPECT_EQ(r.config.prometheus_path, "/metrics");
    EXPECT_EQ(r.config.capture_bytes, 4096u);
}

TEST(Config, BeylaVariablesAreAliases) {
    auto r = load({{"BEYLA_OPEN_PORT", "8080"},
                   {"BEYLA_SERVICE_NAME", "checkout"},
                   {"BEYLA_TRACE_PRINTER", "JSON"},
                   {"BEYLA_PROMETHEUS_PORT", "9400"}});
    ASSERT_TRUE(r.errors.empty());
    EXPECT_EQ(r.config.open_port, "8080");
    EXPECT_EQ(r.config.service_name, "checkout");
    EXPECT_EQ(r.config.trace_printer, "json");
    EXPECT_EQ(r.config.prometheus_port, 9400);
}

TEST(Config, SondeVariableWinsOverBeyla) {
    auto r = load({{"BEYLA_OPEN_PORT", "8080"}, {"SONDE_OPEN_PORT", "80,443,8000-8999"}});
    ASSERT_TRUE(r.errors.empty());
    EXPECT_EQ(r.config.open_port, "80,443,8000-8999");
}

TEST(Config, BadValuesNameTheVariable) {
    struct Case {
        const char* var;
        const char* value;
    } cases[] = {
        {"SONDE_OPEN_PORT", "80,,90"},        {"SONDE_OPEN_PORT", "9000-8000"},
        {"BEYLA_OPEN_PORT", "http"},          {"SONDE_PROMETHEUS_PORT", "70000"},
        {"SONDE_PROMETHEUS_PORT", "-1"},      {"SONDE_TRACE_PRINTER", "xml"},
        {"SONDE_LOG_LEVEL", "loud"},          {"SONDE_CAPTURE_BYTES", "999999"},
        {"SONDE_PROMETHEUS_PATH", "metrics"}, {"SONDE_FORCE_RAW_TRACEPOINTS", "maybe"},
    };
    for (const auto& c : cases) {
        auto r = load({{c.var, c.value}});
        ASSERT_EQ(r.errors.size(), 1u) << c.var << "=" << c.value;
        EXPECT_NE(r.errors[0].find(c.var), std::string::npos) << r.errors[0];
    }
}

}  // namespace
}  // namespace sonde::config
