// Loading: defaults, then the YAML file, then the environment, each value
// checked by its option's codec. Malformed input of any kind ends as a
// Problem; nothing here throws to the caller.
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <sstream>

#include "config/options.h"
#include "config/value_parsers.h"

namespace sonde::config {

namespace {

// How problems name what was found where something else was expected.
std::string kind_of(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Sequence:
            return "a sequence";
        case YAML::NodeType::Scalar:
            return "a scalar";
        default:
            return "null";
    }
}

}  // namespace

namespace detail {

namespace {

// Problems are printed as single log lines: control characters in a message
// (from a quoted YAML value or a library's error text) are escaped.
std::string one_line(std::string text) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            out += "\\x";
            out.push_back(kHex[byte >> 4]);
            out.push_back(kHex[byte & 0xf]);
        } else {
            out.push_back(c);
        }
    }
    return out;
}

}  // namespace

void LoadContext::report(Severity severity, std::string location, std::string message) {
    if (severity == Severity::Error) {
        ++errors_;
    }
    problems_.push_back({severity, one_line(std::move(location)), one_line(std::move(message))});
}

std::string LoadContext::location(const YAML::Mark& mark) const {
    if (mark.is_null() || mark.line < 0) {
        return file_;
    }
    return file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

bool LoadContext::spend() {
    if (budget_ == 0) {
        return false;
    }
    if (--budget_ == 0) {
        error(file_, "more than 100000 YAML nodes; the rest of the file is ignored");
        return false;
    }
    return true;
}

Value Value::from_yaml(const YAML::Node& node, std::string key, std::string location,
                       LoadContext& context) {
    Value value;
    value.node_ = node;
    value.key_ = std::move(key);
    value.location_ = std::move(location);
    value.context_ = &context;
    return value;
}

Value Value::from_env(std::string text, std::string key, std::string variable,
                      LoadContext& context) {
    Value value;
    value.text_ = std::move(text);
    value.key_ = std::move(key);
    value.location_ = "env " + variable;
    value.context_ = &context;
    return value;
}

void Value::error(const std::string& message) const {
    context_->error(location_, key_ + ": " + message);
}

void Value::warning(const std::string& message) const {
    context_->warning(location_, key_ + ": " + message);
}

std::string Value::kind_name() const {
    return node_ ? kind_of(*node_) : "a scalar";
}

std::optional<std::string> Value::scalar(std::string_view expected) const {
    if (!node_) {
        return text_;
    }
    if (node_->IsNull()) {
        return std::string();
    }
    if (!node_->IsScalar()) {
        error("expected " + std::string(expected) + ", got " + kind_name());
        return std::nullopt;
    }
    Expansion expanded = expand_variables(node_->Scalar(), context_->getenv());
    if (!expanded.error.empty()) {
        error(expanded.error);
        return std::nullopt;
    }
    for (const auto& name : expanded.unset) {
        warning("${" + name + "} is not set; it expands to an empty string");
    }
    return std::move(expanded.text);
}

std::optional<std::vector<Value>> Value::list_items(std::string_view expected) const {
    std::vector<Value> items;
    const auto split = [&](const std::string& text) {
        const auto parts = split_list(text);
        for (size_t i = 0; i < parts.size(); ++i) {
            Value item;
            item.text_ = parts[i];
            item.key_ = key_ + "[" + std::to_string(i) + "]";
            item.location_ = location_;
            item.context_ = context_;
            items.push_back(std::move(item));
        }
    };
    if (!node_ || node_->IsScalar()) {
        auto text = scalar(expected);
        if (!text) {
            return std::nullopt;
        }
        split(*text);
        return items;
    }
    if (node_->IsNull()) {
        return items;
    }
    if (!node_->IsSequence()) {
        error("expected " + std::string(expected) + ", got " + kind_name());
        return std::nullopt;
    }
    for (size_t i = 0; i < node_->size(); ++i) {
        if (!context_->spend()) {
            return std::nullopt;
        }
        const YAML::Node item = (*node_)[i];
        const std::string location =
            item.Mark().is_null() ? location_ : context_->location(item.Mark());
        items.push_back(from_yaml(item, key_ + "[" + std::to_string(i) + "]", location, *context_));
    }
    return items;
}

}  // namespace detail

namespace {

using detail::LoadContext;
using detail::OptionSpec;
using detail::Value;

const OptionSpec* find_option(std::string_view key) {
    for (const auto& spec : detail::option_table()) {
        if (!spec.key.empty() && spec.key == key) {
            return &spec;
        }
    }
    return nullptr;
}

bool is_section(std::string_view path) {
    const auto& sections = detail::section_paths();
    return std::find(sections.begin(), sections.end(), path) != sections.end();
}

std::string section_children(const std::string& section) {
    std::vector<std::string> children;
    const std::string prefix = section + ".";
    for (const auto& spec : detail::option_table()) {
        if (spec.key.compare(0, prefix.size(), prefix) != 0) {
            continue;
        }
        std::string child = spec.key.substr(prefix.size());
        child = child.substr(0, child.find('.'));
        if (std::find(children.begin(), children.end(), child) == children.end()) {
            children.push_back(child);
        }
    }
    std::string out;
    for (const auto& child : children) {
        out += (out.empty() ? "" : ", ") + child;
    }
    return out;
}

const std::vector<std::string>& known_paths() {
    static const std::vector<std::string> paths = [] {
        std::vector<std::string> out;
        for (const auto& spec : detail::option_table()) {
            if (!spec.key.empty()) {
                out.push_back(spec.key);
            }
        }
        const auto& sections = detail::section_paths();
        out.insert(out.end(), sections.begin(), sections.end());
        return out;
    }();
    return paths;
}

void report_unknown_key(const std::string& path, const std::string& location,
                        LoadContext& context) {
    if (detail::is_unsupported_beyla_key(path)) {
        context.unknown(location, "Beyla option " + detail::quote(path) +
                                      " is not supported by Sonde and is ignored");
        return;
    }
    std::string message = "unknown key " + detail::quote(path);
    const std::string suggestion = detail::closest_key(path, known_paths());
    if (!suggestion.empty()) {
        message += " (did you mean '" + suggestion + "'?)";
    }
    context.unknown(location, message);
}

void walk_map(const YAML::Node& map, const std::string& prefix, Config& config,
              LoadContext& context) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!context.spend()) {
            return;
        }
        // Copies: the iterator hands out a temporary pair.
        const YAML::Node key = it->first;
        const YAML::Node value = it->second;
        const std::string key_location = context.location(key.Mark());
        if (!key.IsScalar()) {
            context.error(key_location, (prefix.empty() ? std::string("top level") : prefix) +
                                            ": keys must be plain strings, got " + kind_of(key));
            continue;
        }
        const std::string path = prefix.empty() ? key.Scalar() : prefix + "." + key.Scalar();
        if (!seen.insert(key.Scalar()).second) {
            context.error(key_location, "duplicate key " + detail::quote(path));
            continue;
        }
        const std::string value_location =
            value.Mark().is_null() ? key_location : context.location(value.Mark());
        if (const OptionSpec* spec = find_option(path)) {
            if (!value.IsNull()) {
                spec->apply(config, Value::from_yaml(value, path, value_location, context));
            }
            continue;
        }
        if (is_section(path)) {
            if (value.IsNull()) {
                continue;
            }
            if (!value.IsMap()) {
                context.error(value_location, path + ": expected a map with keys " +
                                                  section_children(path) + ", got " +
                                                  kind_of(value));
                continue;
            }
            walk_map(value, path, config, context);
            continue;
        }
        report_unknown_key(path, key_location, context);
    }
}

// Position of the first byte that cannot be in a YAML text file: NUL and
// other C0 controls (tab, LF and CR aside), DEL, or malformed UTF-8.
struct BadByte {
    size_t offset;
    std::string what;
};

std::optional<BadByte> find_bad_byte(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte < 0x80) {
            if ((byte < 0x20 && byte != '\t' && byte != '\n' && byte != '\r') || byte == 0x7f) {
                return BadByte{i, byte == 0 ? "NUL byte" : "control character"};
            }
            ++i;
            continue;
        }
        size_t length = 0;
        uint32_t code = 0;
        if ((byte & 0xe0) == 0xc0) {
            length = 2;
            code = byte & 0x1f;
        } else if ((byte & 0xf0) == 0xe0) {
            length = 3;
            code = byte & 0x0f;
        } else if ((byte & 0xf8) == 0xf0) {
            length = 4;
            code = byte & 0x07;
        } else {
            return BadByte{i, "invalid UTF-8"};
        }
        if (i + length > text.size()) {
            return BadByte{i, "invalid UTF-8"};
        }
        for (size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xc0) != 0x80) {
                return BadByte{i, "invalid UTF-8"};
            }
            code = (code << 6) | (next & 0x3f);
        }
        const uint32_t min_code = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
        if (code < min_code || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
            return BadByte{i, "invalid UTF-8"};
        }
        i += length;
    }
    return std::nullopt;
}

std::string line_column(std::string_view text, size_t offset) {
    size_t line = 1;
    size_t column = 1;
    for (size_t i = 0; i < offset && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return std::to_string(line) + ":" + std::to_string(column);
}

// yaml-cpp parses flow collections recursively and only stops at 2000 levels
// with an unhelpful message; no configuration nests more than a few levels.
// Counts '[' and '{' outside quotes and comments; brackets inside plain
// scalars ("foo[0-9]") are counted too, which only matters past the limit.
constexpr size_t kMaxFlowDepth = 64;

std::optional<size_t> find_deep_nesting(std::string_view text) {
    size_t depth = 0;
    char quote_char = 0;
    bool comment = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (comment) {
            comment = c != '\n';
            continue;
        }
        if (quote_char != 0) {
            if (quote_char == '"' && c == '\\') {
                ++i;
            } else if (c == quote_char) {
                quote_char = 0;
            }
            continue;
        }
        if (c == '#' &&
            (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n')) {
            comment = true;
        } else if (c == '"' || c == '\'') {
            quote_char = c;
        } else if (c == '[' || c == '{') {
            if (++depth > kMaxFlowDepth) {
                return i;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return std::nullopt;
}

// YAML forbids tabs in indentation; yaml-cpp's message does not say so.
std::string tab_hint(std::string_view text, int error_line) {
    size_t line = 1;
    size_t start = 0;
    while (start <= text.size() && static_cast<int>(line) <= error_line + 1) {
        for (size_t i = start; i < text.size() && (text[i] == ' ' || text[i] == '\t'); ++i) {
            if (text[i] == '\t') {
                return " (line " + std::to_string(line) +
                       " is indented with a tab; YAML allows only spaces)";
            }
        }
        const size_t newline = text.find('\n', start);
        if (newline == std::string_view::npos) {
            break;
        }
        start = newline + 1;
        ++line;
    }
    return "";
}

// Notes whether a document has any content, and where it starts.
class ContentProbe : public YAML::EventHandler {
public:
    bool has_content() const { return first_.has_value(); }
    const YAML::Mark& first() const { return *first_; }

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { note(mark); }
    void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  const std::string&) override {
        note(mark);
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
        note(mark);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {
        note(mark);
    }
    void OnMapEnd() override {}

private:
    void note(const YAML::Mark& mark) {
        if (!first_) {
            first_ = mark;
        }
    }
    std::optional<YAML::Mark> first_;
};

// A line starting with "---" or "...", which separates YAML documents.
bool has_document_marker(std::string_view text) {
    size_t start = 0;
    while (start < text.size()) {
        const std::string_view line = text.substr(start, 3);
        if (line == "---" || line == "...") {
            return true;
        }
        const size_t newline = text.find('\n', start);
        if (newline == std::string_view::npos) {
            break;
        }
        start = newline + 1;
    }
    return false;
}

// Where a second, non-empty document starts, if there is one. Reads at most
// two documents, so yaml-cpp's endless stream of empty documents on some
// malformed input cannot hold it.
std::optional<YAML::Mark> find_second_document(std::string_view text) {
    std::istringstream stream{std::string(text)};
    YAML::Parser parser(stream);
    ContentProbe first;
    if (!parser.HandleNextDocument(first)) {
        return std::nullopt;
    }
    ContentProbe second;
    if (parser.HandleNextDocument(second) && second.has_content()) {
        return second.first();
    }
    return std::nullopt;
}

void apply_text(std::string_view text, Config& config, LoadContext& context) {
    const std::string& name = context.file();
    if (text.size() > kMaxConfigFileBytes) {
        context.error(
            name, "configuration is larger than 1 MiB (" + std::to_string(text.size()) + " bytes)");
        return;
    }
    if (const auto bad = find_bad_byte(text)) {
        context.error(name + ":" + line_column(text, bad->offset),
                      "not a YAML text file: " + bad->what);
        return;
    }
    if (const auto deep = find_deep_nesting(text)) {
        context.error(name + ":" + line_column(text, *deep),
                      "YAML nested more than " + std::to_string(kMaxFlowDepth) + " levels deep");
        return;
    }
    YAML::Node root;
    std::optional<YAML::Mark> second_document;
    try {
        // Not YAML::LoadAll: yaml-cpp 0.7 can loop forever in it on malformed
        // input (jbeder/yaml-cpp#1319). Load reads the first document only.
        root = YAML::Load(std::string(text));
        second_document = find_second_document(text);
    } catch (const YAML::DeepRecursion& e) {
        context.error(context.location(e.mark), "YAML nested too deeply");
        return;
    } catch (const YAML::Exception& e) {
        context.error(context.location(e.mark),
                      "YAML syntax error: " + e.msg + tab_hint(text, e.mark.line + 1));
        return;
    } catch (const std::exception& e) {
        context.error(name, std::string("cannot parse YAML: ") + e.what());
        return;
    }
    if (second_document) {
        context.error(context.location(*second_document),
                      has_document_marker(text)
                          ? "more than one YAML document ('---'); put every setting in one"
                          : "YAML syntax error: unexpected text after the end of the document");
        return;
    }
    if (root.IsNull()) {
        return;  // empty file, or only comments: every default stands
    }
    if (!root.IsMap()) {
        context.error(context.location(root.Mark()),
                      "the top level must be a map of settings, got " + kind_of(root));
        return;
    }
    try {
        walk_map(root, "", config, context);
    } catch (const YAML::Exception& e) {
        context.error(context.location(e.mark), "unreadable YAML: " + e.msg);
    }
}

const char* lookup(const LoadOptions& options, const std::string& name) {
    return options.getenv ? options.getenv(name.c_str()) : nullptr;
}

void apply_environment(Config& config, const LoadOptions& options, LoadContext& context) {
    for (const auto& spec : detail::option_table()) {
        if (spec.loader_handled) {
            continue;
        }
        for (const auto& var : spec.env) {
            const char* raw = lookup(options, var.name);
            if (raw == nullptr || *raw == '\0') {
                continue;
            }
            const std::optional<std::string> text =
                var.extract != nullptr ? var.extract(raw) : std::optional<std::string>(raw);
            if (!text) {
                continue;
            }
            spec.apply(config, Value::from_env(*text, spec.key.empty() ? var.name : spec.key,
                                               var.name, context));
            break;
        }
    }
}

// Misspelled SONDE_* variables, and BEYLA_* ones Sonde does not read. Beyla
// has many variables Sonde does not implement, so those stay warnings even
// under --strict, and only a near miss (a typo) gets a suggestion.
void check_environment_names(const LoadOptions& options, LoadContext& context) {
    std::vector<std::string> known;
    for (const auto& spec : detail::option_table()) {
        for (const auto& var : spec.env) {
            known.push_back(var.name);
        }
    }
    for (const auto& name : options.environment_names) {
        const bool sonde = name.rfind("SONDE_", 0) == 0;
        const bool beyla = name.rfind("BEYLA_", 0) == 0;
        if ((!sonde && !beyla) || std::find(known.begin(), known.end(), name) != known.end()) {
            continue;
        }
        std::string suggestion;
        size_t best = 3;  // typos only
        for (const auto& candidate : known) {
            const size_t distance = detail::edit_distance(name, candidate);
            if (distance < best) {
                best = distance;
                suggestion = candidate;
            }
        }
        const std::string location = "env " + name;
        if (sonde) {
            context.unknown(
                location,
                "unknown variable " + name +
                    (suggestion.empty() ? std::string() : " (did you mean " + suggestion + "?)"));
        } else if (!suggestion.empty()) {
            context.warning(location,
                            "unknown variable " + name + " (did you mean " + suggestion + "?)");
        } else {
            context.warning(location,
                            "Beyla variable " + name + " is not supported by Sonde and is ignored");
        }
    }
}

bool read_file_from_disk(const std::string& path, std::string& out, std::string& error) {
    std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) {
        error = std::strerror(errno);
        return false;
    }
    out.clear();
    char buffer[65536];
    while (out.size() <= kMaxConfigFileBytes) {
        const size_t n = std::fread(buffer, 1, sizeof buffer, file.get());
        out.append(buffer, n);
        if (n < sizeof buffer) {
            break;
        }
    }
    if (std::ferror(file.get())) {
        error = std::strerror(errno);
        return false;
    }
    return true;
}

}  // namespace

std::string Problem::to_string() const {
    return std::string(severity == Severity::Error ? "error: " : "warning: ") + location + ": " +
           message;
}

bool LoadResult::ok() const {
    return std::none_of(problems.begin(), problems.end(),
                        [](const Problem& p) { return p.severity == Severity::Error; });
}

std::vector<std::string> LoadResult::errors() const {
    std::vector<std::string> out;
    for (const auto& problem : problems) {
        if (problem.severity == Severity::Error) {
            out.push_back(problem.to_string());
        }
    }
    return out;
}

LoadOptions process_load_options() {
    LoadOptions options;
    options.getenv = [](const char* name) -> const char* { return std::getenv(name); };
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view text(*entry);
        options.environment_names.emplace_back(text.substr(0, text.find('=')));
    }
    return options;
}

LoadResult load(const LoadOptions& options) {
    LoadResult result;
    std::string path = options.config_path;
    for (const char* var : {"SONDE_CONFIG_PATH", "BEYLA_CONFIG_PATH"}) {
        if (!path.empty()) {
            break;
        }
        if (const char* value = lookup(options, var)) {
            path = value;
        }
    }
    LoadContext context(options, result.problems, path);
    if (!path.empty()) {
        std::string text;
        std::string error;
        const FileReader& reader = options.read_file ? options.read_file : read_file_from_disk;
        if (reader(path, text, error)) {
            apply_text(text, result.config, context);
        } else {
            context.error(path, "cannot read the configuration file: " + error);
        }
    }
    apply_environment(result.config, options, context);
    check_environment_names(options, context);
    result.config.config_path = path;
    return result;
}

LoadResult load_from_text(std::string_view yaml_text, std::string_view source_name,
                          const LoadOptions& options) {
    LoadResult result;
    LoadContext context(options, result.problems, std::string(source_name));
    apply_text(yaml_text, result.config, context);
    apply_environment(result.config, options, context);
    check_environment_names(options, context);
    return result;
}

}  // namespace sonde::config
