#include "config/config.h"

#include <charconv>
#include <cstdlib>
#include <string>

#include "discovery/port_set.h"

namespace sonde::config {

namespace {

std::optional<uint64_t> parse_uint(std::string_view text, uint64_t max) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > max) return std::nullopt;
    return value;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::optional<std::string> set_open_port(Config& c, std::string_view v) {
    auto parsed = discovery::PortSet::parse(v);
    if (auto* err = std::get_if<std::string>(&parsed)) return *err;
    c.open_port = std::string(v);
    return std::nullopt;
}

std::optional<std::string> set_trace_printer(Config& c, std::string_view v) {
    std::string mode = lower(v);
    if (mode != "disabled" && mode != "text" && mode != "json")
        return "'" + std::string(v) + "' is not one of disabled, text, json";
    c.trace_printer = mode;
    return std::nullopt;
}

std::optional<std::string> set_log_level(Config& c, std::string_view v) {
    std::string level = lower(v);
    for (const char* ok : {"trace", "debug", "info", "warn", "error"}) {
        if (level == ok) {
            c.log_level = level;
            return std::nullopt;
        }
    }
    return "'" + std::string(v) + "' is not one of trace, debug, info, warn, error";
}

std::optional<std::string> set_prometheus_port(Config& c, std::string_view v) {
    auto port = parse_uint(v, 65535);
    if (!port) return "'" + std::string(v) + "' is not a port (0-65535)";
    c.prometheus_port = static_cast<uint16_t>(*port);
    return std::nullopt;
}

std::optional<std::string> set_capture_bytes(Config& c, std::string_view v) {
    auto n = parse_uint(v, 4096);
    if (!n || *n < 64) return "'" + std::string(v) + "' is not a byte count from 64 to 4096";
    c.capture_bytes = static_cast<uint32_t>(*n);
    return std::nullopt;
}

std::optional<std::string> set_bool(bool& field, std::string_view v) {
    std::string b = lower(v);
    if (b == "true" || b == "1" || b == "yes")
        field = true;
    else if (b == "false" || b == "0" || b == "no")
        field = false;
    else
        return "'" + std::string(v) + "' is not a boolean (true/false)";
    return std::nullopt;
}

}  // namespace

const std::vector<OptionSpec>& option_specs() {
    static const std::vector<OptionSpec> specs = {
        {"OPEN_PORT", "ports or ranges whose listeners/connectors are instrumented", set_open_port},
        {"EXECUTABLE_NAME", "RE2 regex over the executable path of processes to instrument",
         [](Config& c, std::string_view v) -> std::optional<std::string> {
             c.executable_name = std::string(v);
             return std::nullopt;
         }},
        {"SERVICE_NAME", "service name for every instrumented process",
         [](Config& c, std::string_view v) -> std::optional<std::string> {
             c.service_name = std::string(v);
             return std::nullopt;
         }},
        {"SERVICE_NAMESPACE", "service namespace for every instrumented process",
         [](Config& c, std::string_view v) -> std::optional<std::string> {
             c.service_namespace = std::string(v);
             return std::nullopt;
         }},
        {"LOG_LEVEL", "trace, debug, info, warn, error", set_log_level},
        {"TRACE_PRINTER", "disabled, text or json: spans on standard output", set_trace_printer},
        {"PROMETHEUS_PORT", "port of the Prometheus scrape endpoint (0: off)", set_prometheus_port},
        {"PROMETHEUS_ADDRESS", "address the Prometheus endpoint binds to",
         [](Config& c, std::string_view v) -> std::optional<std::string> {
             c.prometheus_address = std::string(v);
             return std::nullopt;
         }},
        {"PROMETHEUS_PATH", "path of the Prometheus endpoint",
         [](Config& c, std::string_view v) -> std::optional<std::string> {
             if (v.empty() || v[0] != '/') return "'" + std::string(v) + "' must start with '/'";
             c.prometheus_path = std::string(v);
             return std::nullopt;
         }},
        {"CAPTURE_BYTES", "payload bytes copied per syscall (64-4096)", set_capture_bytes},
        {"FORCE_RAW_TRACEPOINTS", "use raw syscall tracepoints even when tracefs is mounted",
         [](Config& c, std::string_view v) { return set_bool(c.force_raw_tracepoints, v); }},
    };
    return specs;
}

LoadResult load_from_environment(const EnvLookup& getenv) {
    LoadResult result;
    for (const OptionSpec& spec : option_specs()) {
        for (const char* prefix : {"SONDE_", "BEYLA_"}) {
            std::string var = std::string(prefix) + std::string(spec.name);
            const char* value = getenv(var.c_str());
            if (!value) continue;
            if (auto err = spec.apply(result.config, value))
                result.errors.push_back(var + ": " + *err);
            break;  // SONDE_X set: BEYLA_X is not consulted
        }
    }
    return result;
}

}  // namespace sonde::config
