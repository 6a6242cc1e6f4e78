// Sonde's configuration: one struct, every field with an environment
// variable (SONDE_X, with BEYLA_X accepted as an alias) and a default.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sonde::config {

struct Config {
    std::string open_port;        // "80,443,8000-8999"
    std::string executable_name;  // RE2 regex over the executable path
    std::string service_name;     // overrides every discovered name
    std::string service_namespace;
    std::string log_level = "info";
    std::string trace_printer = "disabled";  // disabled | text | json
    uint16_t prometheus_port = 0;            // 0: endpoint disabled
    std::string prometheus_address = "0.0.0.0";
    std::string prometheus_path = "/metrics";
    uint32_t capture_bytes = 4096;       // payload prefix copied per syscall
    bool force_raw_tracepoints = false;  // ignore tracefs even when mounted
};

// One configurable option: its variable name without prefix, and how to set it.
struct OptionSpec {
    std::string_view name;  // "OPEN_PORT" -> SONDE_OPEN_PORT, BEYLA_OPEN_PORT
    std::string_view help;
    // Returns an error message when the value is not acceptable.
    std::optional<std::string> (*apply)(Config&, std::string_view value);
};

const std::vector<OptionSpec>& option_specs();

struct LoadResult {
    Config config;
    std::vector<std::string> errors;  // "SONDE_PROMETHEUS_PORT: '70000' is not a port (1-65535)"
};

// Reads every option from `getenv` (SONDE_ wins over BEYLA_).
using EnvLookup = std::function<const char*(const char*)>;
LoadResult load_from_environment(const EnvLookup& getenv);

}  // namespace sonde::config
