// The option table and what it needs to apply one value. Internal to
// src/config: the rest of Sonde uses config.h.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace sonde::config::detail {

// Problems and environment of one load.
class LoadContext {
public:
    LoadContext(const LoadOptions& options, std::vector<Problem>& problems, std::string file)
        : options_(options), problems_(problems), file_(std::move(file)) {}

    void report(Severity severity, std::string location, std::string message);
    void error(std::string location, std::string message) {
        report(Severity::Error, std::move(location), std::move(message));
    }
    void warning(std::string location, std::string message) {
        report(Severity::Warning, std::move(location), std::move(message));
    }
    // An unknown key or variable: an error under --strict, else a warning.
    void unknown(std::string location, std::string message) {
        report(options_.strict ? Severity::Error : Severity::Warning, std::move(location),
               std::move(message));
    }

    size_t error_count() const { return errors_; }
    const EnvLookup& getenv() const { return options_.getenv; }
    const std::string& file() const { return file_; }
    // "file:line:column" (1-based); just the file when the mark is unknown.
    std::string location(const YAML::Mark& mark) const;

    // Every YAML node visited costs one unit; false once the budget is gone,
    // which bounds the work an aliased or huge document can cause.
    bool spend();
    bool exhausted() const { return budget_ == 0; }

private:
    const LoadOptions& options_;
    std::vector<Problem>& problems_;
    std::string file_;
    size_t errors_ = 0;
    size_t budget_ = 100'000;
};

// One value for an option: a YAML node, or the text of an environment
// variable. Knows its key and location so parsers can report precisely.
class Value {
public:
    static Value from_yaml(const YAML::Node& node, std::string key, std::string location,
                           LoadContext& context);
    static Value from_env(std::string text, std::string key, std::string variable,
                          LoadContext& context);

    const std::string& key() const { return key_; }
    const std::string& location() const { return location_; }
    LoadContext& context() const { return *context_; }
    const YAML::Node* node() const { return node_ ? &*node_ : nullptr; }

    // "<key>: <message>" at this value's location.
    void error(const std::string& message) const;
    void warning(const std::string& message) const;

    // The text of a scalar, `${VAR}` expanded for YAML values. A sequence or a
    // map is reported as "expected <expected>" and gives nullopt.
    std::optional<std::string> scalar(std::string_view expected) const;
    // A YAML sequence of scalars, or a scalar split on commas.
    std::optional<std::vector<Value>> list_items(std::string_view expected) const;

    // "a map", "a sequence", "a scalar", "null".
    std::string kind_name() const;

private:
    Value() = default;
    std::optional<YAML::Node> node_;
    std::string text_;  // when node_ is empty: an environment value, or an item split from one
    std::string key_;
    std::string location_;
    LoadContext* context_ = nullptr;
};

enum class Activity { Active, NotYet };

struct EnvVar {
    std::string name;
    // Turns the variable's text into the option's text; nullopt: this
    // variable does not set the option (e.g. no service.name in
    // OTEL_RESOURCE_ATTRIBUTES). nullptr: the text as is.
    std::optional<std::string> (*extract)(std::string_view raw) = nullptr;
    std::string note;  // shown in the docs after the name
};

struct OptionSpec {
    std::string key;          // YAML path "prometheus_export.port"; empty: environment only
    std::string group;        // docs section: the key's first segment, empty for top level
    std::vector<EnvVar> env;  // in precedence order: the first one set wins
    std::string type;         // for the docs: "port (0-65535)", "duration"
    std::string help;
    Activity activity = Activity::Active;
    std::string alias_of;         // a second YAML name for `alias_of`: not rendered
    std::string default_note;     // replaces the rendered default in the docs
    bool loader_handled = false;  // applied by the loader itself (config_path)

    std::function<void(Config&, const Value&)> apply;
    std::function<YAML::Node(const Config&)> dump;
    // Settings below this option that are set but not active yet; when empty,
    // the option itself is listed if NotYet and not at its default.
    std::function<void(const Config&, std::vector<std::string>&)> list_inactive;
};

// Every option, in documentation order.
const std::vector<OptionSpec>& option_table();

// YAML paths that are maps of options ("prometheus_export",
// "prometheus_export.buckets"), in documentation order.
const std::vector<std::string>& section_paths();

// Fields of one discovery selector.
struct SelectorField {
    std::string key;  // "exe_path"
    std::string type;
    std::string help;
    Activity activity = Activity::Active;
    std::function<void(Selector&, const Value&)> apply;
    std::function<std::optional<YAML::Node>(const Selector&)> dump;  // nullopt: not set
};
const std::vector<SelectorField>& selector_fields();

// Beyla options Sonde recognises but does not implement: a clearer warning
// than "unknown key".
bool is_unsupported_beyla_key(std::string_view path);

// Known key closest to `unknown`, or empty when nothing is close enough.
std::string closest_key(std::string_view unknown, const std::vector<std::string>& candidates);

// A YAML node as one line of YAML text, to compare values and print defaults.
std::string yaml_text(const YAML::Node& node);

}  // namespace sonde::config::detail
