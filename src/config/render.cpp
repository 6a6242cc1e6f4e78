// Everything derived from the option table for people to read: the effective
// configuration, docs/configuration.md, --help, and the list of settings that
// are accepted but not active yet.
#include <algorithm>
#include <string>

#include "config/options.h"
#include "config/value_parsers.h"

namespace sonde::config {

namespace {

using detail::OptionSpec;

// Options nested by YAML path, in table order.
struct Tree {
    std::vector<std::string> names;
    std::vector<Tree> subtrees;  // subtrees[i] is under names[i]
    std::optional<YAML::Node> leaf;

    Tree& child(const std::string& name) {
        const auto it = std::find(names.begin(), names.end(), name);
        if (it != names.end()) {
            return subtrees[static_cast<size_t>(it - names.begin())];
        }
        names.push_back(name);
        subtrees.emplace_back();
        return subtrees.back();
    }
};

void emit(YAML::Emitter& out, const Tree& tree) {
    out << YAML::BeginMap;
    for (size_t i = 0; i < tree.names.size(); ++i) {
        out << YAML::Key << tree.names[i] << YAML::Value;
        if (tree.subtrees[i].leaf) {
            out << *tree.subtrees[i].leaf;
        } else {
            emit(out, tree.subtrees[i]);
        }
    }
    out << YAML::EndMap;
}

bool is_default(const OptionSpec& spec, const Config& config) {
    static const Config defaults;
    return detail::yaml_text(spec.dump(config)) == detail::yaml_text(spec.dump(defaults));
}

// Backticks and table pipes, for a Markdown cell.
std::string cell_code(const std::string& text) {
    std::string out = "`";
    for (const char c : text) {
        if (c == '|') {
            out += "\\|";
        } else {
            out.push_back(c);
        }
    }
    return out + "`";
}

std::string cell_text(const std::string& text) {
    std::string out;
    for (const char c : text) {
        if (c == '|') {
            out += "\\|";
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string default_cell(const OptionSpec& spec) {
    if (!spec.alias_of.empty()) {
        return "—";
    }
    if (!spec.default_note.empty()) {
        return spec.default_note;
    }
    const std::string text = detail::yaml_text(spec.dump(Config{}));
    if (text.empty() || text == "\"\"" || text == "~") {
        return "—";
    }
    return cell_code(text);
}

std::string env_cell(const OptionSpec& spec) {
    if (spec.env.empty()) {
        return "—";
    }
    std::string out;
    for (const auto& var : spec.env) {
        out += (out.empty() ? "" : "<br>") + cell_code(var.name);
        if (!var.note.empty()) {
            out += " (" + cell_text(var.note) + ")";
        }
    }
    return out;
}

std::string group_heading(const std::string& group) {
    if (group.empty()) {
        return "### Top level";
    }
    if (group == "otlp_shared") {
        return "### OTLP settings shared by both signals (environment only)";
    }
    return "### `" + group + "`";
}

constexpr std::string_view kPreamble = R"(# Configuration

<!-- Generated from the option table in src/config/options.cpp by
     render_reference_markdown() (src/config/render.cpp). Do not edit by hand: a unit
     test fails when this file and the code differ. To regenerate, run
     SONDE_REGENERATE_DOCS=1 build/sonde_unit_tests --gtest_filter='ConfigDocs.*' -->

Sonde reads the same `beyla-config.yml` and the same `BEYLA_*` variables as Grafana
Beyla, so an existing Beyla deployment can switch agents without edits.

## Where settings come from

Three layers, each overriding the one before:

1. the defaults listed below;
2. a YAML file: the `--config FILE` argument, else the file named by
   `SONDE_CONFIG_PATH`, else by `BEYLA_CONFIG_PATH`;
3. environment variables.

Every variable `SONDE_X` has the alias `BEYLA_X`; when both are set, `SONDE_X` wins.
Where the OpenTelemetry specification defines a variable (`OTEL_SERVICE_NAME`,
`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_SAMPLER`, ...) Sonde reads it too; the
tables list, for each option, its variables in the order they are tried. A variable
set to the empty string counts as unset.

In YAML values, `${VAR}` is replaced by the variable's value and `${VAR:-text}` by
the value or, when the variable is unset or empty, by `text`. A variable that is
unset and has no default becomes the empty string, and a warning names it. Write
`$${` for a literal `${`. Keys are never expanded.

## Checking a configuration

`sonde config check FILE` prints the effective configuration (defaults, file and
environment combined) and every problem, and exits non-zero when there is an error.
The agent applies the same checks at start and refuses to run on an error.

- A value of the wrong type or outside what the option allows is an error that names
  the file, line and column, the key, and what is allowed. Values from the
  environment are reported as `env VARIABLE`.
- Regexes are RE2 (linear time, no backtracking); one that does not compile is an
  error. So are malformed port lists, durations (`5s`, `100ms`, `1m30s`), URLs and
  route patterns.
- An unknown key is a warning that suggests the closest known key; with `--strict`
  it is an error. Beyla options that Sonde does not implement are reported as such.
  Unknown `SONDE_*` variables are treated like unknown keys; `BEYLA_*` variables
  Sonde does not read are warnings, even with `--strict`.
- The file must be UTF-8 text of at most 1 MiB holding one YAML document whose top
  level is a map. An empty file is valid and leaves every default in place. A key
  given twice is an error.
- Options marked *accepted, not active yet* are parsed and checked now; the feature
  behind them arrives later. When such an option is set, the agent logs one line at
  start listing them ("accepted, not active yet: ...").

## Where OTLP data goes

For each signal, its own endpoint (`otel_metrics_export.endpoint`,
`otel_traces_export.endpoint` or their `OTEL_EXPORTER_OTLP_*_ENDPOINT` variables) is
used as written. Without one, `OTEL_EXPORTER_OTLP_ENDPOINT` is used, with
`/v1/metrics` or `/v1/traces` appended for the HTTP protocols. An unset protocol is
inferred from the port: one ending in 4317 means `grpc`, one ending in 4318
`http/protobuf`; otherwise `http/protobuf`.

## Options
)";

constexpr std::string_view kSelectorIntro = R"(
#### Selector fields

Each item of `discovery.instrument` and `discovery.exclude_instrument` is a map of
these fields. A process matches an item when every field set in it matches; it is
instrumented when it matches any item of `instrument` and no item of
`exclude_instrument`. A selector needs at least one criterion besides `name` and
`namespace`. Regexes match anywhere in the text unless anchored.

| key | type | meaning |
| --- | --- | --- |
)";

constexpr std::string_view kClosing = R"(
## Which processes

- With neither `open_port` nor `executable_name` set, and no `discovery.instrument`
  selector, every process with a listening TCP socket is instrumented, and the agent
  says so at start.
- Never instrumented: the agent itself, PID 1, kernel threads.
- Processes are found when they exec, fork from an instrumented parent, call
  `listen()`, or `connect()` to a selected port (kernel events), and by a `/proc`
  rescan every 5 s. Children of instrumented processes and clients connecting to a
  selected port are filtered in the kernel from their first syscall, before user
  space confirms them.
- The service name is the `name` of the selector that matched, else
  `service_name` (`SONDE_SERVICE_NAME`, `BEYLA_SERVICE_NAME` or the agent's own
  `OTEL_SERVICE_NAME`), else the process's own `OTEL_SERVICE_NAME`, else
  `service.name` in its `OTEL_RESOURCE_ATTRIBUTES`, else the executable's file name.
  The namespace follows the same order with `namespace`, `service_namespace` and
  `service.namespace`.

## Capabilities

Sonde needs `CAP_BPF`, `CAP_PERFMON`, `CAP_SYS_PTRACE`, `CAP_DAC_READ_SEARCH` and
`CAP_CHECKPOINT_RESTORE`, and not `CAP_SYS_ADMIN` (which the kernel accepts in place of
the first two and the last). Started without one of them it exits with status 1 and
names each missing capability and what it is for; with `enforce_sys_caps: false` it
logs that as one warning and runs with what works. `docs/security.md` says why each
one is needed and how to grant exactly these. It needs kernel BTF at
`/sys/kernel/btf/vmlinux`.
)";

std::string strip_backticks(std::string_view text) {
    std::string out;
    for (const char c : text) {
        if (c != '`') {
            out.push_back(c);
        }
    }
    return out;
}

}  // namespace

std::vector<std::string> inactive_settings(const Config& config) {
    std::vector<std::string> out;
    for (const auto& spec : detail::option_table()) {
        if (!spec.alias_of.empty() || spec.loader_handled) {
            continue;
        }
        if (spec.list_inactive) {
            spec.list_inactive(config, out);
        } else if (spec.activity == detail::Activity::NotYet && !is_default(spec, config)) {
            out.push_back(spec.key.empty() ? spec.env.front().name : spec.key);
        }
    }
    return out;
}

std::string render_effective_yaml(const Config& config) {
    std::string header = "# Effective Sonde configuration: defaults < file < environment.\n";
    header +=
        "# config file: " + (config.config_path.empty() ? "(none)" : config.config_path) + "\n";
    Tree root;
    for (const auto& spec : detail::option_table()) {
        if (!spec.alias_of.empty() || spec.loader_handled) {
            continue;
        }
        if (spec.key.empty()) {
            if (!is_default(spec, config)) {
                header += "# " + spec.env.front().name +
                          " (environment only): " + detail::yaml_text(spec.dump(config)) + "\n";
            }
            continue;
        }
        Tree* node = &root;
        size_t start = 0;
        while (true) {
            const size_t dot = spec.key.find('.', start);
            node = &node->child(spec.key.substr(start, dot - start));
            if (dot == std::string::npos) {
                break;
            }
            start = dot + 1;
        }
        node->leaf = spec.dump(config);
    }
    YAML::Emitter out;
    emit(out, root);
    return header + out.c_str() + "\n";
}

std::string render_reference_markdown() {
    std::string out(kPreamble);
    std::string group = "\x01";  // no group yet
    for (const auto& spec : detail::option_table()) {
        if (spec.group != group) {
            if (group == "discovery") {
                out += kSelectorIntro;
                for (const auto& field : detail::selector_fields()) {
                    out += "| " + cell_code(field.key) + " | " + cell_text(field.type) + " | " +
                           cell_text(field.help);
                    if (field.activity == detail::Activity::NotYet) {
                        out += " *Accepted, not active yet.*";
                    }
                    out += " |\n";
                }
            }
            group = spec.group;
            out += "\n" + group_heading(group) + "\n\n";
            out += "| YAML key | environment | default | type | meaning |\n";
            out += "| --- | --- | --- | --- | --- |\n";
        }
        out += "| " + (spec.key.empty() ? std::string("—") : cell_code(spec.key)) + " | " +
               env_cell(spec) + " | " + default_cell(spec) + " | " + cell_text(spec.type) + " | " +
               cell_text(spec.help);
        if (spec.activity == detail::Activity::NotYet && spec.alias_of.empty()) {
            out += " *Accepted, not active yet.*";
        }
        out += " |\n";
    }
    out += kClosing;
    return out;
}

std::string render_environment_help() {
    std::string out =
        "Environment variables, each overriding the YAML key after it (every SONDE_X is "
        "also read as BEYLA_X):\n";
    for (const auto& spec : detail::option_table()) {
        std::string names;
        for (const auto& var : spec.env) {
            const bool alias =
                var.name.rfind("BEYLA_", 0) == 0 &&
                std::any_of(spec.env.begin(), spec.env.end(), [&](const detail::EnvVar& other) {
                    return other.name == "SONDE_" + var.name.substr(6);
                });
            if (alias) {
                continue;
            }
            names += (names.empty() ? "" : ", ") + var.name;
            if (!var.note.empty()) {
                names += " (" + strip_backticks(var.note) + ")";
            }
        }
        if (names.empty()) {
            continue;
        }
        out += "  " + names + "  [" + (spec.key.empty() ? "environment only" : spec.key) +
               "]\n      " + strip_backticks(spec.help) + "\n";
    }
    out += "The YAML file and every option: docs/configuration.md\n";
    return out;
}

std::string describe_selector(const Selector& selector) {
    std::string out;
    for (const auto& field : detail::selector_fields()) {
        const auto node = field.dump(selector);
        if (!node) {
            continue;
        }
        out += (out.empty() ? "" : " ") + field.key + "=";
        if (node->IsMap()) {
            std::string inner;
            for (auto it = node->begin(); it != node->end(); ++it) {
                inner += (inner.empty() ? "" : ",") + it->first.Scalar() + "=\"" +
                         it->second.Scalar() + "\"";
            }
            out += "{" + inner + "}";
        } else {
            out += "\"" + node->Scalar() + "\"";
        }
    }
    return out;
}

OtlpTarget resolve_otlp(const Config& config, Signal signal) {
    const bool metrics = signal == Signal::Metrics;
    const std::string& own_endpoint =
        metrics ? config.otel_metrics_export.endpoint : config.otel_traces_export.endpoint;
    const OtlpProtocol own_protocol =
        metrics ? config.otel_metrics_export.protocol : config.otel_traces_export.protocol;
    OtlpTarget target;
    bool shared = false;
    if (!own_endpoint.empty()) {
        target.endpoint = own_endpoint;
    } else if (!config.otlp_shared.endpoint.empty()) {
        target.endpoint = config.otlp_shared.endpoint;
        shared = true;
    } else {
        return target;
    }
    target.enabled = true;
    target.protocol =
        own_protocol != OtlpProtocol::Unset ? own_protocol : config.otlp_shared.protocol;
    if (target.protocol == OtlpProtocol::Unset) {
        const auto port = detail::url_port(target.endpoint);
        target.protocol =
            port && *port % 10000 == 4317 ? OtlpProtocol::Grpc : OtlpProtocol::HttpProtobuf;
    }
    if (shared && target.protocol != OtlpProtocol::Grpc) {
        while (!target.endpoint.empty() && target.endpoint.back() == '/') {
            target.endpoint.pop_back();
        }
        target.endpoint += metrics ? "/v1/metrics" : "/v1/traces";
    }
    const OtlpConnection& own =
        metrics ? config.otel_metrics_export.connection : config.otel_traces_export.connection;
    const OtlpConnection& both = config.otlp_shared.connection;
    const auto pick = [](const auto& mine, const auto& shared_value) -> const auto& {
        return mine != std::decay_t<decltype(mine)>{} ? mine : shared_value;
    };
    // Validated when loaded; a list that no longer parses sends no headers.
    auto headers = detail::parse_otlp_headers(pick(own.headers, both.headers));
    if (auto* parsed = std::get_if<std::map<std::string, std::string>>(&headers)) {
        target.headers = std::move(*parsed);
    }
    if (const auto timeout = pick(own.timeout, both.timeout); timeout.count() > 0) {
        target.timeout = timeout;
    }
    target.gzip = detail::to_lower(detail::trim(pick(own.compression, both.compression))) == "gzip";
    target.certificate = pick(own.certificate, both.certificate);
    return target;
}

std::string_view to_string(MetricsTemporality value) {
    return value == MetricsTemporality::Delta ? "delta" : "cumulative";
}

std::string_view to_string(OtlpProtocol value) {
    switch (value) {
        case OtlpProtocol::Grpc:
            return "grpc";
        case OtlpProtocol::HttpProtobuf:
            return "http/protobuf";
        case OtlpProtocol::HttpJson:
            return "http/json";
        case OtlpProtocol::Unset:
            break;
    }
    return "";
}

std::string_view to_string(IgnoreMode value) {
    switch (value) {
        case IgnoreMode::Metrics:
            return "metrics";
        case IgnoreMode::Traces:
            return "traces";
        case IgnoreMode::All:
            break;
    }
    return "all";
}

std::string_view to_string(UnmatchedRoutes value) {
    switch (value) {
        case UnmatchedRoutes::Unset:
            return "unset";
        case UnmatchedRoutes::Path:
            return "path";
        case UnmatchedRoutes::Wildcard:
            return "wildcard";
        case UnmatchedRoutes::LowCardinality:
            return "low-cardinality";
        case UnmatchedRoutes::Heuristic:
            break;
    }
    return "heuristic";
}

std::string_view to_string(KubernetesEnable value) {
    switch (value) {
        case KubernetesEnable::True:
            return "true";
        case KubernetesEnable::Autodetect:
            return "autodetect";
        case KubernetesEnable::False:
            break;
    }
    return "false";
}

std::string_view to_string(ContextPropagation value) {
    switch (value) {
        case ContextPropagation::Headers:
            return "headers";
        case ContextPropagation::Tcp:
            return "tcp";
        case ContextPropagation::Ip:
            return "ip";
        case ContextPropagation::All:
            return "all";
        case ContextPropagation::Disabled:
            break;
    }
    return "disabled";
}

}  // namespace sonde::config
