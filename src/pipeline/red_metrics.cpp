#include "pipeline/red_metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

#include "pipeline/span_semantics.h"

namespace sonde::pipeline {

namespace {

constexpr char kKeySeparator = '\x1f';
// Method, route and service names come from traced traffic and user
// configuration; a cap keeps one odd value from bloating every scrape.
constexpr size_t kMaxLabelValueBytes = 256;

constexpr size_t index_of(MetricFamily family) {
    return static_cast<size_t>(family);
}

constexpr bool families_in_enum_order() {
    for (size_t f = 0; f < kMetricFamilies.size(); ++f) {
        if (index_of(kMetricFamilies[f].family) != f) {
            return false;
        }
    }
    return true;
}
static_assert(families_in_enum_order());
static_assert(index_of(MetricFamily::RpcClientDuration) + 1 == kMetricFamilyCount);

constexpr size_t series_map_of(LabelSchema schema, SpanKind kind) {
    return static_cast<size_t>(schema) * 2 + (kind == SpanKind::Server ? 0 : 1);
}

LabelSchema schema_of(const Span& span) {
    return span.rpc ? LabelSchema::Rpc : LabelSchema::Http;
}

// Which measures each series map feeds, derived from the family table so that a family added
// there is recorded without touching record().
constexpr auto kRecordedMeasures = [] {
    std::array<std::array<bool, kMeasureCount>, kLabelSchemaCount * 2> recorded{};
    for (const MetricFamilyInfo& family : kMetricFamilies) {
        recorded[series_map_of(family.schema, family.kind)][static_cast<size_t>(family.measure)] =
            true;
    }
    return recorded;
}();

// Every label any schema uses. The values index kLabels.
enum class Label : uint8_t {
    HttpRequestMethod,
    HttpResponseStatusCode,
    HttpRoute,
    RpcGrpcStatusCode,
    RpcMethod,
    RpcResponseStatusCode,
    RpcSystemName,
    ServerAddress,
    ServerPort,
    ServiceName,
    ServiceNamespace,
    UrlScheme,
};

// Each schema's labels in exposition order: alphabetical, as Beyla's exporter (the Prometheus
// Go client) writes them.
constexpr std::array<Label, 8> kHttpLabels = {
    Label::HttpRequestMethod, Label::HttpResponseStatusCode,
    Label::HttpRoute,         Label::ServerAddress,
    Label::ServerPort,        Label::ServiceName,
    Label::ServiceNamespace,  Label::UrlScheme,
};
constexpr std::array<Label, 8> kRpcLabels = {
    Label::RpcGrpcStatusCode, Label::RpcMethod,        Label::RpcResponseStatusCode,
    Label::RpcSystemName,     Label::ServerAddress,    Label::ServerPort,
    Label::ServiceName,       Label::ServiceNamespace,
};
constexpr size_t kMaxSchemaLabels = std::max(kHttpLabels.size(), kRpcLabels.size());

constexpr std::span<const Label> labels_of(LabelSchema schema) {
    return schema == LabelSchema::Rpc ? std::span<const Label>(kRpcLabels)
                                      : std::span<const Label>(kHttpLabels);
}

// A series key split back into its parts; parts past the schema's label count stay empty.
using KeyParts = std::array<std::string_view, kMaxSchemaLabels>;

// Length of the UTF-8 sequence starting at s[i], or 0 if it is not a valid
// one (overlong forms, surrogates and values past U+10FFFF included), since
// Prometheus rejects a whole scrape over one invalid label value.
size_t utf8_sequence_length(std::string_view s, size_t i) {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char lead = byte(i);
    if (lead < 0x80) {
        return 1;
    }
    size_t length = 0;
    unsigned char min_second = 0x80;
    unsigned char max_second = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) {
            min_second = 0xA0;
        } else if (lead == 0xED) {
            max_second = 0x9F;
        }
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) {
            min_second = 0x90;
        } else if (lead == 0xF4) {
            max_second = 0x8F;
        }
    } else {
        return 0;
    }
    if (i + length > s.size()) {
        return 0;
    }
    if (byte(i + 1) < min_second || byte(i + 1) > max_second) {
        return 0;
    }
    for (size_t k = 2; k < length; ++k) {
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) {
            return 0;
        }
    }
    return length;
}

// Makes a value safe to be both a series key part and a label value:
// invalid UTF-8 and the key separator become U+FFFD. Done before the series
// lookup so two raw values that would render alike share one series instead
// of rendering as a duplicate.
void append_label_value(std::string& key, std::string_view value) {
    static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
    // Nearly every value is short ASCII: taken whole, without decoding.
    if (value.size() <= kMaxLabelValueBytes && std::all_of(value.begin(), value.end(), [](char c) {
            return static_cast<unsigned char>(c) < 0x80 && c != kKeySeparator;
        })) {
        key.append(value);
        return;
    }
    const size_t start = key.size();
    size_t i = 0;
    while (i < value.size()) {
        const size_t length = utf8_sequence_length(value, i);
        const bool replace = length == 0 || value[i] == kKeySeparator;
        const size_t produced = replace ? kReplacement.size() : length;
        if (key.size() - start + produced > kMaxLabelValueBytes) {
            break;  // truncating whole characters keeps the value valid UTF-8
        }
        if (replace) {
            key.append(kReplacement);
            ++i;
        } else {
            key.append(value.substr(i, length));
            i += length;
        }
    }
}

// Decimal text of `value` in `buffer`, for the integer labels.
template <typename Integer>
std::string_view decimal(char (&buffer)[16], Integer value) {
    return std::string_view(
        buffer,
        static_cast<size_t>(std::to_chars(buffer, buffer + sizeof buffer, value).ptr - buffer));
}

// Status and port went into the key as decimal text; anything else (there is no other
// writer, but the key is just bytes) reads back as `fallback`, "not known".
template <typename Integer>
Integer parse_decimal(std::string_view text, Integer fallback = 0) {
    Integer value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        return fallback;
    }
    return value;
}

std::string_view service_name_of(const Span& span) {
    return span.service ? std::string_view(span.service->service_name) : std::string_view();
}

std::string_view service_namespace_of(const Span& span) {
    return span.service ? std::string_view(span.service->service_namespace) : std::string_view();
}

// One row per label: its exposition name, how a span's value goes into a series key, and how
// a key part reads back into SeriesLabels. The value is made a valid label value on the way
// in (append_label_value), so reading back is a plain copy.
struct LabelInfo {
    Label label;  // pins each row to its index
    std::string_view name;
    void (*append)(std::string& key, const Span& span);
    void (*assign)(SeriesLabels& labels, std::string_view part);
};

constexpr std::array<LabelInfo, 12> kLabels = {{
    {Label::HttpRequestMethod, "http_request_method",
     [](std::string& key, const Span& span) { append_label_value(key, span.method); },
     [](SeriesLabels& labels, std::string_view part) { labels.method = part; }},
    {Label::HttpResponseStatusCode, "http_response_status_code",
     [](std::string& key, const Span& span) {
         char buffer[16];
         append_label_value(key, decimal(buffer, span.status));
     },
     [](SeriesLabels& labels, std::string_view part) { labels.status = parse_decimal<int>(part); }},
    {Label::HttpRoute, "http_route",
     [](std::string& key, const Span& span) { append_label_value(key, span.route); },
     [](SeriesLabels& labels, std::string_view part) { labels.route = part; }},
    // No status seen: an empty value, which Prometheus reads as the label being absent
    // ("0" would claim OK).
    {Label::RpcGrpcStatusCode, "rpc_grpc_status_code",
     [](std::string& key, const Span& span) {
         char buffer[16];
         if (span.rpc_status >= 0) append_label_value(key, decimal(buffer, span.rpc_status));
     },
     [](SeriesLabels& labels, std::string_view part) {
         labels.rpc_status = parse_decimal<int>(part, -1);
     }},
    {Label::RpcMethod, "rpc_method",
     [](std::string& key, const Span& span) { append_label_value(key, rpc_method(span)); },
     [](SeriesLabels& labels, std::string_view part) { labels.rpc_method = part; }},
    // grpc_status_text() spelled out without its string: this runs for every span and must
    // not allocate. Derived from the code, so it reads back from RpcGrpcStatusCode alone.
    {Label::RpcResponseStatusCode, "rpc_response_status_code",
     [](std::string& key, const Span& span) {
         if (span.rpc_status < 0) return;
         const std::string_view name = grpc_status_name(span.rpc_status);
         char buffer[16];
         append_label_value(key, name.empty() ? decimal(buffer, span.rpc_status) : name);
     },
     [](SeriesLabels&, std::string_view) {}},
    {Label::RpcSystemName, "rpc_system_name",
     [](std::string& key, const Span&) { append_label_value(key, kRpcSystemGrpc); },
     [](SeriesLabels& labels, std::string_view part) { labels.rpc_system = part; }},
    {Label::ServerAddress, "server_address",
     [](std::string& key, const Span& span) {
         append_label_value(key, span.server_endpoint().address);
     },
     [](SeriesLabels& labels, std::string_view part) { labels.server_address = part; }},
    {Label::ServerPort, "server_port",
     [](std::string& key, const Span& span) {
         char buffer[16];
         append_label_value(key, decimal(buffer, span.server_endpoint().port));
     },
     [](SeriesLabels& labels, std::string_view part) {
         labels.server_port = parse_decimal<uint32_t>(part);
     }},
    {Label::ServiceName, "service_name",
     [](std::string& key, const Span& span) { append_label_value(key, service_name_of(span)); },
     [](SeriesLabels& labels, std::string_view part) { labels.service_name = part; }},
    {Label::ServiceNamespace, "service_namespace",
     [](std::string& key, const Span& span) {
         append_label_value(key, service_namespace_of(span));
     },
     [](SeriesLabels& labels, std::string_view part) { labels.service_namespace = part; }},
    {Label::UrlScheme, "url_scheme",
     [](std::string& key, const Span& span) { append_label_value(key, span.scheme); },
     [](SeriesLabels& labels, std::string_view part) { labels.url_scheme = part; }},
}};

constexpr bool labels_in_enum_order() {
    for (size_t i = 0; i < kLabels.size(); ++i) {
        if (static_cast<size_t>(kLabels[i].label) != i) {
            return false;
        }
    }
    return true;
}
static_assert(labels_in_enum_order());
static_assert(static_cast<size_t>(Label::UrlScheme) + 1 == kLabels.size());

const LabelInfo& info_of(Label label) {
    return kLabels[static_cast<size_t>(label)];
}

// Writes the key into `key`, reusing its capacity: no allocation per span
// once the buffer has grown to the longest key.
void series_key(const Span& span, LabelSchema schema, std::string& key) {
    key.clear();
    bool first = true;
    for (const Label label : labels_of(schema)) {
        if (!first) {
            key.push_back(kKeySeparator);
        }
        first = false;
        info_of(label).append(key, span);
    }
}

void observe(HistogramData& histogram, const std::vector<double>& bounds, double value) {
    if (histogram.bucket_counts.empty()) {
        histogram.bucket_counts.assign(bounds.size() + 1, 0);
    }
    // Prometheus buckets are "less than or equal": a value on a boundary
    // belongs to that boundary's bucket, hence lower_bound.
    const auto it = std::lower_bound(bounds.begin(), bounds.end(), value);
    ++histogram.bucket_counts[static_cast<size_t>(it - bounds.begin())];
    ++histogram.count;
    histogram.sum += value;
}

// Shortest text that reads back as the same double, as Prometheus client
// libraries print bucket bounds ("0.005", "1", "2.5", "1e+06").
void append_float(std::string& out, double value) {
    if (std::isnan(value)) {
        out += "NaN";
        return;
    }
    if (std::isinf(value)) {
        out += value > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, result.ptr);
}

void append_escaped(std::string& out, std::string_view value) {
    for (const char c : value) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out.push_back(c);
        }
    }
}

// The inverse of series_key. Label values never contain the separator
// (append_label_value replaces it), so a key always has exactly one part per
// label; a missing part reads as empty rather than out of range.
KeyParts split_key(std::string_view key, size_t label_count) {
    KeyParts parts;
    size_t begin = 0;
    for (size_t i = 0; i < label_count && begin <= key.size(); ++i) {
        const size_t end = std::min(key.find(kKeySeparator, begin), key.size());
        parts[i] = key.substr(begin, end - begin);
        begin = end + 1;
    }
    return parts;
}

// `{a="x",b="y",` — left open so each sample line can add its own le.
std::string open_label_block(std::string_view key, LabelSchema schema) {
    const std::span<const Label> labels = labels_of(schema);
    const KeyParts parts = split_key(key, labels.size());
    std::string block = "{";
    for (size_t i = 0; i < labels.size(); ++i) {
        block.append(info_of(labels[i]).name);
        block += "=\"";
        append_escaped(block, parts[i]);
        block += "\",";
    }
    return block;
}

SeriesLabels parse_labels(std::string_view key, LabelSchema schema) {
    const std::span<const Label> labels = labels_of(schema);
    const KeyParts parts = split_key(key, labels.size());
    SeriesLabels out;
    for (size_t i = 0; i < labels.size(); ++i) {
        info_of(labels[i]).assign(out, parts[i]);
    }
    return out;
}

// `series` must be sorted by key.
void render_family(std::string& out, const MetricFamilyInfo& family,
                   const std::vector<double>& bounds,
                   const std::vector<std::pair<std::string, HistogramData>>& series) {
    if (series.empty()) {
        return;
    }
    const std::string_view name = family.prometheus_name;
    out += "# HELP ";
    out += name;
    out += ' ';
    out += family.help;
    out += "\n# TYPE ";
    out += name;
    out += " histogram\n";
    for (const auto& [key, histogram] : series) {
        const std::string labels = open_label_block(key, family.schema);
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= bounds.size(); ++b) {
            cumulative += b < histogram.bucket_counts.size() ? histogram.bucket_counts[b] : 0;
            out += name;
            out += "_bucket";
            out += labels;
            out += "le=\"";
            append_float(out,
                         b < bounds.size() ? bounds[b] : std::numeric_limits<double>::infinity());
            out += "\"} ";
            out += std::to_string(cumulative);
            out += '\n';
        }
        std::string closed = labels;
        closed.back() = '}';
        out += name;
        out += "_sum";
        out += closed;
        out += ' ';
        append_float(out, histogram.sum);
        out += '\n';
        out += name;
        out += "_count";
        out += closed;
        out += ' ';
        out += std::to_string(histogram.count);
        out += '\n';
    }
}

// Bounds must ascend and be finite for lower_bound and for a valid exposition
// (+Inf is always added by the renderer).
std::vector<double> normalized_bounds(std::vector<double> bounds) {
    bounds.erase(
        std::remove_if(bounds.begin(), bounds.end(), [](double b) { return !std::isfinite(b); }),
        bounds.end());
    std::sort(bounds.begin(), bounds.end());
    bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
    return bounds;
}

}  // namespace

std::vector<double> default_duration_buckets() {
    return {0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};
}

std::vector<double> default_size_buckets() {
    return {0, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
}

RedMetrics::RedMetrics(std::vector<double> duration_buckets,
                       std::vector<double> request_size_buckets,
                       std::vector<double> response_size_buckets, size_t max_series)
    : bounds_{normalized_bounds(std::move(duration_buckets)),
              normalized_bounds(std::move(request_size_buckets)),
              normalized_bounds(std::move(response_size_buckets))},
      max_series_(max_series) {
    static_assert(static_cast<size_t>(Measure::Duration) == 0 &&
                  static_cast<size_t>(Measure::RequestBodySize) == 1 &&
                  static_cast<size_t>(Measure::ResponseBodySize) == 2);
}

RedMetrics::RedMetrics(std::vector<double> duration_buckets, std::vector<double> size_buckets,
                       size_t max_series)
    : RedMetrics(std::move(duration_buckets), size_buckets, size_buckets, max_series) {}

const std::vector<double>& RedMetrics::bounds_of(MetricFamily family) const {
    return bounds_[static_cast<size_t>(metric_family_info(family).measure)];
}

bool RedMetrics::record(const Span& span) {
    const LabelSchema schema = schema_of(span);
    const size_t map = series_map_of(schema, span.kind);
    // Built outside the lock: it is the expensive part of a record. One
    // buffer per recording thread, so the hot path does not allocate.
    thread_local std::string key;
    series_key(span, schema, key);
    const std::array<double, kMeasureCount> values = {
        span.duration_seconds(),
        static_cast<double>(span.request_body_bytes),
        static_cast<double>(span.response_body_bytes),
    };

    std::lock_guard lock(mutex_);
    auto& series = series_[map];
    auto it = series.find(key);
    if (it == series.end()) {
        if (series_count_ >= max_series_) {
            // Counts refused observations: remembering which label sets were
            // refused would itself be the unbounded memory the cap prevents.
            ++dropped_series_;
            return false;
        }
        it = series.try_emplace(key).first;
        ++series_count_;
    }
    Series& histograms = it->second;
    for (size_t m = 0; m < kMeasureCount; ++m) {
        if (kRecordedMeasures[map][m]) {
            observe(histograms.histograms[m], bounds_[m], values[m]);
        }
    }
    return true;
}

std::array<RedMetrics::SeriesList, kMetricFamilyCount> RedMetrics::copy_series() const {
    // Copy under the lock, format outside it: the event loop records while
    // the scrape and export threads read, and formatting is the slow part.
    std::array<SeriesList, kMetricFamilyCount> copy;
    {
        std::lock_guard lock(mutex_);
        for (size_t f = 0; f < kMetricFamilyCount; ++f) {
            const MetricFamilyInfo& family = kMetricFamilies[f];
            const auto& series = series_[series_map_of(family.schema, family.kind)];
            const size_t measure = static_cast<size_t>(family.measure);
            copy[f].reserve(series.size());
            for (const auto& [key, histograms] : series)
                copy[f].emplace_back(key, histograms.histograms[measure]);
        }
    }
    // Sorted so successive scrapes diff cleanly, snapshots line up series by
    // series, and tests can compare text.
    for (auto& series : copy) {
        std::sort(series.begin(), series.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
    }
    return copy;
}

void RedMetrics::render_prometheus(std::string& out) const {
    auto copy = copy_series();
    for (size_t f = 0; f < kMetricFamilyCount; ++f) {
        const MetricFamilyInfo& family = kMetricFamilies[f];
        render_family(out, family, bounds_of(family.family), copy[f]);
    }
}

MetricsSnapshot RedMetrics::snapshot() const {
    auto copy = copy_series();
    MetricsSnapshot snapshot;
    for (size_t f = 0; f < kMetricFamilyCount; ++f) {
        const MetricFamilyInfo& family = kMetricFamilies[f];
        FamilySnapshot& out = snapshot.families[f];
        out.family = family.family;
        out.bounds = bounds_of(out.family);
        out.series.reserve(copy[f].size());
        for (auto& [key, histogram] : copy[f]) {
            // observe() sizes every histogram it touches, so this only
            // restates the invariant consumers index by.
            histogram.bucket_counts.resize(out.bounds.size() + 1, 0);
            SeriesLabels labels = parse_labels(key, family.schema);
            out.series.push_back({std::move(key), std::move(labels), std::move(histogram)});
        }
    }
    return snapshot;
}

uint64_t RedMetrics::dropped_series() const {
    std::lock_guard lock(mutex_);
    return dropped_series_;
}

}  // namespace sonde::pipeline
