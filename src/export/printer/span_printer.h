// The trace printer: spans on a stream, for local debugging and tests.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "pipeline/span.h"

namespace sonde::exporter {

enum class PrinterMode { Disabled, Text, Json };

// "disabled", "text", "json" (case-insensitive); nullopt for anything else.
std::optional<PrinterMode> parse_printer_mode(std::string_view value);

// One line per span, no trailing newline.
std::string format_span_text(const pipeline::Span& span);
std::string format_span_json(const pipeline::Span& span);

class SpanPrinter {
public:
    SpanPrinter(PrinterMode mode, std::FILE* stream);
    void print(const pipeline::Span& span);  // writes a line and flushes
    PrinterMode mode() const { return mode_; }

private:
    PrinterMode mode_;
    std::FILE* stream_;
};

}  // namespace sonde::exporter
