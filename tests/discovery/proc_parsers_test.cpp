#include "discovery/proc_parsers.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace sonde::discovery {
namespace {

using namespace std::string_literals;

// Copied shape of a real /proc/net/tcp: header, a listener, an accepted
// connection, a TIME_WAIT row (inode 0, shorter tail).
constexpr std::string_view kTcp4Table =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
    "inode                                                     \n"
    "   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "1069 1 00000000d5784abe 100 0 0 10 0                      \n"
    "   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 "
    "48213 1 0000000017b6c9a2 20 4 30 10 -1                     \n"
    "   2: 0100007F:1F90 0100007F:D432 06 00000000:00000000 03:000016A8 00000000     0        0 0 "
    "3 0000000000000000                                         \n";

constexpr std::string_view kTcp6Table =
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000  1000        0 77001 1 00000000a1b2c3d4 100 0 0 10 0\n"
    "   1: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000A00A8C0:E5F2 01 "
    "00000000:00000000 02:0000A3B2 00000000    33        0 77002 1 00000000a1b2c3d5 21 4 28 10 "
    "-1\n"
    "   2: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 77003 1 00000000a1b2c3d6 100 0 0 10 "
    "0\n";

TEST(ParseProcNetTcp, Ipv4RowsFromARealTable) {
    size_t bad = 99;
    const auto rows = parse_proc_net_tcp(kTcp4Table, false, &bad);
    EXPECT_EQ(bad, 0u);
    ASSERT_EQ(rows.size(), 3u);

    EXPECT_EQ(format_ip(rows[0].local_addr), "0.0.0.0");
    EXPECT_EQ(rows[0].local_port, 2024);
    EXPECT_EQ(rows[0].state, kTcpStateListen);
    EXPECT_EQ(rows[0].inode, 1069u);

    EXPECT_EQ(format_ip(rows[1].local_addr), "127.0.0.1");
    EXPECT_EQ(rows[1].local_port, 8080);
    EXPECT_EQ(format_ip(rows[1].remote_addr), "127.0.0.1");
    EXPECT_EQ(rows[1].remote_port, 54321);
    EXPECT_EQ(rows[1].state, kTcpStateEstablished);
    EXPECT_EQ(rows[1].inode, 48213u);

    EXPECT_EQ(rows[2].state, 0x06);  // TIME_WAIT
    EXPECT_EQ(rows[2].inode, 0u);
}

TEST(ParseProcNetTcp, Ipv4RowIsStoredAsV4MappedBytes) {
    const auto rows =
        parse_proc_net_tcp("0: 0A00A8C0:0050 00000000:0000 0A 0:0 0:0 0 0 0 5\n", false);
    ASSERT_EQ(rows.size(), 1u);
    const std::array<uint8_t, 16> expected = {0, 0, 0,    0,    0,   0,   0, 0,
                                              0, 0, 0xff, 0xff, 192, 168, 0, 10};
    EXPECT_EQ(rows[0].local_addr, expected);
}

TEST(ParseProcNetTcp, Ipv6RowsFromARealTable) {
    size_t bad = 99;
    const auto rows = parse_proc_net_tcp(kTcp6Table, true, &bad);
    EXPECT_EQ(bad, 0u);
    ASSERT_EQ(rows.size(), 3u);

    EXPECT_EQ(format_ip(rows[0].local_addr), "::1");
    EXPECT_EQ(rows[0].local_port, 8080);
    EXPECT_EQ(format_ip(rows[0].remote_addr), "::");
    EXPECT_EQ(rows[0].state, kTcpStateListen);
    EXPECT_EQ(rows[0].inode, 77001u);

    EXPECT_EQ(format_ip(rows[1].local_addr), "127.0.0.1");
    EXPECT_EQ(rows[1].local_port, 80);
    EXPECT_EQ(format_ip(rows[1].remote_addr), "192.168.0.10");
    EXPECT_EQ(rows[1].remote_port, 0xE5F2);
    EXPECT_EQ(rows[1].state, kTcpStateEstablished);

    EXPECT_EQ(format_ip(rows[2].local_addr), "2001:db8::1");
    EXPECT_EQ(rows[2].local_port, 443);
}

struct BadTcpCase {
    const char* name;
    std::string text;
    bool ipv6;
    size_t rows;
    size_t bad;
};

class ParseProcNetTcpBadInput : public testing::TestWithParam<BadTcpCase> {};

TEST_P(ParseProcNetTcpBadInput, SkipsAndCountsMalformedRows) {
    const BadTcpCase& c = GetParam();
    size_t bad = 99;
    const auto rows = parse_proc_net_tcp(c.text, c.ipv6, &bad);
    EXPECT_EQ(rows.size(), c.rows);
    EXPECT_EQ(bad, c.bad);
    // A null counter must be accepted too.
    EXPECT_EQ(parse_proc_net_tcp(c.text, c.ipv6).size(), c.rows);
}

const std::string kGoodV4Row = "0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 42";

INSTANTIATE_TEST_SUITE_P(
    Table, ParseProcNetTcpBadInput,
    testing::Values(
        BadTcpCase{"empty", "", false, 0, 0},
        BadTcpCase{"header_only", std::string(kTcp4Table.substr(0, kTcp4Table.find('\n') + 1)),
                   false, 0, 0},
        BadTcpCase{"blank_lines", "\n   \n\n", false, 0, 0},
        BadTcpCase{"truncated_last_row", std::string(kTcp4Table.substr(0, kTcp4Table.size() - 70)),
                   false, 2, 1},
        BadTcpCase{"cut_inside_address", kGoodV4Row + "\n1: 0100007F:1F", false, 1, 1},
        BadTcpCase{"no_newline_at_end", kGoodV4Row, false, 1, 0},
        BadTcpCase{"v4_row_in_v6_file", kGoodV4Row + "\n", true, 0, 1},
        BadTcpCase{"v6_row_in_v4_file", std::string(kTcp6Table), false, 0, 3},
        BadTcpCase{"non_hex_address", "0: 0100007G:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1\n", false,
                   0, 1},
        BadTcpCase{"short_port", "0: 0100007F:1F9 00000000:0000 0A 0:0 0:0 0 0 0 1\n", false, 0, 1},
        BadTcpCase{"missing_colon", "0: 0100007F1F90 00000000:0000 0A 0:0 0:0 0 0 0 1\n", false, 0,
                   1},
        BadTcpCase{"three_digit_state", "0: 0100007F:1F90 00000000:0000 0A0 0:0 0:0 0 0 0 1\n",
                   false, 0, 1},
        BadTcpCase{"inode_not_decimal", "0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1f\n",
                   false, 0, 1},
        BadTcpCase{"inode_overflow",
                   "0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 18446744073709551616\n", false,
                   0, 1},
        BadTcpCase{"slot_without_colon", "0 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1\n",
                   false, 0, 1},
        BadTcpCase{"signed_port", "0: 0100007F:-001 00000000:0000 0A 0:0 0:0 0 0 0 1\n", false, 0,
                   1},
        BadTcpCase{"good_rows_around_garbage",
                   kGoodV4Row + "\n\x01\x02 garbage\n" + kGoodV4Row + "\n", false, 2, 1},
        BadTcpCase{"nul_bytes", kGoodV4Row + "\n\0\0\0\n"s, false, 1, 1}),
    [](const testing::TestParamInfo<BadTcpCase>& info) { return std::string(info.param.name); });

struct SocketLinkCase {
    std::string link;
    std::optional<uint64_t> inode;
};

class ParseSocketLink : public testing::TestWithParam<SocketLinkCase> {};

TEST_P(ParseSocketLink, Table) {
    EXPECT_EQ(parse_socket_link(GetParam().link), GetParam().inode) << GetParam().link;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseSocketLink,
    testing::Values(
        SocketLinkCase{"socket:[12345]", 12345}, SocketLinkCase{"socket:[0]", 0},
        SocketLinkCase{"socket:[18446744073709551615]", UINT64_MAX},
        SocketLinkCase{"socket:[18446744073709551616]", std::nullopt},
        SocketLinkCase{"socket:[]", std::nullopt}, SocketLinkCase{"socket:[12a]", std::nullopt},
        SocketLinkCase{"socket:[-1]", std::nullopt}, SocketLinkCase{"socket:[+1]", std::nullopt},
        SocketLinkCase{"socket:[ 1]", std::nullopt}, SocketLinkCase{"socket:[123", std::nullopt},
        SocketLinkCase{"socket:123]", std::nullopt}, SocketLinkCase{"socket[123]", std::nullopt},
        SocketLinkCase{"pipe:[123]", std::nullopt},
        SocketLinkCase{"anon_inode:[eventpoll]", std::nullopt},
        SocketLinkCase{"/dev/null", std::nullopt}, SocketLinkCase{"", std::nullopt}));

// A real line, from `cat /proc/self/stat`.
constexpr std::string_view kRealStat =
    "4483 (cat) R 4473 4473 3483 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 53871 3133440 385 "
    "18446744073709551615 94134123950080 94134123969961 140735691107824 0 0 0 0 0 0 0 0 0 17 0 "
    "0 0 0 0 0 94134123985968 94134123987584 94134323109888 140735691111044 140735691111064 "
    "140735691111064 140735691112427 0\n";

// Everything after comm, with ppid 77 and starttime 123456.
constexpr std::string_view kStatTail =
    " S 77 1 1 0 -1 4194560 500 0 0 0 3 1 0 0 20 0 4 0 123456 10000 200 18446744073709551615";

struct StatCase {
    const char* name;
    std::string text;
    bool ok;
    std::string comm;
    uint32_t ppid;
    uint64_t start;
};

class ParseProcStat : public testing::TestWithParam<StatCase> {};

TEST_P(ParseProcStat, Table) {
    const StatCase& c = GetParam();
    const auto stat = parse_proc_stat(c.text);
    ASSERT_EQ(stat.has_value(), c.ok) << c.text;
    if (c.ok) {
        EXPECT_EQ(stat->comm, c.comm);
        EXPECT_EQ(stat->ppid, c.ppid);
        EXPECT_EQ(stat->start_time_ticks, c.start);
    }
}

const std::string kTail(kStatTail);

INSTANTIATE_TEST_SUITE_P(
    Table, ParseProcStat,
    testing::Values(
        StatCase{"real", std::string(kRealStat), true, "cat", 4473, 53871},
        StatCase{"paren_space_paren_in_comm", "1234 (a) (b)" + kTail, true, "a) (b", 77, 123456},
        StatCase{"fake_fields_in_comm", "1234 (x) S 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9)" + kTail,
                 true, "x) S 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9", 77, 123456},
        StatCase{"spaces_in_comm", "42 (Web Content)" + kTail, true, "Web Content", 77, 123456},
        StatCase{"empty_comm", "42 ()" + kTail, true, "", 77, 123456},
        StatCase{"open_paren_in_comm", "42 ((sd-pam)" + kTail, true, "(sd-pam", 77, 123456},
        StatCase{"no_trailing_newline", "42 (x)" + kTail, true, "x", 77, 123456},
        StatCase{"trailing_newline", "42 (x)" + kTail + "\n", true, "x", 77, 123456},
        StatCase{"ends_at_starttime", "42 (x) S 77 1 1 0 -1 4 5 0 0 0 3 1 0 0 20 0 4 0 99\n", true,
                 "x", 77, 99},
        StatCase{"truncated_before_starttime", "42 (x) S 77 1 1 0 -1 4 5 0 0 0 3 1 0 0 20 0 4 0",
                 false, "", 0, 0},
        StatCase{"truncated_in_comm", "42 (long comm na", false, "", 0, 0},
        StatCase{"no_open_paren", "42 x)" + kTail, false, "", 0, 0},
        StatCase{"close_before_open", "42 )x(" + kTail, false, "", 0, 0},
        StatCase{"no_space_after_comm", "42 (x)S 77" + kTail, false, "", 0, 0},
        StatCase{"ppid_not_a_number", "42 (x) S abc 1 1 0 -1 4 5 0 0 0 3 1 0 0 20 0 4 0 99", false,
                 "", 0, 0},
        StatCase{"negative_ppid", "42 (x) S -1 1 1 0 -1 4 5 0 0 0 3 1 0 0 20 0 4 0 99", false, "",
                 0, 0},
        StatCase{"starttime_overflow",
                 "42 (x) S 1 1 1 0 -1 4 5 0 0 0 3 1 0 0 20 0 4 0 99999999999999999999999", false,
                 "", 0, 0},
        StatCase{"pid_not_a_number", "abc (x)" + kTail, false, "", 0, 0},
        StatCase{"missing_pid", "(x)" + kTail, false, "", 0, 0},
        StatCase{"empty", "", false, "", 0, 0},
        StatCase{"only_newline", "42 (x)\n", false, "", 0, 0}),
    [](const testing::TestParamInfo<StatCase>& info) { return std::string(info.param.name); });

TEST(EnvironValue, FindsKeysInANulSeparatedBlock) {
    const std::string env =
        "PATH=/usr/bin\0OTEL_SERVICE_NAMESPACE=shop\0OTEL_SERVICE_NAME=checkout\0"
        "EMPTY=\0EQUALS=a=b\0"s;
    EXPECT_EQ(environ_value(env, "OTEL_SERVICE_NAME"), "checkout");
    EXPECT_EQ(environ_value(env, "OTEL_SERVICE_NAMESPACE"), "shop");
    EXPECT_EQ(environ_value(env, "PATH"), "/usr/bin");
    EXPECT_EQ(environ_value(env, "EMPTY"), "");
    EXPECT_EQ(environ_value(env, "EQUALS"), "a=b");
    EXPECT_EQ(environ_value(env, "OTEL_SERVICE"), std::nullopt);  // a prefix is not a key
    EXPECT_EQ(environ_value(env, "ATH"), std::nullopt);
    EXPECT_EQ(environ_value(env, "MISSING"), std::nullopt);
    EXPECT_EQ(environ_value(env, ""), std::nullopt);
}

TEST(EnvironValue, EdgeCases) {
    EXPECT_EQ(environ_value("", "A"), std::nullopt);
    EXPECT_EQ(environ_value("A=1\0A=2\0"s, "A"), "1");  // first wins, like getenv
    EXPECT_EQ(environ_value("A=unterminated", "A"), "unterminated");
    EXPECT_EQ(environ_value("\0\0A=1"s, "A"), "1");
    EXPECT_EQ(environ_value("A\0A=x\0"s, "A"), "x");  // an entry without '=' is skipped
    EXPECT_EQ(environ_value("=A=1\0"s, "A"), std::nullopt);
}

struct AttributeCase {
    std::string attributes;
    std::string key;
    std::optional<std::string> value;
};

class ResourceAttribute : public testing::TestWithParam<AttributeCase> {};

TEST_P(ResourceAttribute, Table) {
    const AttributeCase& c = GetParam();
    EXPECT_EQ(resource_attribute(c.attributes, c.key), c.value) << c.attributes << " / " << c.key;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ResourceAttribute,
    testing::Values(
        AttributeCase{"service.name=cart,service.namespace=shop", "service.name", "cart"},
        AttributeCase{"service.name=cart,service.namespace=shop", "service.namespace", "shop"},
        AttributeCase{"deployment.environment=prod", "service.name", std::nullopt},
        AttributeCase{" service.name = cart , x=y", "service.name", "cart"},
        AttributeCase{"service.name=my%20app%2C1", "service.name", "my app,1"},
        AttributeCase{"service.name=%e2%9c%93", "service.name", "\xe2\x9c\x93"},
        AttributeCase{"service.name=a,service.name=b", "service.name", "b"},
        AttributeCase{"service.name=", "service.name", ""},
        AttributeCase{"service.name=a=b", "service.name", "a=b"},
        AttributeCase{",,service.name=a,", "service.name", "a"},
        AttributeCase{"garbage,service.name=a", "service.name", "a"},
        AttributeCase{"service.name=bad%zz", "service.name", std::nullopt},
        AttributeCase{"service.name=ok,other=bad%2", "service.name", std::nullopt},
        AttributeCase{"service.name=trailing%", "service.name", std::nullopt},
        AttributeCase{"service.names=a", "service.name", std::nullopt},
        AttributeCase{"", "service.name", std::nullopt}));

struct FormatCase {
    std::array<uint8_t, 16> addr;
    std::string text;
};

class FormatIp : public testing::TestWithParam<FormatCase> {};

TEST_P(FormatIp, Table) {
    EXPECT_EQ(format_ip(GetParam().addr), GetParam().text);
}

std::array<uint8_t, 16> v6(std::initializer_list<uint16_t> groups) {
    std::array<uint8_t, 16> out{};
    size_t i = 0;
    for (const uint16_t g : groups) {
        out[i++] = static_cast<uint8_t>(g >> 8);
        out[i++] = static_cast<uint8_t>(g);
    }
    return out;
}

INSTANTIATE_TEST_SUITE_P(
    Table, FormatIp,
    testing::Values(FormatCase{v6({0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001}), "127.0.0.1"},
                    FormatCase{v6({0, 0, 0, 0, 0, 0xffff, 0, 0}), "0.0.0.0"},
                    FormatCase{v6({0, 0, 0, 0, 0, 0xffff, 0xffff, 0xffff}), "255.255.255.255"},
                    FormatCase{v6({0, 0, 0, 0, 0, 0, 0, 1}), "::1"},
                    FormatCase{v6({0, 0, 0, 0, 0, 0, 0, 0}), "::"},
                    FormatCase{v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1}), "2001:db8::1"},
                    FormatCase{v6({0x2001, 0xdb8, 0, 0, 1, 0, 0, 1}), "2001:db8::1:0:0:1"},
                    FormatCase{v6({0x2001, 0xdb8, 0, 0, 0, 1, 0, 0}), "2001:db8::1:0:0"},
                    FormatCase{v6({0x2001, 0xdb8, 0, 1, 1, 1, 1, 1}), "2001:db8:0:1:1:1:1:1"},
                    FormatCase{v6({1, 0, 0, 0, 0, 0, 0, 0}), "1::"},
                    FormatCase{v6({0xfe80, 0, 0, 0, 0x1c2d, 0x3eff, 0xfe4f, 0x5a6b}),
                               "fe80::1c2d:3eff:fe4f:5a6b"},
                    FormatCase{v6({0x2001, 0xDB8, 0xAAAA, 0xBBBB, 0xCCCC, 0xDDDD, 0xEEEE, 0xF}),
                               "2001:db8:aaaa:bbbb:cccc:dddd:eeee:f"},
                    // ::ffff:0:0/96 is mapped, but ::ffff:0:1:2 (different prefix) is not.
                    FormatCase{v6({0, 0, 0, 0, 0xffff, 0, 1, 2}), "::ffff:0:1:2"},
                    // Deprecated IPv4-compatible form is printed as plain IPv6.
                    FormatCase{v6({0, 0, 0, 0, 0, 0, 0x0102, 0x0304}), "::102:304"}));

// RFC 5952 agrees with glibc's inet_ntop except for the embedded-IPv4 forms,
// so random addresses (with plenty of zero runs) are checked against it.
TEST(FormatIp, AgreesWithInetNtop) {
    std::mt19937 rng(12345);
    for (int i = 0; i < 20000; ++i) {
        std::array<uint8_t, 16> addr{};
        for (size_t g = 0; g < 8; ++g) {
            const uint32_t roll = rng() % 4;
            const uint16_t value = roll < 2 ? 0 : roll == 2 ? 1 : static_cast<uint16_t>(rng());
            addr[2 * g] = static_cast<uint8_t>(value >> 8);
            addr[2 * g + 1] = static_cast<uint8_t>(value);
        }
        bool first_five_zero = true;
        for (size_t b = 0; b < 10; ++b) {
            first_five_zero = first_five_zero && addr[b] == 0;
        }
        if (first_five_zero) {
            continue;  // where inet_ntop may choose dotted-quad forms
        }
        char expected[INET6_ADDRSTRLEN];
        ASSERT_NE(inet_ntop(AF_INET6, addr.data(), expected, sizeof(expected)), nullptr);
        EXPECT_EQ(format_ip(addr), expected);
    }
}

TEST(LanguageOfExecutable, InterpretersByNameAndNothingElse) {
    for (const auto& [exe, language] : std::vector<std::pair<std::string, std::string>>{
             {"python3", "python"},
             {"python3.11", "python"},
             {"python", "python"},
             {"node", "nodejs"},
             {"nodejs", "nodejs"},
             {"java", "java"},
             {"ruby3.1", "ruby"},
             {"php-fpm8.2", "php"},
             {"dotnet", "dotnet"},
             {"beam.smp", "erlang"},
             {"nginx", ""},
             {"checkout", ""},
             {"python3-config", ""},
             {"nodemon", ""},
             {"javac", ""},
             {"", ""},
         }) {
        EXPECT_EQ(language_of_executable(exe), language) << exe;
    }
}

struct HostCpuCase {
    const char* name;
    std::string text;
    bool ok;
    uint64_t idle;
    uint64_t total;
};

class ParseHostCpuTimes : public testing::TestWithParam<HostCpuCase> {};

TEST_P(ParseHostCpuTimes, Table) {
    const HostCpuCase& c = GetParam();
    const auto times = parse_host_cpu_times(c.text);
    ASSERT_EQ(times.has_value(), c.ok) << c.text;
    if (c.ok) {
        EXPECT_EQ(times->idle, c.idle);
        EXPECT_EQ(times->total, c.total);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseHostCpuTimes,
    testing::Values(
        // Linux 6.18, 2 CPUs: idle 8733190 + iowait 8792; guest columns not summed.
        HostCpuCase{"real",
                    "cpu  1697954 0 1160693 8733190 8792 0 426678 2505 0 0\n"
                    "cpu0 763439 0 552947 4482214 1306 0 214263 1182 0 0\nintr 1 2 3\n",
                    true, 8741982, 12029812},
        HostCpuCase{"guest_not_counted_twice", "cpu  10 0 0 5 0 0 0 0 7 7\n", true, 5, 15},
        HostCpuCase{"old_kernel_four_columns", "cpu  4705 0 1379 95612\n", true, 95612, 101696},
        HostCpuCase{"no_trailing_newline", "cpu  1 2 3 4 5 6 7 8", true, 9, 36},
        HostCpuCase{"three_columns_no_idle", "cpu  1 2 3\n", false, 0, 0},
        HostCpuCase{"per_cpu_line_first", "cpu0 1 2 3 4 5\n", false, 0, 0},
        HostCpuCase{"empty", "", false, 0, 0},
        HostCpuCase{"not_a_number", "cpu  1 2 x 4 5\n", false, 0, 0},
        HostCpuCase{"negative", "cpu  1 2 -3 4 5\n", false, 0, 0},
        HostCpuCase{"overflow", "cpu  18446744073709551615 1 0 4\n", false, 0, 0},
        HostCpuCase{"column_too_big", "cpu  1 2 3 99999999999999999999999\n", false, 0, 0}),
    [](const testing::TestParamInfo<HostCpuCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace sonde::discovery
