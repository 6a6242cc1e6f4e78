#include "pipeline/red_metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>
#include <type_traits>
#include <utility>

namespace sonde::pipeline {

namespace {

constexpr char kKeySeparator = '\x1f';
// Method, route and service names come from traced traffic and user
// configuration; a cap keeps one odd value from bloating every scrape.
constexpr size_t kMaxLabelValueBytes = 256;

enum Family : size_t {
    kServerDuration,
    kClientDuration,
    kServerRequestSize,
    kServerResponseSize,
    kClientRequestSize,
    kClientResponseSize,
    kFamilyCount,
};

struct FamilyInfo {
    std::string_view name;
    std::string_view help;
    bool duration;  // which bucket layout it uses
};

// Names follow Beyla's Prometheus exporter so its dashboards work unchanged.
constexpr std::array<FamilyInfo, kFamilyCount> kFamilies = {{
    {"http_server_request_duration_seconds",
     "Duration of HTTP requests handled by instrumented servers, in seconds.", true},
    {"http_client_request_duration_seconds",
     "Duration of HTTP requests made by instrumented clients, in seconds.", true},
    {"http_server_request_body_size_bytes",
     "Size of HTTP request bodies received by instrumented servers, in bytes.", false},
    {"http_server_response_body_size_bytes",
     "Size of HTTP response bodies sent by instrumented servers, in bytes.", false},
    {"http_client_request_body_size_bytes",
     "Size of HTTP request bodies sent by instrumented clients, in bytes.", false},
    {"http_client_response_body_size_bytes",
     "Size of HTTP response bodies received by instrumented clients, in bytes.", false},
}};

constexpr std::array<std::string_view, 8> kLabelNames = {
    "http_request_method", "http_response_status_code",
    "http_route",          "server_address",
    "server_port",         "service_name",
    "service_namespace",   "url_scheme",
};

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

std::string series_key(const Span& span) {
    const NetEndpoint& server = span.server_endpoint();
    const std::string empty;
    const std::string& service_name = span.service ? span.service->service_name : empty;
    const std::string& service_namespace = span.service ? span.service->service_namespace : empty;
    const std::string status = std::to_string(span.status);
    const std::string port = std::to_string(server.port);
    // Same order as kLabelNames.
    const std::array<std::string_view, kLabelNames.size()> values = {
        span.method, status,       span.route,        server.address,
        port,        service_name, service_namespace, span.scheme,
    };
    std::string key;
    for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) {
            key.push_back(kKeySeparator);
        }
        append_label_value(key, values[i]);
    }
    return key;
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

// `{a="x",b="y",` — left open so each sample line can add its own le.
std::string open_label_block(std::string_view key) {
    std::string block = "{";
    size_t begin = 0;
    for (size_t i = 0; i < kLabelNames.size(); ++i) {
        const size_t end = key.find(kKeySeparator, begin);
        block.append(kLabelNames[i]);
        block += "=\"";
        append_escaped(block, key.substr(begin, end == std::string_view::npos ? end : end - begin));
        block += "\",";
        begin = end == std::string_view::npos ? key.size() : end + 1;
    }
    return block;
}

void render_family(std::string& out, const FamilyInfo& family, const std::vector<double>& bounds,
                   std::vector<std::pair<std::string, HistogramData>>& series) {
    if (series.empty()) {
        return;
    }
    // Sorted so successive scrapes diff cleanly and tests can compare text.
    std::sort(series.begin(), series.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
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

RedMetrics::RedMetrics(std::vector<double> duration_buckets, std::vector<double> size_buckets,
                       size_t max_series)
    : duration_buckets_(normalized_bounds(std::move(duration_buckets))),
      size_buckets_(normalized_bounds(std::move(size_buckets))),
      max_series_(max_series) {}

void RedMetrics::record(const Span& span) {
    const bool server = span.kind == SpanKind::Server;
    const Family duration_family = server ? kServerDuration : kClientDuration;
    const Family request_family = server ? kServerRequestSize : kClientRequestSize;
    const Family response_family = server ? kServerResponseSize : kClientResponseSize;
    // Built outside the lock: it is the expensive part of a record.
    std::string key = series_key(span);

    static_assert(std::extent_v<decltype(histograms_)> == kFamilyCount);
    std::lock_guard lock(mutex_);
    auto& durations = histograms_[duration_family];
    auto it = durations.find(key);
    if (it == durations.end()) {
        // A label set is one series per family it lands in, but it always
        // lands in its kind's duration family, so the two duration maps
        // together count the distinct label sets the cap is about.
        if (histograms_[kServerDuration].size() + histograms_[kClientDuration].size() >=
            max_series_) {
            // Counts refused observations: remembering which label sets were
            // refused would itself be the unbounded memory the cap prevents.
            ++dropped_series_;
            return;
        }
        it = durations.try_emplace(key).first;
    }
    observe(it->second, duration_buckets_, span.duration_seconds());
    observe(histograms_[request_family][key], size_buckets_,
            static_cast<double>(span.request_body_bytes));
    observe(histograms_[response_family][std::move(key)], size_buckets_,
            static_cast<double>(span.response_body_bytes));
}

void RedMetrics::render_prometheus(std::string& out) const {
    // Copy under the lock, format outside it: the event loop records while
    // the scrape thread renders, and formatting is the slow part.
    std::array<std::vector<std::pair<std::string, HistogramData>>, kFamilyCount> snapshot;
    {
        std::lock_guard lock(mutex_);
        for (size_t f = 0; f < kFamilyCount; ++f) {
            snapshot[f].assign(histograms_[f].begin(), histograms_[f].end());
        }
    }
    for (size_t f = 0; f < kFamilyCount; ++f) {
        const FamilyInfo& family = kFamilies[f];
        render_family(out, family, family.duration ? duration_buckets_ : size_buckets_,
                      snapshot[f]);
    }
}

uint64_t RedMetrics::dropped_series() const {
    std::lock_guard lock(mutex_);
    return dropped_series_;
}

}  // namespace sonde::pipeline
