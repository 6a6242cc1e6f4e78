#include "discovery/proc_maps.h"

#include <set>
#include <tuple>

#include "discovery/text_util.h"

namespace sonde::discovery {

namespace {

using detail::is_blank;
using detail::next_token;
using detail::parse_whole_unsigned;

enum class LineResult { Parsed, Ignored, Malformed };

// "LOW-HIGH" or "LOW:HIGH" with both halves hex numbers of type T.
template <typename T>
bool parse_hex_pair(std::string_view token, char separator, T& low, T& high) {
    const size_t split = token.find(separator);
    if (split == std::string_view::npos) {
        return false;
    }
    const auto first = parse_whole_unsigned<T>(token.substr(0, split), 16);
    const auto second = parse_whole_unsigned<T>(token.substr(split + 1), 16);
    if (!first || !second) {
        return false;
    }
    low = *first;
    high = *second;
    return true;
}

// "r-xp": each position is its letter or '-', the last one 'p' or 's'.
bool parse_permissions(std::string_view token, MappedRegion& region) {
    if (token.size() != 4) {
        return false;
    }
    const auto flag = [&](size_t i, char letter, bool& out) {
        out = token[i] == letter;
        return out || token[i] == '-';
    };
    if (!flag(0, 'r', region.readable) || !flag(1, 'w', region.writable) ||
        !flag(2, 'x', region.executable)) {
        return false;
    }
    if (token[3] != 'p' && token[3] != 's') {
        return false;
    }
    region.shared = token[3] == 's';
    return true;
}

// "start-end perms offset major:minor inode [padding path]" (proc(5)).
LineResult parse_maps_line(std::string_view line, MappedRegion& region) {
    std::string_view rest = line;
    const std::string_view range = next_token(rest);
    if (range.empty()) {
        return LineResult::Ignored;
    }
    const std::string_view permissions = next_token(rest);
    const std::string_view offset = next_token(rest);
    const std::string_view device = next_token(rest);
    const std::string_view inode = next_token(rest);
    if (!parse_hex_pair(range, '-', region.start, region.end) || region.end < region.start ||
        !parse_permissions(permissions, region) ||
        !parse_hex_pair(device, ':', region.dev_major, region.dev_minor)) {
        return LineResult::Malformed;
    }
    const auto parsed_offset = parse_whole_unsigned<uint64_t>(offset, 16);
    const auto parsed_inode = parse_whole_unsigned<uint64_t>(inode);
    if (!parsed_offset || !parsed_inode) {
        return LineResult::Malformed;
    }
    region.offset = *parsed_offset;
    region.inode = *parsed_inode;
    // The kernel pads to a column before the path; a path's own leading
    // blanks are lost with the padding, its inner and trailing ones are kept.
    while (!rest.empty() && is_blank(rest.front())) {
        rest.remove_prefix(1);
    }
    region.path = std::string(rest);
    return LineResult::Parsed;
}

}  // namespace

std::vector<MappedRegion> parse_proc_maps(std::string_view text, size_t* bad_lines,
                                          size_t max_lines) {
    std::vector<MappedRegion> regions;
    size_t malformed = 0;
    for (size_t looked_at = 0; !text.empty() && looked_at < max_lines; ++looked_at) {
        const size_t newline = text.find('\n');
        const std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        MappedRegion region;
        switch (parse_maps_line(line, region)) {
            case LineResult::Parsed:
                regions.push_back(std::move(region));
                break;
            case LineResult::Malformed:
                ++malformed;
                break;
            case LineResult::Ignored:
                break;
        }
    }
    if (bad_lines != nullptr) {
        *bad_lines = malformed;
    }
    return regions;
}

std::vector<MappedRegion> executable_files(const std::vector<MappedRegion>& regions) {
    std::vector<MappedRegion> files;
    // A set, not a scan of `files`: a process can map tens of thousands of files.
    std::set<std::tuple<uint32_t, uint32_t, uint64_t>> seen;
    for (const MappedRegion& region : regions) {
        if (region.inode == 0 || !region.executable || region.path.empty() ||
            region.path.front() != '/') {
            continue;
        }
        if (seen.emplace(region.dev_major, region.dev_minor, region.inode).second) {
            files.push_back(region);
        }
    }
    return files;
}

}  // namespace sonde::discovery
