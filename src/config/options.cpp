// The option table: every configurable setting, declared once.
#include "config/options.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <variant>

#include "config/value_parsers.h"
#include "discovery/port_set.h"

namespace sonde::config::detail {

namespace {

// ---- Codecs: parse a Value into a field's type, and render it back as YAML.

// Rendered text is read back with `${` expansion, so a literal `${` is
// written as `$${`.
std::string escape_expansion(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
            out += '$';
        }
        out += text[i];
    }
    return out;
}

using Check = std::optional<std::string> (*)(std::string_view);

struct TextCodec {
    std::string type_name = "string";
    Check check = nullptr;

    std::string type() const { return type_name; }
    std::optional<std::string> parse(const Value& value) const {
        auto text = value.scalar("a string");
        if (!text) {
            return std::nullopt;
        }
        if (check != nullptr) {
            if (auto reason = check(*text)) {
                value.error(*reason);
                return std::nullopt;
            }
        }
        return text;
    }
    YAML::Node dump(const std::string& text) const { return YAML::Node(escape_expansion(text)); }
};

std::optional<std::string> check_optional_regex(std::string_view text) {
    return text.empty() ? std::nullopt : check_regex(text);
}

std::optional<std::string> check_optional_endpoint(std::string_view text) {
    return text.empty() ? std::nullopt : check_endpoint_url(text);
}

std::optional<std::string> check_http_path(std::string_view text) {
    if (text.empty() || text.front() != '/') {
        return quote(text) + " must start with '/'";
    }
    for (const char c : text) {
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '?' || c == '#') {
            return quote(text) + " must be a plain path (no blanks, '?' or '#')";
        }
    }
    return std::nullopt;
}

std::optional<std::string> check_sampler_arg(std::string_view text) {
    if (text.empty()) {
        return std::nullopt;
    }
    const auto ratio = parse_finite_double(text);
    if (!ratio || *ratio < 0 || *ratio > 1) {
        return quote(text) + " is not a sampling ratio from 0 to 1";
    }
    return std::nullopt;
}

std::optional<std::string> check_otlp_headers(std::string_view text) {
    auto parsed = parse_otlp_headers(text);
    if (auto* reason = std::get_if<std::string>(&parsed)) return *reason;
    return std::nullopt;
}

std::optional<std::string> check_compression(std::string_view text) {
    const std::string lowered = to_lower(trim(text));
    if (lowered.empty() || lowered == "none" || lowered == "gzip") return std::nullopt;
    return quote(text) + " is not one of none, gzip";
}

std::optional<std::string> check_bind_address(std::string_view text) {
    if (text.empty()) {
        return std::string("empty address (use 0.0.0.0 for every interface)");
    }
    for (const char c : text) {
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '/') {
            return quote(text) + " is not a host or IP address";
        }
    }
    return std::nullopt;
}

const TextCodec kString{};
const TextCodec kRegex{"RE2 regex", check_optional_regex};
const TextCodec kEndpoint{"URL", check_optional_endpoint};
const TextCodec kHeaders{"key=value list", check_otlp_headers};
const TextCodec kCompression{"none or gzip", check_compression};

// "80,443,8000-8999", 8080, or a YAML list of ports and ranges.
struct PortListCodec {
    std::string type() const { return "port list"; }
    std::optional<std::string> parse(const Value& value) const {
        std::string text;
        if (value.node() != nullptr && value.node()->IsSequence()) {
            auto items = value.list_items("a port list");
            if (!items) {
                return std::nullopt;
            }
            for (const Value& item : *items) {
                auto part = item.scalar("a port or range");
                if (!part) {
                    return std::nullopt;
                }
                text += (text.empty() ? "" : ",") + *part;
            }
        } else {
            auto scalar = value.scalar("a port list like \"80,443,8000-8999\"");
            if (!scalar) {
                return std::nullopt;
            }
            text = *scalar;
        }
        auto parsed = discovery::PortSet::parse(text);
        if (const auto* reason = std::get_if<std::string>(&parsed)) {
            value.error(*reason + " (expected ports and ranges like \"80,443,8000-8999\")");
            return std::nullopt;
        }
        return std::get<discovery::PortSet>(parsed).to_string();
    }
    YAML::Node dump(const std::string& ports) const { return YAML::Node(ports); }
};

template <typename T>
struct UnsignedCodec {
    uint64_t min = 0;
    uint64_t max = 0;

    std::string type() const {
        return "integer " + std::to_string(min) + "-" + std::to_string(max);
    }
    std::optional<T> parse(const Value& value) const {
        auto text = value.scalar("a whole number");
        if (!text) {
            return std::nullopt;
        }
        auto parsed = parse_unsigned(*text, min, max);
        if (const auto* reason = std::get_if<std::string>(&parsed)) {
            value.error(*reason);
            return std::nullopt;
        }
        return static_cast<T>(std::get<uint64_t>(parsed));
    }
    YAML::Node dump(T number) const { return YAML::Node(static_cast<unsigned long long>(number)); }
};

struct BoolCodec {
    std::string type() const { return "boolean"; }
    std::optional<bool> parse(const Value& value) const {
        auto text = value.scalar("true or false");
        if (!text) {
            return std::nullopt;
        }
        auto parsed = parse_bool(*text);
        if (!parsed) {
            value.error(quote(*text) + " is not a boolean (true or false)");
        }
        return parsed;
    }
    YAML::Node dump(bool flag) const { return YAML::Node(flag); }
};

struct DurationCodec {
    std::chrono::nanoseconds min = std::chrono::milliseconds(1);

    std::string type() const { return "duration"; }
    std::optional<std::chrono::nanoseconds> parse(const Value& value) const {
        auto text = value.scalar("a duration like 5s or 100ms");
        if (!text) {
            return std::nullopt;
        }
        auto parsed = parse_duration(*text);
        if (const auto* reason = std::get_if<std::string>(&parsed)) {
            value.error(quote(*text) + ": " + *reason);
            return std::nullopt;
        }
        const auto duration = std::get<std::chrono::nanoseconds>(parsed);
        if (duration < min) {
            value.error(quote(*text) + " is shorter than " + format_duration(min));
            return std::nullopt;
        }
        return duration;
    }
    YAML::Node dump(std::chrono::nanoseconds duration) const {
        return YAML::Node(format_duration(duration));
    }
};

template <typename E>
struct EnumCodec {
    struct Entry {
        std::string name;
        E value;
        bool shown = true;  // listed among the allowed values
    };
    std::vector<Entry> entries;

    std::string allowed() const {
        std::string out;
        for (const auto& entry : entries) {
            if (entry.shown && !entry.name.empty()) {
                out += (out.empty() ? "" : ", ") + entry.name;
            }
        }
        return out;
    }
    std::string type() const { return "one of " + allowed(); }
    std::optional<E> parse(const Value& value) const {
        auto text = value.scalar("one of " + allowed());
        if (!text) {
            return std::nullopt;
        }
        const std::string lowered = to_lower(trim(*text));
        for (const auto& entry : entries) {
            if (entry.name == lowered) {
                return entry.value;
            }
        }
        value.error(quote(*text) + " is not one of " + allowed());
        return std::nullopt;
    }
    YAML::Node dump(E e) const {
        for (const auto& entry : entries) {
            if (entry.value == e) {
                return YAML::Node(entry.name);
            }
        }
        return YAML::Node(std::string());
    }
};

// A string restricted to a set of lower-case words; `aliases` are accepted
// and replaced, with a warning saying so.
struct ChoiceCodec {
    std::vector<std::string> allowed;
    std::vector<std::pair<std::string, std::string>> aliases;

    std::string allowed_text() const {
        std::string out;
        for (const auto& word : allowed) {
            out += (out.empty() ? "" : ", ") + word;
        }
        return out;
    }
    std::string type() const { return "one of " + allowed_text(); }
    std::optional<std::string> parse(const Value& value) const {
        auto text = value.scalar("one of " + allowed_text());
        if (!text) {
            return std::nullopt;
        }
        const std::string lowered = to_lower(trim(*text));
        if (std::find(allowed.begin(), allowed.end(), lowered) != allowed.end()) {
            return lowered;
        }
        for (const auto& [from, to] : aliases) {
            if (lowered == from) {
                value.warning(quote(*text) + " is taken as '" + to + "'");
                return to;
            }
        }
        value.error(quote(*text) + " is not one of " + allowed_text());
        return std::nullopt;
    }
    YAML::Node dump(const std::string& word) const { return YAML::Node(word); }
};

YAML::Node flow_sequence() {
    YAML::Node node(YAML::NodeType::Sequence);
    node.SetStyle(YAML::EmitterStyle::Flow);
    return node;
}

struct StringListCodec {
    std::string type_name = "list of strings";
    Check check = nullptr;
    std::vector<std::string> allowed;  // empty: any word
    size_t max_items = 10'000;

    std::string type() const { return type_name; }
    std::optional<std::vector<std::string>> parse(const Value& value) const {
        auto items = value.list_items("a list");
        if (!items) {
            return std::nullopt;
        }
        if (items->size() > max_items) {
            value.error("more than " + std::to_string(max_items) + " items");
            return std::nullopt;
        }
        std::vector<std::string> out;
        for (const Value& item : *items) {
            auto text = item.scalar("a string");
            if (!text) {
                return std::nullopt;
            }
            std::string word = std::string(trim(*text));
            if (word.empty()) {
                item.error("empty item");
                return std::nullopt;
            }
            if (!allowed.empty()) {
                word = to_lower(word);
                if (std::find(allowed.begin(), allowed.end(), word) == allowed.end()) {
                    std::string list;
                    for (const auto& a : allowed) {
                        list += (list.empty() ? "" : ", ") + a;
                    }
                    item.error(quote(*text) + " is not one of " + list);
                    return std::nullopt;
                }
            }
            if (check != nullptr) {
                if (auto reason = check(word)) {
                    item.error(*reason);
                    return std::nullopt;
                }
            }
            out.push_back(std::move(word));
        }
        return out;
    }
    YAML::Node dump(const std::vector<std::string>& list) const {
        YAML::Node node = flow_sequence();
        for (const auto& item : list) {
            node.push_back(escape_expansion(item));
        }
        return node;
    }
};

std::string shortest_double(double number) {
    char buffer[32];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, number);
    return ec == std::errc{} ? std::string(buffer, end) : std::to_string(number);
}

struct BucketsCodec {
    static constexpr size_t kMaxBoundaries = 64;

    std::string type() const { return "list of numbers"; }
    std::optional<std::vector<double>> parse(const Value& value) const {
        auto items = value.list_items("a list of bucket boundaries");
        if (!items) {
            return std::nullopt;
        }
        if (items->empty() || items->size() > kMaxBoundaries) {
            value.error("needs 1 to " + std::to_string(kMaxBoundaries) + " bucket boundaries");
            return std::nullopt;
        }
        std::vector<double> out;
        for (const Value& item : *items) {
            auto text = item.scalar("a number");
            if (!text) {
                return std::nullopt;
            }
            const auto number = parse_finite_double(*text);
            if (!number || *number < 0) {
                item.error(quote(*text) + " is not a non-negative number");
                return std::nullopt;
            }
            if (!out.empty() && *number <= out.back()) {
                item.error("bucket boundaries must increase: " + shortest_double(*number) +
                           " follows " + shortest_double(out.back()));
                return std::nullopt;
            }
            out.push_back(*number);
        }
        return out;
    }
    YAML::Node dump(const std::vector<double>& bounds) const {
        YAML::Node node = flow_sequence();
        for (const double bound : bounds) {
            node.push_back(shortest_double(bound));
        }
        return node;
    }
};

struct CharCodec {
    std::string type() const { return "one character"; }
    std::optional<char> parse(const Value& value) const {
        auto text = value.scalar("one character");
        if (!text) {
            return std::nullopt;
        }
        if (text->size() != 1 || (*text)[0] <= ' ' || (*text)[0] == 0x7f || (*text)[0] == '/') {
            value.error(quote(*text) + " must be exactly one printable character other than '/'");
            return std::nullopt;
        }
        return (*text)[0];
    }
    YAML::Node dump(char c) const { return YAML::Node(std::string(1, c)); }
};

// label -> regex, as in k8s_pod_labels.
struct RegexMapCodec {
    std::string type() const { return "map of RE2 regexes"; }
    std::optional<std::map<std::string, std::string>> parse(const Value& value) const {
        const YAML::Node* node = value.node();
        if (node == nullptr || !node->IsMap()) {
            value.error("expected a map of name: regex, got " + value.kind_name());
            return std::nullopt;
        }
        LoadContext& context = value.context();
        std::map<std::string, std::string> out;
        for (auto it = node->begin(); it != node->end(); ++it) {
            if (!context.spend()) {
                return std::nullopt;
            }
            // Copies: the iterator hands out a temporary pair.
            const YAML::Node key = it->first;
            if (!key.IsScalar() || key.Scalar().empty()) {
                value.error("keys must be non-empty strings");
                return std::nullopt;
            }
            const std::string path = value.key() + "." + key.Scalar();
            if (out.count(key.Scalar()) != 0) {
                context.error(context.location(key.Mark()),
                              path + ": duplicate key " + quote(key.Scalar()));
                return std::nullopt;
            }
            auto regex = kRegex.parse(
                Value::from_yaml(it->second, path, context.location(it->second.Mark()), context));
            if (!regex) {
                return std::nullopt;
            }
            out.emplace(key.Scalar(), std::move(*regex));
        }
        return out;
    }
    YAML::Node dump(const std::map<std::string, std::string>& map) const {
        YAML::Node node(YAML::NodeType::Map);
        for (const auto& [k, v] : map) {
            node[k] = escape_expansion(v);
        }
        return node;
    }
};

// ---- Builders

std::string group_of(const std::string& key) {
    const size_t dot = key.find('.');
    return dot == std::string::npos ? std::string() : key.substr(0, dot);
}

template <typename Codec, typename Field>
OptionSpec option(std::string key, std::vector<EnvVar> env, std::string help, Field field,
                  Codec codec, Activity activity = Activity::Active) {
    OptionSpec spec;
    spec.group = group_of(key);
    spec.key = std::move(key);
    spec.env = std::move(env);
    spec.type = codec.type();
    spec.help = std::move(help);
    spec.activity = activity;
    spec.apply = [field, codec](Config& config, const Value& value) {
        if (auto parsed = codec.parse(value)) {
            field(config) = std::move(*parsed);
        }
    };
    spec.dump = [field, codec](const Config& config) {
        return codec.dump(field(const_cast<Config&>(config)));
    };
    return spec;
}

OptionSpec alias(std::string key, const OptionSpec& target) {
    OptionSpec spec = target;
    spec.group = group_of(key);
    spec.key = std::move(key);
    spec.env.clear();
    spec.alias_of = target.key;
    spec.help = "Same as `" + target.key + "` (older Beyla name).";
    spec.list_inactive = nullptr;
    return spec;
}

// SONDE_<suffix>, then BEYLA_<suffix>, then `extra`.
std::vector<EnvVar> env(const std::string& suffix, std::vector<EnvVar> extra = {}) {
    std::vector<EnvVar> vars = {{"SONDE_" + suffix}, {"BEYLA_" + suffix}};
    vars.insert(vars.end(), extra.begin(), extra.end());
    return vars;
}

std::optional<std::string> resource_service_name(std::string_view raw) {
    return resource_attribute(raw, "service.name");
}

std::optional<std::string> resource_service_namespace(std::string_view raw) {
    return resource_attribute(raw, "service.namespace");
}

// The OTel variables for intervals are whole milliseconds.
std::optional<std::string> milliseconds(std::string_view raw) {
    const std::string_view text = trim(raw);
    const bool digits = !text.empty() && std::all_of(text.begin(), text.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
    return digits ? std::string(text) + "ms" : std::string(text);
}

const EnumCodec<OtlpProtocol> kProtocol{{
    {"", OtlpProtocol::Unset, false},
    {"grpc", OtlpProtocol::Grpc},
    {"http/protobuf", OtlpProtocol::HttpProtobuf},
    {"http/json", OtlpProtocol::HttpJson},
}};

const EnumCodec<MetricsTemporality> kTemporality{{
    {"cumulative", MetricsTemporality::Cumulative},
    {"delta", MetricsTemporality::Delta},
    // The spec's "lowmemory" is delta for histograms, the only kind Sonde exports.
    {"lowmemory", MetricsTemporality::Delta},
}};

// headers, timeout, compression and certificate of one OTLP signal (`section`
// "otel_traces_export", variables OTEL_EXPORTER_OTLP_TRACES_*), or of both
// (empty section: environment only, OTEL_EXPORTER_OTLP_*).
template <typename Field>
void add_otlp_connection_options(std::vector<OptionSpec>& t, const std::string& section,
                                 const std::string& signal, Field connection) {
    const std::string prefix = "OTEL_EXPORTER_OTLP_" + (signal.empty() ? "" : signal + "_");
    const std::string key = section.empty() ? "" : section + ".";
    const std::string scope = signal.empty() ? "both signals, unless a signal sets its own"
                                             : "this signal; wins over the shared variable";
    auto add = [&](OptionSpec spec) {
        if (section.empty()) spec.group = "otlp_shared";
        t.push_back(std::move(spec));
    };
    add(option(
        key.empty() ? "" : key + "headers", {{prefix + "HEADERS"}},
        "Headers sent with every export, `key1=value1,key2=value2` with values "
        "percent-encoded, for " +
            scope + ".",
        [connection](Config & c) -> auto& { return connection(c).headers; }, kHeaders));
    add(option(
        key.empty() ? "" : key + "timeout", {{prefix + "TIMEOUT", milliseconds, "milliseconds"}},
        "Longest wait for one export, for " + scope + "; unset: 10s.",
        [connection](Config & c) -> auto& { return connection(c).timeout; },
        DurationCodec{std::chrono::nanoseconds::zero()}));
    add(option(
        key.empty() ? "" : key + "compression", {{prefix + "COMPRESSION"}},
        "`gzip` compresses export requests, for " + scope + ".",
        [connection](Config & c) -> auto& { return connection(c).compression; }, kCompression));
    add(option(
        key.empty() ? "" : key + "certificate", {{prefix + "CERTIFICATE"}},
        "PEM file of the certificate authorities trusted for an https endpoint, for " + scope +
            "; unset: the system's.",
        [connection](Config & c) -> auto& { return connection(c).certificate; }, kString));
}

const std::vector<std::string> kMetricFeatures = {
    "application",         "application_span", "application_service_graph",
    "application_process", "network",          "network_inter_zone",
};

// ---- Discovery selectors

template <typename Codec, typename Field>
SelectorField selector_field(std::string key, std::string help, Field field, Codec codec,
                             Activity activity = Activity::Active) {
    SelectorField spec;
    spec.key = std::move(key);
    spec.type = codec.type();
    spec.help = std::move(help);
    spec.activity = activity;
    spec.apply = [field, codec](Selector& selector, const Value& value) {
        if (auto parsed = codec.parse(value)) {
            field(selector) = std::move(*parsed);
        }
    };
    spec.dump = [field, codec](const Selector& selector) -> std::optional<YAML::Node> {
        const auto& current = field(const_cast<Selector&>(selector));
        if (current == std::decay_t<decltype(current)>{}) {
            return std::nullopt;
        }
        return codec.dump(current);
    };
    return spec;
}

#define SONDE_SELECTOR_FIELD(member) \
    [](Selector & s) -> auto& {      \
        return s.member;             \
    }

std::vector<SelectorField> make_selector_fields() {
    const auto k8s = Activity::NotYet;
    return {
        selector_field("exe_path", "Executable path matches this regex.",
                       SONDE_SELECTOR_FIELD(exe_path), kRegex),
        selector_field("open_ports", "Process listens on (or connects to) one of these ports.",
                       SONDE_SELECTOR_FIELD(open_ports), PortListCodec{}),
        selector_field("name", "Service name given to what this selector matches.",
                       SONDE_SELECTOR_FIELD(service_name), kString),
        selector_field("namespace", "Service namespace given to what this selector matches.",
                       SONDE_SELECTOR_FIELD(service_namespace), kString),
        selector_field("containers_only", "Only processes in a container (own network namespace).",
                       SONDE_SELECTOR_FIELD(containers_only), BoolCodec{}, k8s),
        selector_field("k8s_namespace", "Kubernetes namespace matches.",
                       SONDE_SELECTOR_FIELD(k8s_namespace), kRegex, k8s),
        selector_field("k8s_pod_name", "Pod name matches.", SONDE_SELECTOR_FIELD(k8s_pod_name),
                       kRegex, k8s),
        selector_field("k8s_deployment_name", "Owning Deployment's name matches.",
                       SONDE_SELECTOR_FIELD(k8s_deployment_name), kRegex, k8s),
        selector_field("k8s_replicaset_name", "Owning ReplicaSet's name matches.",
                       SONDE_SELECTOR_FIELD(k8s_replicaset_name), kRegex, k8s),
        selector_field("k8s_statefulset_name", "Owning StatefulSet's name matches.",
                       SONDE_SELECTOR_FIELD(k8s_statefulset_name), kRegex, k8s),
        selector_field("k8s_daemonset_name", "Owning DaemonSet's name matches.",
                       SONDE_SELECTOR_FIELD(k8s_daemonset_name), kRegex, k8s),
        selector_field("k8s_owner_name", "Name of any owner of the pod matches.",
                       SONDE_SELECTOR_FIELD(k8s_owner_name), kRegex, k8s),
        selector_field("k8s_pod_labels", "Every listed pod label exists and its value matches.",
                       SONDE_SELECTOR_FIELD(k8s_pod_labels), RegexMapCodec{}, k8s),
        selector_field("k8s_pod_annotations", "Every listed annotation exists and matches.",
                       SONDE_SELECTOR_FIELD(k8s_pod_annotations), RegexMapCodec{}, k8s),
    };
}

#undef SONDE_SELECTOR_FIELD

bool has_criteria(const Selector& s) {
    Selector only_names;
    only_names.service_name = s.service_name;
    only_names.service_namespace = s.service_namespace;
    only_names.origin = s.origin;
    return !(s == only_names);
}

std::optional<Selector> parse_selector(const YAML::Node& node, const std::string& path,
                                       LoadContext& context) {
    const std::string location = context.location(node.Mark());
    if (!node.IsMap()) {
        context.error(location, path + ": expected a map of criteria (exe_path, open_ports, " +
                                    "k8s_namespace, ...), got " +
                                    (node.IsSequence() ? "a sequence" : "a scalar"));
        return std::nullopt;
    }
    const auto& fields = selector_fields();
    std::vector<std::string> names;
    for (const auto& field : fields) {
        names.push_back(field.key);
    }
    Selector selector;
    selector.origin = location;
    std::set<std::string> seen;
    const size_t errors_before = context.error_count();
    bool ok = true;
    for (auto it = node.begin(); it != node.end(); ++it) {
        if (!context.spend()) {
            return std::nullopt;
        }
        // Copies: the iterator hands out a temporary pair.
        const YAML::Node key = it->first;
        const std::string key_location = context.location(key.Mark());
        if (!key.IsScalar()) {
            context.error(key_location, path + ": keys must be plain strings");
            ok = false;
            continue;
        }
        const std::string& name = key.Scalar();
        if (!seen.insert(name).second) {
            context.error(key_location, path + ": duplicate key " + quote(name));
            ok = false;
            continue;
        }
        const auto field = std::find_if(fields.begin(), fields.end(),
                                        [&](const SelectorField& f) { return f.key == name; });
        if (field == fields.end()) {
            std::string message = path + ": unknown selector key " + quote(name);
            const std::string suggestion = closest_key(name, names);
            if (!suggestion.empty()) {
                message += " (did you mean '" + suggestion + "'?)";
            }
            context.unknown(key_location, message);
            continue;
        }
        if (it->second.IsNull()) {
            continue;
        }
        const YAML::Node value_node = it->second;
        const std::string value_location =
            value_node.Mark().is_null() ? key_location : context.location(value_node.Mark());
        field->apply(selector,
                     Value::from_yaml(value_node, path + "." + name, value_location, context));
    }
    ok = ok && context.error_count() == errors_before;
    if (ok && !has_criteria(selector)) {
        context.error(location, path + ": selector has no criteria (set exe_path, open_ports " +
                                    "or a k8s_* field)");
        ok = false;
    }
    return ok ? std::optional<Selector>(std::move(selector)) : std::nullopt;
}

YAML::Node dump_selectors(const std::vector<Selector>& selectors) {
    if (selectors.empty()) {
        return flow_sequence();
    }
    YAML::Node list(YAML::NodeType::Sequence);
    for (const Selector& selector : selectors) {
        YAML::Node map(YAML::NodeType::Map);
        for (const auto& field : selector_fields()) {
            if (auto node = field.dump(selector)) {
                map[field.key] = *node;
            }
        }
        list.push_back(map);
    }
    return list;
}

template <typename Field>
OptionSpec selector_list(std::string key, std::string help, Field field) {
    OptionSpec spec;
    spec.group = group_of(key);
    spec.key = std::move(key);
    spec.type = "list of selectors";
    spec.help = std::move(help);
    spec.default_note = "`[]`";
    const std::string key_copy = spec.key;
    spec.apply = [field](Config& config, const Value& value) {
        const YAML::Node* node = value.node();
        if (node == nullptr || !node->IsSequence()) {
            value.error("expected a list of selectors, got " + value.kind_name());
            return;
        }
        LoadContext& context = value.context();
        for (size_t i = 0; i < node->size(); ++i) {
            if (!context.spend()) {
                return;
            }
            const std::string path = value.key() + "[" + std::to_string(i) + "]";
            if (auto selector = parse_selector((*node)[i], path, context)) {
                field(config).push_back(std::move(*selector));
            }
        }
    };
    spec.dump = [field](const Config& config) {
        return dump_selectors(field(const_cast<Config&>(config)));
    };
    spec.list_inactive = [field, key_copy](const Config& config, std::vector<std::string>& out) {
        const auto& selectors = field(const_cast<Config&>(config));
        for (size_t i = 0; i < selectors.size(); ++i) {
            for (const auto& f : selector_fields()) {
                if (f.activity == Activity::NotYet && f.dump(selectors[i])) {
                    out.push_back(key_copy + "[" + std::to_string(i) + "]." + f.key);
                }
            }
        }
    };
    return spec;
}

// ---- The table

#define SONDE_FIELD(member)   \
    [](Config & c) -> auto& { \
        return c.member;      \
    }

std::vector<OptionSpec> make_table() {
    const auto later = Activity::NotYet;
    std::vector<OptionSpec> t;

    OptionSpec config_path =
        option("", env("CONFIG_PATH"), "YAML configuration file. The `--config` argument wins.",
               SONDE_FIELD(config_path), kString);
    config_path.loader_handled = true;
    t.push_back(config_path);

    t.push_back(option("open_port", env("OPEN_PORT"),
                       "Instrument processes listening on (or connecting to) these ports and "
                       "ranges, e.g. `80,443,8000-8999`.",
                       SONDE_FIELD(open_port), PortListCodec{}));
    t.push_back(option("executable_name", env("EXECUTABLE_NAME"),
                       "Instrument processes whose executable path matches this RE2 regex.",
                       SONDE_FIELD(executable_name), kRegex));
    t.push_back(option("service_name",
                       env("SERVICE_NAME", {{"OTEL_SERVICE_NAME"},
                                            {"OTEL_RESOURCE_ATTRIBUTES", resource_service_name,
                                             "its `service.name`"}}),
                       "Service name of every instrumented process whose selector has no `name`; "
                       "beats the names discovery finds.",
                       SONDE_FIELD(service_name), kString));
    t.push_back(option(
        "service_namespace",
        env("SERVICE_NAMESPACE",
            {{"OTEL_RESOURCE_ATTRIBUTES", resource_service_namespace, "its `service.namespace`"}}),
        "Service namespace of every instrumented process.", SONDE_FIELD(service_namespace),
        kString));
    t.push_back(option(
        "log_level", env("LOG_LEVEL"), "Verbosity of the agent's own log.", SONDE_FIELD(log_level),
        ChoiceCodec{{"trace", "debug", "info", "warn", "error"}, {{"warning", "warn"}}}));
    t.push_back(option("trace_printer", env("TRACE_PRINTER"),
                       "Print every span on standard output: one text line or one JSON object "
                       "per span. `json_indent` is accepted and printed as `json`.",
                       SONDE_FIELD(trace_printer),
                       ChoiceCodec{{"disabled", "text", "json"}, {{"json_indent", "json"}}}));
    t.push_back(option("capture_bytes", env("CAPTURE_BYTES"),
                       "Payload bytes copied from each socket call for protocol parsing; sizes "
                       "are always counted in full.",
                       SONDE_FIELD(capture_bytes), UnsignedCodec<uint32_t>{64, 4096}));
    t.push_back(option("force_raw_tracepoints", env("FORCE_RAW_TRACEPOINTS"),
                       "Use raw syscall tracepoints even when tracefs is mounted.",
                       SONDE_FIELD(force_raw_tracepoints), BoolCodec{}));
    t.push_back(option("force_helper_reads", env("FORCE_HELPER_READS"),
                       "Read kernel socket fields with one helper call each even where the "
                       "kernel offers `bpf_rdonly_cast` (Linux 6.2+), as older kernels do: for "
                       "comparing the two paths, slower.",
                       SONDE_FIELD(force_helper_reads), BoolCodec{}));
    t.push_back(option("yield_cpu", env("YIELD_CPU"),
                       "Run the thread that drains the kernel's ring buffer at idle CPU "
                       "priority (`SCHED_IDLE`) while it keeps up: it then uses only CPU time "
                       "no other thread wants, and never delays the watched programs. When a "
                       "quarter of the ring is waiting it gets normal priority back until it "
                       "has caught up (less than an eighth of that waiting, and at least "
                       "100 ms). "
                       "Needs `CAP_SYS_NICE` to take normal priority back; without it the "
                       "thread keeps normal priority.",
                       SONDE_FIELD(yield_cpu), BoolCodec{}));
    t.push_back(option("ring_drain_batch", env("RING_DRAIN_BATCH"),
                       "Records the thread that drains the kernel's ring buffer aims to find at "
                       "each drain: it waits this many records' worth of the arrival rate it "
                       "last saw, between 1 ms and 50 ms. Small batches keep each burst of the "
                       "agent's work short, so a request of a watched program that arrives "
                       "during one waits less; every drain costs a wake-up (about 7 µs of CPU). "
                       "While less than 15 % of the host's CPU time is idle (/proc/stat, "
                       "sampled every 250 ms) it drains every 50 ms: at saturation more "
                       "wake-ups only take CPU from the watched programs. `0` drains every "
                       "50 ms whatever the rate: the fewest wake-ups, the longest bursts.",
                       SONDE_FIELD(ring_drain_batch), UnsignedCodec<uint32_t>{0, 1'000'000}));
    t.push_back(option("enforce_sys_caps", env("ENFORCE_SYS_CAPS"),
                       "What a missing Linux capability does at start (`docs/security.md` lists "
                       "each one and why): `true` ends the agent with status 1 and an error "
                       "naming every missing one; `false` logs one warning naming them and runs "
                       "with what still works, and whatever then fails says so in its own error. "
                       "Beyla defaults to `false`; Sonde to `true`, because an agent without "
                       "them runs but reports nothing.",
                       SONDE_FIELD(enforce_sys_caps), BoolCodec{}));
    t.push_back(option("benchmark_kernel_stage", env("BENCHMARK_KERNEL_STAGE"),
                       "For overhead measurement only (`bench/profile_bpf.py --stage`): how far "
                       "each data record gets. `full` is the product; `socket` stops the kernel "
                       "programs once the socket is found, `header` after building the record's "
                       "header, `payload` after copying the payload; `ring` writes the record to "
                       "the ring and the agent drops it as soon as it reads it, unparsed. Short "
                       "of `full`, Sonde reports no request.",
                       SONDE_FIELD(benchmark_kernel_stage),
                       ChoiceCodec{{"full", "socket", "header", "payload", "ring"}, {}}));

    const OptionSpec instrument =
        selector_list("discovery.instrument",
                      "Selectors of processes to instrument: any selector may match, every "
                      "criterion inside one must match.",
                      SONDE_FIELD(discovery.instrument));
    const OptionSpec exclude =
        selector_list("discovery.exclude_instrument",
                      "Selectors of processes never to instrument; they win over `instrument`.",
                      SONDE_FIELD(discovery.exclude_instrument));
    t.push_back(instrument);
    t.push_back(exclude);
    t.push_back(alias("discovery.services", instrument));
    t.push_back(alias("discovery.exclude_services", exclude));

    t.push_back(option("routes.patterns", env("ROUTES_PATTERNS"),
                       "Route patterns such as `/orders/{id}`; a matching path gets the pattern "
                       "as its route.",
                       SONDE_FIELD(routes.patterns),
                       StringListCodec{"list of route patterns", check_route_pattern}));
    t.push_back(option("routes.ignored_patterns", env("ROUTES_IGNORED_PATTERNS"),
                       "Requests whose path (or gRPC method, `/pkg.Service/Method`) matches "
                       "one of these patterns are dropped.",
                       SONDE_FIELD(routes.ignored_patterns),
                       StringListCodec{"list of route patterns", check_route_pattern}));
    t.push_back(option("routes.ignore_mode", env("ROUTES_IGNORE_MODE"),
                       "What `ignored_patterns` drops: metrics, traces, or both (`all`).",
                       SONDE_FIELD(routes.ignore_mode),
                       EnumCodec<IgnoreMode>{{{"metrics", IgnoreMode::Metrics},
                                              {"traces", IgnoreMode::Traces},
                                              {"all", IgnoreMode::All}}}));
    t.push_back(option(
        "routes.unmatched", env("ROUTES_UNMATCHED"),
        "Route of a path no pattern matches: none (`unset`), the raw path, one "
        "wildcard, identifier segments wildcarded (`heuristic`), or heuristic "
        "with a per-segment cap (`low-cardinality`).",
        SONDE_FIELD(routes.unmatched),
        EnumCodec<UnmatchedRoutes>{{{"unset", UnmatchedRoutes::Unset},
                                    {"path", UnmatchedRoutes::Path},
                                    {"wildcard", UnmatchedRoutes::Wildcard},
                                    {"heuristic", UnmatchedRoutes::Heuristic},
                                    {"low-cardinality", UnmatchedRoutes::LowCardinality},
                                    {"low_cardinality", UnmatchedRoutes::LowCardinality, false}}}));
    t.push_back(option("routes.wildcard_char", env("ROUTES_WILDCARD_CHAR"),
                       "Replacement for the path segments the heuristic collapses.",
                       SONDE_FIELD(routes.wildcard_char), CharCodec{}));
    t.push_back(option("routes.max_routes", env("ROUTES_MAX_ROUTES"),
                       "Distinct routes and gRPC methods kept per service; later ones share "
                       "one overflow value (`/**overflow**`, or `_OTHER` for a method) and are "
                       "counted.",
                       SONDE_FIELD(routes.max_routes), UnsignedCodec<uint32_t>{1, 100'000}));
    t.push_back(option(
        "routes.max_path_segment_cardinality", env("ROUTES_MAX_PATH_SEGMENT_CARDINALITY"),
        "Distinct values one path segment may take in `low-cardinality` mode "
        "before it becomes a wildcard.",
        SONDE_FIELD(routes.max_path_segment_cardinality), UnsignedCodec<uint32_t>{1, 10'000}));

    OptionSpec features = option(
        "metrics.features",
        env("METRICS_FEATURES", {{"BEYLA_OTEL_METRICS_FEATURES"}, {"BEYLA_PROMETHEUS_FEATURES"}}),
        "Metric groups to produce. Only `application` (the HTTP and RPC RED metrics) is produced "
        "today.",
        SONDE_FIELD(metrics.features),
        StringListCodec{"list of feature names", nullptr, kMetricFeatures, 16});
    features.list_inactive = [](const Config& config, std::vector<std::string>& out) {
        for (const auto& feature : config.metrics.features) {
            if (feature != "application") {
                out.push_back("metrics.features");
                return;
            }
        }
    };
    t.push_back(option("prometheus_export.port", env("PROMETHEUS_PORT"),
                       "Port of the Prometheus scrape endpoint; 0 turns it off.",
                       SONDE_FIELD(prometheus_export.port), UnsignedCodec<uint16_t>{0, 65535}));
    t.back().default_note = "`0` (off)";
    t.push_back(option("prometheus_export.address", env("PROMETHEUS_ADDRESS"),
                       "Address the Prometheus endpoint binds to.",
                       SONDE_FIELD(prometheus_export.address),
                       TextCodec{"host or IP", check_bind_address}));
    t.push_back(option("prometheus_export.path", env("PROMETHEUS_PATH"),
                       "HTTP path of the Prometheus endpoint.", SONDE_FIELD(prometheus_export.path),
                       TextCodec{"HTTP path", check_http_path}));
    t.push_back(option("prometheus_export.buckets.duration_histogram",
                       env("PROMETHEUS_BUCKETS_DURATION_HISTOGRAM"),
                       "Bucket boundaries (seconds) of the request duration histograms.",
                       SONDE_FIELD(prometheus_export.buckets.duration_histogram), BucketsCodec{}));
    t.push_back(option("prometheus_export.buckets.request_size_histogram",
                       env("PROMETHEUS_BUCKETS_REQUEST_SIZE_HISTOGRAM"),
                       "Bucket boundaries (bytes) of the request body size histograms.",
                       SONDE_FIELD(prometheus_export.buckets.request_size_histogram),
                       BucketsCodec{}));
    t.push_back(option("prometheus_export.buckets.response_size_histogram",
                       env("PROMETHEUS_BUCKETS_RESPONSE_SIZE_HISTOGRAM"),
                       "Bucket boundaries (bytes) of the response body size histograms.",
                       SONDE_FIELD(prometheus_export.buckets.response_size_histogram),
                       BucketsCodec{}));

    t.push_back(alias("prometheus_export.features", features));
    t.push_back(features);

    OptionSpec shared_endpoint =
        option("", {{"OTEL_EXPORTER_OTLP_ENDPOINT"}},
               "OTLP endpoint for both signals when a signal has no endpoint of its own; "
               "`/v1/metrics` or `/v1/traces` is appended for the HTTP protocols.",
               SONDE_FIELD(otlp_shared.endpoint), kEndpoint);
    shared_endpoint.group = "otlp_shared";
    t.push_back(shared_endpoint);
    t.push_back(option("", {{"OTEL_EXPORTER_OTLP_PROTOCOL"}},
                       "OTLP protocol for both signals when a signal has none of its own.",
                       SONDE_FIELD(otlp_shared.protocol), kProtocol));
    t.back().group = "otlp_shared";
    add_otlp_connection_options(t, "", "", SONDE_FIELD(otlp_shared.connection));

    t.push_back(option("otel_metrics_export.endpoint", {{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"}},
                       "OTLP endpoint for metrics, used as is.",
                       SONDE_FIELD(otel_metrics_export.endpoint), kEndpoint));
    t.push_back(option("otel_metrics_export.protocol", {{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"}},
                       "OTLP protocol for metrics; unset: inferred from the port (4317 grpc, "
                       "4318 http/protobuf).",
                       SONDE_FIELD(otel_metrics_export.protocol), kProtocol));
    add_otlp_connection_options(t, "otel_metrics_export", "METRICS",
                                SONDE_FIELD(otel_metrics_export.connection));
    t.push_back(option(
        "otel_metrics_export.interval",
        env("METRICS_INTERVAL", {{"OTEL_METRIC_EXPORT_INTERVAL", milliseconds, "milliseconds"}}),
        "Time between two metric exports.", SONDE_FIELD(otel_metrics_export.interval),
        DurationCodec{}));
    t.push_back(option("otel_metrics_export.temporality",
                       {{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"}},
                       "`cumulative`: every export carries totals since the agent started; "
                       "`delta` (or `lowmemory`): only what changed since the last delivered "
                       "export.",
                       SONDE_FIELD(otel_metrics_export.temporality), kTemporality));
    t.push_back(option("otel_metrics_export.buckets.duration_histogram",
                       env("OTEL_METRICS_BUCKETS_DURATION_HISTOGRAM"),
                       "Bucket boundaries (seconds) of exported duration histograms.",
                       SONDE_FIELD(otel_metrics_export.buckets.duration_histogram),
                       BucketsCodec{}));
    t.push_back(option("otel_metrics_export.buckets.request_size_histogram",
                       env("OTEL_METRICS_BUCKETS_REQUEST_SIZE_HISTOGRAM"),
                       "Bucket boundaries (bytes) of exported request size histograms.",
                       SONDE_FIELD(otel_metrics_export.buckets.request_size_histogram),
                       BucketsCodec{}));
    t.push_back(option("otel_metrics_export.buckets.response_size_histogram",
                       env("OTEL_METRICS_BUCKETS_RESPONSE_SIZE_HISTOGRAM"),
                       "Bucket boundaries (bytes) of exported response size histograms.",
                       SONDE_FIELD(otel_metrics_export.buckets.response_size_histogram),
                       BucketsCodec{}));
    t.push_back(alias("otel_metrics_export.features", features));

    t.push_back(option("otel_traces_export.endpoint", {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}},
                       "OTLP endpoint for spans, used as is.",
                       SONDE_FIELD(otel_traces_export.endpoint), kEndpoint));
    t.push_back(option("otel_traces_export.protocol", {{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"}},
                       "OTLP protocol for spans; unset: inferred from the port.",
                       SONDE_FIELD(otel_traces_export.protocol), kProtocol));
    add_otlp_connection_options(t, "otel_traces_export", "TRACES",
                                SONDE_FIELD(otel_traces_export.connection));
    t.push_back(
        option("otel_traces_export.interval",
               env("TRACES_INTERVAL", {{"OTEL_BSP_SCHEDULE_DELAY", milliseconds, "milliseconds"}}),
               "Longest time a finished span waits before it is sent.",
               SONDE_FIELD(otel_traces_export.interval), DurationCodec{}));
    t.push_back(
        option("otel_traces_export.sampler.name", {{"OTEL_TRACES_SAMPLER"}},
               "Head sampler, as named by the OpenTelemetry specification.",
               SONDE_FIELD(otel_traces_export.sampler.name),
               ChoiceCodec{{"always_on", "always_off", "traceidratio", "parentbased_always_on",
                            "parentbased_always_off", "parentbased_traceidratio"},
                           {}}));
    t.push_back(option("otel_traces_export.sampler.arg", {{"OTEL_TRACES_SAMPLER_ARG"}},
                       "Sampling ratio (0 to 1) of the `traceidratio` samplers; unset means 1.",
                       SONDE_FIELD(otel_traces_export.sampler.arg),
                       TextCodec{"number 0-1", check_sampler_arg}));

    t.push_back(option("attributes.kubernetes.enable", env("KUBE_METADATA_ENABLE"),
                       "Decorate spans and metrics with Kubernetes metadata; `autodetect` turns "
                       "it on when running in a cluster.",
                       SONDE_FIELD(attributes.kubernetes.enable),
                       EnumCodec<KubernetesEnable>{{
                           {"false", KubernetesEnable::False},
                           {"true", KubernetesEnable::True},
                           {"autodetect", KubernetesEnable::Autodetect},
                           {"no", KubernetesEnable::False, false},
                           {"off", KubernetesEnable::False, false},
                           {"0", KubernetesEnable::False, false},
                           {"yes", KubernetesEnable::True, false},
                           {"on", KubernetesEnable::True, false},
                           {"1", KubernetesEnable::True, false},
                       }},
                       later));
    t.push_back(option("attributes.kubernetes.cluster_name", env("KUBE_CLUSTER_NAME"),
                       "Value of `k8s.cluster.name`; inferred where possible when unset.",
                       SONDE_FIELD(attributes.kubernetes.cluster_name), kString, later));

    t.push_back(option("ebpf.context_propagation", env("BPF_CONTEXT_PROPAGATION"),
                       "Propagate trace context between instrumented services: in HTTP headers, "
                       "in TCP options, in IP options, all of them, or not at all.",
                       SONDE_FIELD(ebpf.context_propagation),
                       EnumCodec<ContextPropagation>{{
                           {"disabled", ContextPropagation::Disabled},
                           {"headers", ContextPropagation::Headers},
                           {"tcp", ContextPropagation::Tcp},
                           {"ip", ContextPropagation::Ip},
                           {"all", ContextPropagation::All},
                       }},
                       later));
    return t;
}

#undef SONDE_FIELD

const std::vector<std::string_view> kUnsupportedBeylaKeys = {
    "log_format",
    "shutdown_timeout",
    "channel_buffer_len",
    "auto_target_exe",
    "grafana",
    "network",
    "internal_metrics",
    "filter",
    "name_resolver",
    "javaagent",
    "nodejs",
    "stats",
    "profile_port",
    "discovery.default_exclude_instrument",
    "discovery.default_exclude_services",
    "discovery.exclude_otel_instrumented_services",
    "discovery.skip_go_specific_tracers",
    "discovery.survey",
    "discovery.min_process_age",
    "discovery.poll_interval",
    "routes.max_path_segment_cardinality_per_service",
    "prometheus_export.ttl",
    "prometheus_export.instrumentations",
    "prometheus_export.extra_resource_attributes",
    "prometheus_export.allow_service_graph_self_references",
    "otel_metrics_export.instrumentations",
    "otel_metrics_export.insecure_skip_verify",
    "otel_metrics_export.histogram_aggregation",
    "otel_metrics_export.allow_service_graph_self_references",
    "otel_metrics_export.ttl",
    "otel_traces_export.instrumentations",
    "otel_traces_export.insecure_skip_verify",
    "attributes.select",
    "attributes.instance_id",
    "attributes.host_id",
    "attributes.kubernetes.kubeconfig_path",
    "attributes.kubernetes.informers_sync_timeout",
    "attributes.kubernetes.informers_resync_period",
    "attributes.kubernetes.disable_informers",
    "attributes.kubernetes.meta_restrict_local_node",
    "attributes.kubernetes.meta_cache_address",
    "attributes.kubernetes.resource_labels",
    "ebpf.wakeup_len",
    "ebpf.batch_length",
    "ebpf.batch_timeout",
    "ebpf.track_request_headers",
    "ebpf.enable_context_propagation",
    "ebpf.http_request_timeout",
    "ebpf.high_request_volume",
    "ebpf.heuristic_sql_detect",
    "ebpf.bpf_fs_path",
    "ebpf.stats_wakeup_data_bytes",
};

}  // namespace

const std::vector<OptionSpec>& option_table() {
    static const std::vector<OptionSpec> table = make_table();
    return table;
}

const std::vector<std::string>& section_paths() {
    static const std::vector<std::string> sections = [] {
        std::vector<std::string> out;
        for (const auto& spec : option_table()) {
            size_t dot = spec.key.find('.');
            while (dot != std::string::npos) {
                std::string prefix = spec.key.substr(0, dot);
                if (std::find(out.begin(), out.end(), prefix) == out.end()) {
                    out.push_back(std::move(prefix));
                }
                dot = spec.key.find('.', dot + 1);
            }
        }
        return out;
    }();
    return sections;
}

const std::vector<SelectorField>& selector_fields() {
    static const std::vector<SelectorField> fields = make_selector_fields();
    return fields;
}

bool is_unsupported_beyla_key(std::string_view path) {
    for (const std::string_view key : kUnsupportedBeylaKeys) {
        if (path == key || (path.size() > key.size() && path.substr(0, key.size()) == key &&
                            path[key.size()] == '.')) {
            return true;
        }
    }
    return false;
}

std::string closest_key(std::string_view unknown, const std::vector<std::string>& candidates) {
    const auto last_segment = [](std::string_view path) {
        const size_t dot = path.rfind('.');
        return dot == std::string_view::npos ? path : path.substr(dot + 1);
    };
    std::string best;
    size_t best_score = SIZE_MAX;
    for (const auto& candidate : candidates) {
        size_t score = edit_distance(unknown, candidate);
        // A right name in the wrong section ("port" at the top level).
        if (last_segment(unknown) == last_segment(candidate) && last_segment(unknown).size() > 2) {
            score = std::min<size_t>(score, 1);
        }
        if (score < best_score) {
            best_score = score;
            best = candidate;
        }
    }
    const size_t allowed = std::max<size_t>(2, last_segment(unknown).size() / 3);
    return best_score <= allowed ? best : std::string();
}

std::string yaml_text(const YAML::Node& node) {
    YAML::Emitter out;
    out.SetMapFormat(YAML::Flow);
    out.SetSeqFormat(YAML::Flow);
    out << node;
    return out.c_str();
}

}  // namespace sonde::config::detail
