// A set of TCP ports as users write it: "80,443,8000-8999".
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sonde::discovery {

class PortSet {
public:
    // Parses a comma-separated list of ports and inclusive ranges (1..65535).
    // On error returns a message naming the offending item.
    static std::variant<PortSet, std::string> parse(std::string_view text);

    bool contains(uint16_t port) const { return port != 0 && ports_.test(port); }
    bool empty() const { return ports_.none(); }
    size_t size() const { return ports_.count(); }
    std::string to_string() const;  // canonical "80,443,8000-8999"

    void insert(uint16_t port) {
        if (port != 0) {
            ports_.set(port);
        }
    }
    PortSet& operator|=(const PortSet& other) {
        ports_ |= other.ports_;
        return *this;
    }
    // The lowest `max_count` ports, ascending.
    std::vector<uint16_t> lowest(size_t max_count) const;

private:
    std::bitset<65536> ports_;
};

}  // namespace sonde::discovery
