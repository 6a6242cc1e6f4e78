// A set of TCP ports as users write it: "80,443,8000-8999".
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace sonde::discovery {

class PortSet {
public:
    // Parses a comma-separated list of ports and inclusive ranges (1..65535).
    // On error returns a message naming the offending item.
    static std::variant<PortSet, std::string> parse(std::string_view text);

    bool contains(uint16_t port) const { return port != 0 && ports_.test(port); }
    bool empty() const { return ports_.none(); }
    std::string to_string() const;  // canonical "80,443,8000-8999"

private:
    std::bitset<65536> ports_;
};

}  // namespace sonde::discovery
