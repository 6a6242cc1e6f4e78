// Test helpers for Prometheus text exposition: a small sample parser so tests
// assert on values rather than on formatting, and a promtool runner.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sonde::test_util {

struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;  // values unescaped
    std::string value;                          // as written
};

// Parses the sample lines of a 0.0.4 exposition; comment lines are skipped.
// Returns nullopt on a line it cannot read, so a formatting slip fails tests.
inline std::optional<std::vector<Sample>> parse_exposition(std::string_view text) {
    std::vector<Sample> samples;
    while (!text.empty()) {
        const size_t newline = text.find('\n');
        if (newline == std::string_view::npos) {
            return std::nullopt;  // the format requires a final newline
        }
        const std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline + 1);
        if (line.empty() || line[0] == '#') {
            continue;
        }
        Sample sample;
        size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') {
            sample.name += line[i++];
        }
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (i < line.size() && line[i] != '}') {
                const size_t eq = line.find("=\"", i);
                if (eq == std::string_view::npos) {
                    return std::nullopt;
                }
                std::string key(line.substr(i, eq - i));
                std::string value;
                i = eq + 2;
                while (i < line.size() && line[i] != '"') {
                    if (line[i] == '\\' && i + 1 < line.size()) {
                        const char escaped = line[i + 1];
                        value += escaped == 'n' ? '\n' : escaped;
                        i += 2;
                    } else {
                        value += line[i++];
                    }
                }
                if (i >= line.size()) {
                    return std::nullopt;
                }
                ++i;  // closing quote
                if (i < line.size() && line[i] == ',') {
                    ++i;
                }
                sample.labels.emplace(std::move(key), std::move(value));
            }
            if (i >= line.size()) {
                return std::nullopt;
            }
            ++i;  // closing brace
        }
        if (i >= line.size() || line[i] != ' ') {
            return std::nullopt;
        }
        sample.value = std::string(line.substr(i + 1));
        samples.push_back(std::move(sample));
    }
    return samples;
}

// Values of samples named `name` whose labels include every pair in `match`.
inline std::vector<std::string> find_values(const std::vector<Sample>& samples,
                                            std::string_view name,
                                            const std::map<std::string, std::string>& match) {
    std::vector<std::string> values;
    for (const Sample& s : samples) {
        if (s.name != name) {
            continue;
        }
        bool all = true;
        for (const auto& [key, value] : match) {
            const auto it = s.labels.find(key);
            all = all && it != s.labels.end() && it->second == value;
        }
        if (all) {
            values.push_back(s.value);
        }
    }
    return values;
}

inline bool promtool_available() {
    const char* path = std::getenv("PATH");
    std::string_view dirs = path ? path : "";
    while (true) {
        const size_t colon = dirs.find(':');
        const std::string candidate = std::string(dirs.substr(0, colon)) + "/promtool";
        if (::access(candidate.c_str(), X_OK) == 0) {
            return true;
        }
        if (colon == std::string_view::npos) {
            return false;
        }
        dirs.remove_prefix(colon + 1);
    }
}

struct PromtoolResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr together; empty when clean
};

// Runs `promtool check metrics` over `text`, which lints as well as parses.
inline PromtoolResult promtool_check(const std::string& text) {
    PromtoolResult result;
    char file_name[] = "/tmp/sonde-promtool-XXXXXX";
    const int fd = ::mkstemp(file_name);
    if (fd < 0) {
        result.output = "mkstemp failed";
        return result;
    }
    const bool written = ::write(fd, text.data(), text.size()) == ssize_t(text.size());
    ::close(fd);
    if (written) {
        const std::string command = std::string("promtool check metrics < ") + file_name + " 2>&1";
        if (std::FILE* pipe = ::popen(command.c_str(), "r")) {
            char buffer[4096];
            size_t n;
            while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
                result.output.append(buffer, n);
            }
            const int status = ::pclose(pipe);
            result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
    }
    ::unlink(file_name);
    return result;
}

}  // namespace sonde::test_util
