// Pure parsers over /proc text. Everything under /proc is untrusted input
// (process names, environment values and socket tables are controlled by
// other users): bounded work, no exceptions escape, garbage yields nullopt
// or skipped lines.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sonde::discovery {

// One row of /proc/net/tcp or /proc/net/tcp6.
struct TcpSocketRow {
    std::array<uint8_t, 16> local_addr{};  // IPv4 rows as IPv4-mapped IPv6
    uint16_t local_port = 0;
    std::array<uint8_t, 16> remote_addr{};
    uint16_t remote_port = 0;
    uint8_t state = 0;  // 0x0A = LISTEN
    uint64_t inode = 0;
};
inline constexpr uint8_t kTcpStateListen = 0x0A;
inline constexpr uint8_t kTcpStateEstablished = 0x01;

// Parses the whole file; malformed rows are skipped and counted in *bad_rows.
std::vector<TcpSocketRow> parse_proc_net_tcp(std::string_view text, bool ipv6,
                                             size_t* bad_rows = nullptr);

// "socket:[12345]" -> 12345.
std::optional<uint64_t> parse_socket_link(std::string_view link_target);

// Field 22 (starttime, clock ticks since boot) and field 4 (ppid) of
// /proc/PID/stat. The comm field may contain spaces and ')'.
struct ProcStat {
    uint32_t ppid = 0;
    uint64_t start_time_ticks = 0;
    std::string comm;
};
std::optional<ProcStat> parse_proc_stat(std::string_view text);

// The host's CPU time from the aggregate "cpu" line of /proc/stat, in clock
// ticks summed over CPUs: `idle` (idle and iowait) out of `total` (user, nice,
// system, idle, iowait, irq, softirq, steal; guest time is inside user).
// Kernels before 2.6.11 print fewer columns: those present are summed.
struct HostCpuTimes {
    uint64_t idle = 0;
    uint64_t total = 0;
};
std::optional<HostCpuTimes> parse_host_cpu_times(std::string_view proc_stat);

// NUL-separated KEY=VALUE list of /proc/PID/environ; returns the value of
// `key` if present. Bounded: scans at most the given text.
std::optional<std::string> environ_value(std::string_view environ, std::string_view key);

// OTEL_RESOURCE_ATTRIBUTES "k1=v1,k2=v2" (values percent-decoded): value of `key`.
std::optional<std::string> resource_attribute(std::string_view attributes, std::string_view key);

// The language of a process as OTel's telemetry.sdk.language names it, from
// its executable's file name ("python3.11" -> "python", "node" -> "nodejs");
// empty when the name says nothing (compiled binaries: Go, C++, Rust).
std::string language_of_executable(std::string_view exe_name);

// Textual form of an address as used in labels: "127.0.0.1" for IPv4-mapped,
// RFC 5952 form for IPv6.
std::string format_ip(const std::array<uint8_t, 16>& addr);

}  // namespace sonde::discovery
