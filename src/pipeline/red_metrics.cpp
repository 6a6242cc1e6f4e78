#include "pipeline/red_metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>
#include <system_error>
#include <utility>

namespace sonde::pipeline {

namespace {

constexpr char kKeySeparator = '\x1f';
// Method, route and service names come from traced traffic and user
// configuration; a cap keeps one odd value from bloating every scrape.
constexpr size_t kMaxLabelValueBytes = 256;

constexpr size_t index_of(MetricFamily family) {
    return static_cast<size_t>(family);
}

struct FamilyInfo {
    MetricFamily family;  // pins each row to its index
    std::string_view name;
    std::string_view help;
};

// Names follow Beyla's Prometheus exporter so its dashboards work unchanged.
constexpr std::array<FamilyInfo, kMetricFamilyCount> kFamilies = {{
    {MetricFamily::ServerDuration, "http_server_request_duration_seconds",
     "Duration of HTTP requests handled by instrumented servers, in seconds."},
    {MetricFamily::ClientDuration, "http_client_request_duration_seconds",
     "Duration of HTTP requests made by instrumented clients, in seconds."},
    {MetricFamily::ServerRequestBodySize, "http_server_request_body_size_bytes",
     "Size of HTTP request bodies received by instrumented servers, in bytes."},
    {MetricFamily::ServerResponseBodySize, "http_server_response_body_size_bytes",
     "Size of HTTP response bodies sent by instrumented servers, in bytes."},
    {MetricFamily::ClientRequestBodySize, "http_client_request_body_size_bytes",
     "Size of HTTP request bodies sent by instrumented clients, in bytes."},
    {MetricFamily::ClientResponseBodySize, "http_client_response_body_size_bytes",
     "Size of HTTP response bodies received by instrumented clients, in bytes."},
}};

constexpr bool families_in_enum_order() {
    for (size_t f = 0; f < kFamilies.size(); ++f) {
        if (index_of(kFamilies[f].family) != f) {
            return false;
        }
    }
    return true;
}
static_assert(families_in_enum_order());
static_assert(index_of(MetricFamily::ClientResponseBodySize) + 1 == kMetricFamilyCount);

constexpr std::array<std::string_view, 8> kLabelNames = {
    "http_request_method", "http_response_status_code",
    "http_route",          "server_address",
    "server_port",         "service_name",
    "service_namespace",   "url_scheme",
};
// Positions in a series key, same order as kLabelNames.
enum LabelIndex : size_t {
    kMethodLabel,
    kStatusLabel,
    kRouteLabel,
    kServerAddressLabel,
    kServerPortLabel,
    kServiceNameLabel,
    kServiceNamespaceLabel,
    kUrlSchemeLabel,
};
static_assert(kUrlSchemeLabel + 1 == kLabelNames.size());
using KeyParts = std::array<std::string_view, kLabelNames.size()>;

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

// Writes the key into `key`, reusing its capacity: no allocation per span
// once the buffer has grown to the longest key.
void series_key(const Span& span, std::string& key) {
    const NetEndpoint& server = span.server_endpoint();
    const std::string_view service_name =
        span.service ? std::string_view(span.service->service_name) : std::string_view();
    const std::string_view service_namespace =
        span.service ? std::string_view(span.service->service_namespace) : std::string_view();
    char status[12];
    char port[8];
    const std::string_view status_text(
        status, static_cast<size_t>(std::to_chars(status, status + sizeof status, span.status).ptr -
                                    status));
    const std::string_view port_text(
        port, static_cast<size_t>(std::to_chars(port, port + sizeof port, server.port).ptr - port));
    // Same order as kLabelNames.
    const KeyParts values = {
        span.method, status_text,  span.route,        server.address,
        port_text,   service_name, service_namespace, span.scheme,
    };
    key.clear();
    for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) {
            key.push_back(kKeySeparator);
        }
        append_label_value(key, values[i]);
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
KeyParts split_key(std::string_view key) {
    KeyParts parts;
    size_t begin = 0;
    for (size_t i = 0; i < parts.size() && begin <= key.size(); ++i) {
        const size_t end = std::min(key.find(kKeySeparator, begin), key.size());
        parts[i] = key.substr(begin, end - begin);
        begin = end + 1;
    }
    return parts;
}

// `{a="x",b="y",` — left open so each sample line can add its own le.
std::string open_label_block(std::string_view key) {
    const KeyParts parts = split_key(key);
    std::string block = "{";
    for (size_t i = 0; i < kLabelNames.size(); ++i) {
        block.append(kLabelNames[i]);
        block += "=\"";
        append_escaped(block, parts[i]);
        block += "\",";
    }
    return block;
}

// Status and port went into the key as decimal text; anything else (there is
// no other writer, but the key is just bytes) reads back as 0, "not known".
template <typename Integer>
Integer parse_decimal(std::string_view text) {
    Integer value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        return 0;
    }
    return value;
}

SeriesLabels parse_labels(std::string_view key) {
    const KeyParts parts = split_key(key);
    SeriesLabels labels;
    labels.method = parts[kMethodLabel];
    labels.status = parse_decimal<int>(parts[kStatusLabel]);
    labels.route = parts[kRouteLabel];
    labels.server_address = parts[kServerAddressLabel];
    labels.server_port = parse_decimal<uint32_t>(parts[kServerPortLabel]);
    labels.service_name = parts[kServiceNameLabel];
    labels.service_namespace = parts[kServiceNamespaceLabel];
    labels.url_scheme = parts[kUrlSchemeLabel];
    return labels;
}

// `series` must be sorted by key.
void render_family(std::string& out, const FamilyInfo& family, const std::vector<double>& bounds,
                   const std::vector<std::pair<std::string, HistogramData>>& series) {
    if (series.empty()) {
        return;
    }
    out += "# HELP ";
    out += family.name;
    out += ' ';
    out += family.help;
    out += "\n# TYPE ";
    out += family.name;
    out += " histogram\n";
    for (const auto& [key, histogram] : series) {
        const std::string labels = open_label_block(key);
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= bounds.size(); ++b) {
            cumulative += b < histogram.bucket_counts.size() ? histogram.bucket_counts[b] : 0;
            out += family.name;
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
        out += family.name;
        out += "_sum";
        out += closed;
        out += ' ';
        append_float(out, histogram.sum);
        out += '\n';
        out += family.name;
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
    : duration_buckets_(normalized_bounds(std::move(duration_buckets))),
      request_size_buckets_(normalized_bounds(std::move(request_size_buckets))),
      response_size_buckets_(normalized_bounds(std::move(response_size_buckets))),
      max_series_(max_series) {}

RedMetrics::RedMetrics(std::vector<double> duration_buckets, std::vector<double> size_buckets,
                       size_t max_series)
    : RedMetrics(std::move(duration_buckets), size_buckets, size_buckets, max_series) {}

const std::vector<double>& RedMetrics::bounds_of(MetricFamily family) const {
    switch (family) {
        case MetricFamily::ServerDuration:
        case MetricFamily::ClientDuration:
            return duration_buckets_;
        case MetricFamily::ServerRequestBodySize:
        case MetricFamily::ClientRequestBodySize:
            return request_size_buckets_;
        case MetricFamily::ServerResponseBodySize:
        case MetricFamily::ClientResponseBodySize:
            return response_size_buckets_;
    }
    return duration_buckets_;  // unreachable: the switch covers every family
}

void RedMetrics::record(const Span& span) {
    const size_t kind = span.kind == SpanKind::Server ? kServerSeries : kClientSeries;
    // Built outside the lock: it is the expensive part of a record. One
    // buffer per recording thread, so the hot path does not allocate.
    thread_local std::string key;
    series_key(span, key);

    std::lock_guard lock(mutex_);
    auto& series = series_[kind];
    auto it = series.find(key);
    if (it == series.end()) {
        if (series_[kServerSeries].size() + series_[kClientSeries].size() >= max_series_) {
            // Counts refused observations: remembering which label sets were
            // refused would itself be the unbounded memory the cap prevents.
            ++dropped_series_;
            return;
        }
        it = series.try_emplace(key).first;
    }
    RequestSeries& histograms = it->second;
    observe(histograms.duration, duration_buckets_, span.duration_seconds());
    observe(histograms.request_size, request_size_buckets_,
            static_cast<double>(span.request_body_bytes));
    observe(histograms.response_size, response_size_buckets_,
            static_cast<double>(span.response_body_bytes));
}

std::array<RedMetrics::SeriesList, kMetricFamilyCount> RedMetrics::copy_series() const {
    // Where each family's histogram lives (which kind's map, which member), in
    // MetricFamily order.
    struct Location {
        size_t kind;
        HistogramData RequestSeries::*histogram;
    };
    static constexpr std::array<Location, kMetricFamilyCount> kLocations = {{
        {kServerSeries, &RequestSeries::duration},       // ServerDuration
        {kClientSeries, &RequestSeries::duration},       // ClientDuration
        {kServerSeries, &RequestSeries::request_size},   // ServerRequestBodySize
        {kServerSeries, &RequestSeries::response_size},  // ServerResponseBodySize
        {kClientSeries, &RequestSeries::request_size},   // ClientRequestBodySize
        {kClientSeries, &RequestSeries::response_size},  // ClientResponseBodySize
    }};
    // Copy under the lock, format outside it: the event loop records while
    // the scrape and export threads read, and formatting is the slow part.
    std::array<SeriesList, kMetricFamilyCount> copy;
    {
        std::lock_guard lock(mutex_);
        for (size_t f = 0; f < kMetricFamilyCount; ++f) {
            const Location& where = kLocations[index_of(kFamilies[f].family)];
            const auto& series = series_[where.kind];
            copy[f].reserve(series.size());
            for (const auto& [key, histograms] : series)
                copy[f].emplace_back(key, histograms.*where.histogram);
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
        const FamilyInfo& family = kFamilies[f];
        render_family(out, family, bounds_of(family.family), copy[f]);
    }
}

MetricsSnapshot RedMetrics::snapshot() const {
    auto copy = copy_series();
    MetricsSnapshot snapshot;
    for (size_t f = 0; f < kMetricFamilyCount; ++f) {
        FamilySnapshot& out = snapshot.families[f];
        out.family = kFamilies[f].family;
        out.bounds = bounds_of(out.family);
        out.series.reserve(copy[f].size());
        for (auto& [key, histogram] : copy[f]) {
            // observe() sizes every histogram it touches, so this only
            // restates the invariant consumers index by.
            histogram.bucket_counts.resize(out.bounds.size() + 1, 0);
            SeriesLabels labels = parse_labels(key);
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
