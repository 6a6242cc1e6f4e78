#include "discovery/proc_parsers.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "discovery/text_util.h"

namespace sonde::discovery {

namespace {

using detail::next_token;
using detail::parse_whole_unsigned;

constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// "0100007F:1F90" (IPv4) or 32 hex digits then ":PORT" (IPv6). The kernel
// prints each 32-bit word of the address as a number, so the bytes of that
// number in this host's memory order are the address in network order.
bool parse_tcp_endpoint(std::string_view token, bool ipv6, std::array<uint8_t, 16>& addr,
                        uint16_t& port) {
    const size_t words = ipv6 ? 4 : 1;
    const size_t hex_len = 8 * words;
    if (token.size() != hex_len + 1 + 4 || token[hex_len] != ':') {
        return false;
    }
    const auto parsed_port = parse_whole_unsigned<uint16_t>(token.substr(hex_len + 1), 16);
    if (!parsed_port) {
        return false;
    }
    std::array<uint8_t, 16> out{};
    size_t offset = 0;
    if (!ipv6) {
        std::copy(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), out.begin());
        offset = kV4MappedPrefix.size();
    }
    for (size_t i = 0; i < words; ++i) {
        const auto word = parse_whole_unsigned<uint32_t>(token.substr(8 * i, 8), 16);
        if (!word) {
            return false;
        }
        std::memcpy(out.data() + offset + 4 * i, &*word, sizeof(uint32_t));
    }
    addr = out;
    port = *parsed_port;
    return true;
}

enum class RowResult { Parsed, Ignored, Malformed };

// Row layout (same for both files): "sl: local remote st tx:rx tr:when
// retrnsmt uid timeout inode ...". Only the fields we use are validated.
RowResult parse_tcp_row(std::string_view line, bool ipv6, TcpSocketRow& row) {
    std::string_view rest = line;
    std::array<std::string_view, 10> tokens;
    size_t count = 0;
    for (; count < tokens.size(); ++count) {
        tokens[count] = next_token(rest);
        if (tokens[count].empty()) {
            break;
        }
    }
    if (count == 0) {
        return RowResult::Ignored;
    }
    if (tokens[0] == "sl") {
        return RowResult::Ignored;  // the header line
    }
    if (count < tokens.size()) {
        return RowResult::Malformed;
    }
    const std::string_view slot = tokens[0];
    if (slot.size() < 2 || slot.back() != ':' ||
        !parse_whole_unsigned<uint32_t>(slot.substr(0, slot.size() - 1))) {
        return RowResult::Malformed;
    }
    if (!parse_tcp_endpoint(tokens[1], ipv6, row.local_addr, row.local_port) ||
        !parse_tcp_endpoint(tokens[2], ipv6, row.remote_addr, row.remote_port)) {
        return RowResult::Malformed;
    }
    const auto state =
        tokens[3].size() == 2 ? parse_whole_unsigned<uint8_t>(tokens[3], 16) : std::nullopt;
    const auto inode = parse_whole_unsigned<uint64_t>(tokens[9]);
    if (!state || !inode) {
        return RowResult::Malformed;
    }
    row.state = *state;
    row.inode = *inode;
    return RowResult::Parsed;
}

std::optional<uint8_t> hex_digit_value(char c) {
    if (c >= '0' && c <= '9') {
        return static_cast<uint8_t>(c - '0');
    }
    if (c >= 'a' && c <= 'f') {
        return static_cast<uint8_t>(c - 'a' + 10);
    }
    if (c >= 'A' && c <= 'F') {
        return static_cast<uint8_t>(c - 'A' + 10);
    }
    return std::nullopt;
}

std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (s.size() - i < 3) {
            return std::nullopt;
        }
        const auto high = hex_digit_value(s[i + 1]);
        const auto low = hex_digit_value(s[i + 2]);
        if (!high || !low) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>((*high << 4) | *low));
        i += 2;
    }
    return out;
}

}  // namespace

std::vector<TcpSocketRow> parse_proc_net_tcp(std::string_view text, bool ipv6, size_t* bad_rows) {
    std::vector<TcpSocketRow> rows;
    size_t malformed = 0;
    while (!text.empty()) {
        const size_t newline = text.find('\n');
        const std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        TcpSocketRow row;
        switch (parse_tcp_row(line, ipv6, row)) {
            case RowResult::Parsed:
                rows.push_back(row);
                break;
            case RowResult::Malformed:
                ++malformed;
                break;
            case RowResult::Ignored:
                break;
        }
    }
    if (bad_rows != nullptr) {
        *bad_rows = malformed;
    }
    return rows;
}

std::optional<uint64_t> parse_socket_link(std::string_view link_target) {
    return detail::parse_kind_id_link(link_target, "socket");
}

std::optional<HostCpuTimes> parse_host_cpu_times(std::string_view proc_stat) {
    // The first line, "cpu  user nice system idle iowait irq softirq steal guest guest_nice".
    std::string_view line = proc_stat.substr(0, proc_stat.find('\n'));
    if (line.substr(0, 4) != "cpu ") return std::nullopt;
    line.remove_prefix(4);
    constexpr size_t kIdle = 3, kIowait = 4, kSummed = 8;  // columns from 0; guest is in user
    HostCpuTimes times;
    size_t column = 0;
    for (std::string_view token = next_token(line); !token.empty() && column < kSummed;
         token = next_token(line), ++column) {
        const auto ticks = parse_whole_unsigned<uint64_t>(token);
        if (!ticks) return std::nullopt;
        // Counters summed over CPUs stay far below 2^64 (a century at 10^9 ticks/s),
        // so an overflow means the text is not what the kernel writes.
        if (times.total + *ticks < times.total) return std::nullopt;
        times.total += *ticks;
        if (column == kIdle || column == kIowait) times.idle += *ticks;
    }
    if (column <= kIdle) return std::nullopt;  // no idle column: not /proc/stat
    return times;
}

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
    // comm is arbitrary bytes chosen by the process, so only the first '(' and
    // the last ')' delimit it reliably.
    const size_t open = text.find('(');
    const size_t close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
        return std::nullopt;
    }
    std::string_view pid_text = text.substr(0, open);
    if (pid_text.empty() || pid_text.back() != ' ') {
        return std::nullopt;
    }
    pid_text.remove_suffix(1);
    if (!parse_whole_unsigned<uint32_t>(pid_text)) {
        return std::nullopt;
    }
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ' ') {
        return std::nullopt;
    }
    if (rest.back() == '\n') {
        rest.remove_suffix(1);
    }
    // Fields counted from 1 as in proc(5); field 3 is the first after comm.
    constexpr size_t kFirstField = 3;
    constexpr size_t kPpidField = 4;
    constexpr size_t kStartTimeField = 22;
    std::optional<uint32_t> ppid;
    std::optional<uint64_t> start_time;
    for (size_t field = kFirstField; field <= kStartTimeField; ++field) {
        const std::string_view token = next_token(rest);
        if (token.empty()) {
            return std::nullopt;
        }
        if (field == kPpidField) {
            ppid = parse_whole_unsigned<uint32_t>(token);
        } else if (field == kStartTimeField) {
            start_time = parse_whole_unsigned<uint64_t>(token);
        }
    }
    if (!ppid || !start_time) {
        return std::nullopt;
    }
    ProcStat stat;
    stat.ppid = *ppid;
    stat.start_time_ticks = *start_time;
    stat.comm = std::string(text.substr(open + 1, close - open - 1));
    return stat;
}

std::optional<std::string> environ_value(std::string_view environ, std::string_view key) {
    if (key.empty()) {
        return std::nullopt;
    }
    while (!environ.empty()) {
        const size_t nul = environ.find('\0');
        const std::string_view entry = environ.substr(0, nul);
        environ.remove_prefix(nul == std::string_view::npos ? environ.size() : nul + 1);
        // The first definition wins, as with getenv().
        if (entry.size() > key.size() && entry[key.size()] == '=' &&
            entry.substr(0, key.size()) == key) {
            return std::string(entry.substr(key.size() + 1));
        }
    }
    return std::nullopt;
}

std::optional<std::string> resource_attribute(std::string_view attributes, std::string_view key) {
    std::optional<std::string> found;
    while (!attributes.empty()) {
        const size_t comma = attributes.find(',');
        const std::string_view pair = attributes.substr(0, comma);
        attributes.remove_prefix(comma == std::string_view::npos ? attributes.size() : comma + 1);
        const size_t equals = pair.find('=');
        if (equals == std::string_view::npos) {
            continue;  // tolerate ",," and stray words; they carry no attribute
        }
        const std::string_view name = detail::trim_blanks(pair.substr(0, equals));
        auto value = percent_decode(detail::trim_blanks(pair.substr(equals + 1)));
        if (!value) {
            // The OpenTelemetry spec asks to discard the whole variable when
            // any value fails to decode, so a half-understood list is not used.
            return std::nullopt;
        }
        if (name == key) {
            found = std::move(*value);  // later entries override earlier ones
        }
    }
    return found;
}

std::string language_of_executable(std::string_view exe_name) {
    // An interpreter's name, optionally followed by a version: "python3", "python3.11", "php8.2".
    const auto named = [&](std::string_view stem) {
        if (exe_name.substr(0, stem.size()) != stem) return false;
        const std::string_view version = exe_name.substr(stem.size());
        return std::all_of(version.begin(), version.end(),
                           [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
    };
    struct Runtime {
        std::string_view stem;
        std::string_view language;
    };
    static constexpr Runtime kRuntimes[] = {
        {"python", "python"}, {"pypy", "python"}, {"node", "nodejs"},     {"nodejs", "nodejs"},
        {"java", "java"},     {"ruby", "ruby"},   {"php", "php"},         {"php-fpm", "php"},
        {"dotnet", "dotnet"}, {"erl", "erlang"},  {"beam.smp", "erlang"},
    };
    for (const Runtime& runtime : kRuntimes) {
        if (named(runtime.stem)) return std::string(runtime.language);
    }
    return {};
}

std::string format_ip(const std::array<uint8_t, 16>& addr) {
    char buf[8];
    std::string out;
    if (std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), addr.begin())) {
        for (size_t i = 12; i < 16; ++i) {
            if (i > 12) {
                out.push_back('.');
            }
            const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), addr[i]);
            out.append(buf, end);
        }
        return out;
    }
    std::array<uint16_t, 8> groups{};
    for (size_t i = 0; i < groups.size(); ++i) {
        groups[i] = static_cast<uint16_t>((addr[2 * i] << 8) | addr[2 * i + 1]);
    }
    // RFC 5952 4.2: "::" replaces the longest run of two or more zero groups,
    // the first such run on a tie.
    size_t best_start = groups.size();
    size_t best_len = 1;
    for (size_t i = 0; i < groups.size();) {
        if (groups[i] != 0) {
            ++i;
            continue;
        }
        size_t run_end = i;
        while (run_end < groups.size() && groups[run_end] == 0) {
            ++run_end;
        }
        if (run_end - i > best_len) {
            best_start = i;
            best_len = run_end - i;
        }
        i = run_end;
    }
    for (size_t i = 0; i < groups.size();) {
        if (i == best_start) {
            out += "::";
            i += best_len;
            continue;
        }
        if (!out.empty() && out.back() != ':') {
            out.push_back(':');
        }
        const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), groups[i], 16);
        out.append(buf, end);
        ++i;
    }
    return out;
}

}  // namespace sonde::discovery
