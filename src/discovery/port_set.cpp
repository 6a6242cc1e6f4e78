#include "discovery/port_set.h"

#include <cstddef>
#include <optional>

#include "discovery/text_util.h"

namespace sonde::discovery {

namespace {

constexpr uint32_t kMaxPort = 65535;

// Quotes a user's item for an error message, cut short so a pasted
// megabyte of junk does not become a megabyte of log line.
std::string quote_item(std::string_view item) {
    constexpr size_t kMaxShown = 40;
    std::string out = "'";
    if (item.size() > kMaxShown) {
        out.append(item.substr(0, kMaxShown));
        out += "...";
    } else {
        out.append(item);
    }
    out += "'";
    return out;
}

// A port number or the reason it is not one.
std::variant<uint16_t, std::string> parse_port(std::string_view text) {
    text = detail::trim_blanks(text);
    if (text.empty()) {
        return std::string("missing port number");
    }
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return std::string("not a number");
        }
    }
    const auto value = detail::parse_whole_unsigned<uint32_t>(text);
    if (!value || *value == 0 || *value > kMaxPort) {
        return std::string("port out of range 1-65535");
    }
    return static_cast<uint16_t>(*value);
}

}  // namespace

std::variant<PortSet, std::string> PortSet::parse(std::string_view text) {
    PortSet set;
    // An empty list is the empty set, so parse(to_string()) round-trips.
    if (detail::trim_blanks(text).empty()) {
        return set;
    }
    size_t item_number = 0;
    while (true) {
        ++item_number;
        const size_t comma = text.find(',');
        const std::string_view raw_item = text.substr(0, comma);
        const std::string_view item = detail::trim_blanks(raw_item);
        if (item.empty()) {
            return "empty item #" + std::to_string(item_number) + " in port list";
        }
        const size_t dash = item.find('-');
        const auto first = parse_port(item.substr(0, dash));
        if (const auto* reason = std::get_if<std::string>(&first)) {
            return "invalid port item " + quote_item(item) + ": " + *reason;
        }
        uint16_t low = std::get<uint16_t>(first);
        uint16_t high = low;
        if (dash != std::string_view::npos) {
            const auto last = parse_port(item.substr(dash + 1));
            if (const auto* reason = std::get_if<std::string>(&last)) {
                return "invalid port item " + quote_item(item) + ": " + *reason;
            }
            high = std::get<uint16_t>(last);
            if (high < low) {
                return "invalid port item " + quote_item(item) + ": reversed range";
            }
        }
        for (uint32_t port = low; port <= high; ++port) {
            set.ports_.set(port);
        }
        if (comma == std::string_view::npos) {
            break;
        }
        text.remove_prefix(comma + 1);
    }
    return set;
}

std::vector<uint16_t> PortSet::lowest(size_t max_count) const {
    std::vector<uint16_t> out;
    for (uint32_t port = 1; port <= kMaxPort && out.size() < max_count; ++port) {
        if (ports_.test(port)) {
            out.push_back(static_cast<uint16_t>(port));
        }
    }
    return out;
}

std::string PortSet::to_string() const {
    std::string out;
    uint32_t port = 1;
    while (port <= kMaxPort) {
        if (!ports_.test(port)) {
            ++port;
            continue;
        }
        const uint32_t run_start = port;
        while (port + 1 <= kMaxPort && ports_.test(port + 1)) {
            ++port;
        }
        if (!out.empty()) {
            out.push_back(',');
        }
        out += std::to_string(run_start);
        if (port != run_start) {
            out.push_back('-');
            out += std::to_string(port);
        }
        ++port;
    }
    return out;
}

}  // namespace sonde::discovery
