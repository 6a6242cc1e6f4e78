#include "export/printer/span_printer.h"

#include <cinttypes>
#include <ctime>
#include <nlohmann/json.hpp>

#include "pipeline/span_semantics.h"
#include "pipeline/trace_context.h"

namespace sonde::exporter {

namespace {

using pipeline::NetEndpoint;
using pipeline::Span;
using pipeline::SpanKind;

uint64_t duration_ns(const Span& span) {
    return span.end_mono_ns > span.start_mono_ns ? span.end_mono_ns - span.start_mono_ns : 0;
}

// Traced bytes may hold anything; escaping blanks and control bytes keeps a
// span on one line and its fields split on spaces. The backslash is escaped
// too, so an escape in the output always came from this function.
void append_field(std::string& out, std::string_view value) {
    if (value.empty()) {
        out += '-';
        return;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    for (const char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte == 0x7f || c == '\\') {
            out += "\\x";
            out += kHex[byte >> 4];
            out += kHex[byte & 0xf];
        } else {
            out += c;
        }
    }
}

void append_endpoint(std::string& out, const NetEndpoint& endpoint) {
    const bool ipv6 = endpoint.address.find(':') != std::string::npos;
    if (ipv6) {
        out += '[';
    }
    append_field(out, endpoint.address);
    if (ipv6) {
        out += ']';
    }
    out += ':';
    out += std::to_string(endpoint.port);
}

// RFC 3339 in UTC with microseconds: sortable, and precise enough to line
// spans up with application logs.
void append_timestamp(std::string& out, uint64_t unix_ns) {
    const auto seconds = static_cast<std::time_t>(unix_ns / 1'000'000'000);
    const auto micros = static_cast<unsigned>(unix_ns % 1'000'000'000 / 1'000);
    std::tm parts{};
    char buffer[64];
    if (gmtime_r(&seconds, &parts) == nullptr ||
        std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &parts) == 0) {
        out += "0000-00-00T00:00:00";  // unreachable for 64-bit nanoseconds
    } else {
        out += buffer;
    }
    std::snprintf(buffer, sizeof buffer, ".%06uZ", micros);
    out += buffer;
}

void append_duration_ms(std::string& out, uint64_t ns) {
    char buffer[48];
    std::snprintf(buffer, sizeof buffer, "%" PRIu64 ".%03" PRIu64 "ms", ns / 1'000'000,
                  ns % 1'000'000 / 1'000);
    out += buffer;
}

}  // namespace

std::optional<PrinterMode> parse_printer_mode(std::string_view value) {
    std::string lowered(value);
    for (char& c : lowered) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    if (lowered == "disabled") {
        return PrinterMode::Disabled;
    }
    if (lowered == "text") {
        return PrinterMode::Text;
    }
    if (lowered == "json") {
        return PrinterMode::Json;
    }
    return std::nullopt;
}

// Headers and the traceparent are deliberately absent from both formats:
// they can carry credentials, and stdout often ends up in shared log stores.
std::string format_span_text(const Span& span) {
    const pipeline::ServiceIdentity* service = span.service.get();
    std::string out;
    out.reserve(256);
    append_timestamp(out, span.start_unix_ns);
    out += span.kind == SpanKind::Server ? " SERVER" : " CLIENT";
    out += " pid=";
    out += std::to_string(service ? service->pid : 0);
    out += " service=";
    append_field(out, service ? std::string_view(service->service_name) : std::string_view());
    out += ' ';
    if (span.rpc) {
        // The call as it was made: the method as parsed (its capped form is for metrics)
        // and the gRPC status, which is what an RPC's outcome is read from.
        out += pipeline::kRpcSystemGrpc;
        out += ' ';
        append_field(out, span.path);
        out += " grpc_status=";
        append_field(out, pipeline::grpc_status_text(span.rpc_status));
    } else {
        append_field(out, span.method);
        out += ' ';
        append_field(out, span.path);
        out += " route=";
        append_field(out, span.route);
        out += " status=";
        out += std::to_string(span.status);
    }
    out += " dur=";
    append_duration_ms(out, duration_ns(span));
    out += " req=";
    out += std::to_string(span.request_body_bytes);
    out += "B resp=";
    out += std::to_string(span.response_body_bytes);
    out += "B local=";
    append_endpoint(out, span.local);
    out += " peer=";
    append_endpoint(out, span.peer);
    out += " trace=";
    out += pipeline::to_hex(span.trace_id);
    out += " span=";
    out += pipeline::to_hex(span.span_id);
    if (span.has_parent()) {
        out += " parent=";
        out += pipeline::to_hex(span.parent_span_id);
    }
    // Trailing and optional, so the lines of spans without them read as before.
    if (const std::string error = pipeline::span_error_type(span); !error.empty()) {
        out += " error=";
        append_field(out, error);
    }
    if (span.stream_reset) out += " stream_reset";
    if (span.partial) out += " partial";
    return out;
}

std::string format_span_json(const Span& span) {
    const pipeline::ServiceIdentity* service = span.service.get();
    const NetEndpoint& server = span.server_endpoint();
    // Ordered so the keys read in a stable, human-friendly order.
    nlohmann::ordered_json j;
    j["kind"] = span.kind == SpanKind::Server ? "server" : "client";
    j["start_unix_ns"] = span.start_unix_ns;
    j["end_unix_ns"] = span.end_unix_ns;
    j["duration_ns"] = duration_ns(span);
    j["method"] = span.method;
    j["path"] = span.path;
    j["route"] = span.route;
    j["status"] = span.status;
    j["scheme"] = span.scheme;
    j["protocol_version"] = span.protocol_version;
    j["request_body_bytes"] = span.request_body_bytes;
    j["response_body_bytes"] = span.response_body_bytes;
    j["local_address"] = span.local.address;
    j["local_port"] = span.local.port;
    j["peer_address"] = span.peer.address;
    j["peer_port"] = span.peer.port;
    j["server_address"] = server.address;
    j["server_port"] = server.port;
    j["pid"] = service ? service->pid : 0;
    j["service_name"] = service ? service->service_name : std::string();
    j["service_namespace"] = service ? service->service_namespace : std::string();
    j["exe"] = service ? service->exe_path : std::string();
    j["trace_id"] = pipeline::to_hex(span.trace_id);
    j["span_id"] = pipeline::to_hex(span.span_id);
    j["parent_span_id"] = span.has_parent() ? pipeline::to_hex(span.parent_span_id) : std::string();
    j["sampled"] = span.sampled;
    j["error_type"] = pipeline::span_error_type(span);  // empty: the span did not fail
    j["stream_reset"] = span.stream_reset;
    j["partial"] = span.partial;
    // Only RPC spans have these, under the names of their metric labels.
    if (span.rpc) {
        j["rpc_system_name"] = pipeline::kRpcSystemGrpc;
        j["rpc_method"] = pipeline::rpc_method(span);
        j["rpc_response_status_code"] = pipeline::grpc_status_text(span.rpc_status);
        // null, not -1, when no status was seen: -1 is not a gRPC code.
        j["rpc_grpc_status_code"] =
            span.rpc_status >= 0 ? nlohmann::ordered_json(span.rpc_status) : nullptr;
    }
    // Traced paths are not guaranteed UTF-8; the default handler would throw
    // on the first odd byte, so invalid sequences become U+FFFD instead.
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

SpanPrinter::SpanPrinter(PrinterMode mode, std::FILE* stream) : mode_(mode), stream_(stream) {}

void SpanPrinter::print(const Span& span) {
    if (mode_ == PrinterMode::Disabled || stream_ == nullptr) {
        return;
    }
    std::string line = mode_ == PrinterMode::Json ? format_span_json(span) : format_span_text(span);
    line += '\n';
    // One write per line so concurrent writers to the stream cannot split it;
    // the flush makes spans visible to `tail -f` and test harnesses at once.
    std::fwrite(line.data(), 1, line.size(), stream_);
    std::fflush(stream_);
}

}  // namespace sonde::exporter
