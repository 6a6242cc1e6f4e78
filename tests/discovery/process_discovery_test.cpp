#include "discovery/process_discovery.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <re2/re2.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "discovery/proc_parsers.h"

namespace sonde::discovery {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

struct FakeProcess {
    uint32_t pid = 0;
    uint32_t ppid = 1;
    uint64_t start_time = 1000;
    std::string comm = "server";
    std::optional<std::string> exe = "/usr/bin/server";  // nullopt: no exe link
    std::string cmdline = "server\0--flag\0"s;
    std::string environ = "PATH=/usr/bin\0"s;
    std::vector<uint64_t> sockets;  // become fd 3, 4, ... -> "socket:[inode]"
};

struct FakeSocket {
    uint16_t port;
    uint64_t inode;
    uint8_t state = kTcpStateListen;
};

// A /proc look-alike in a temp dir, with just the files discovery reads.
class FakeProcTree {
public:
    FakeProcTree() {
        std::string pattern = (fs::temp_directory_path() / "sonde_fake_proc_XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        root_ = pattern;
    }
    ~FakeProcTree() {
        std::error_code ignored;
        fs::remove_all(root_, ignored);
    }
    FakeProcTree(const FakeProcTree&) = delete;
    FakeProcTree& operator=(const FakeProcTree&) = delete;

    const std::string& root() const { return root_; }

    void add(const FakeProcess& p) {
        const std::string dir = std::to_string(p.pid);
        remove(p.pid);
        fs::create_directories(root_ + "/" + dir + "/fd");
        write(dir + "/stat", stat_line(p));
        write(dir + "/cmdline", p.cmdline);
        write(dir + "/environ", p.environ);
        if (p.exe) {
            link(dir + "/exe", *p.exe);
        }
        int fd = 3;
        for (const uint64_t inode : p.sockets) {
            link(dir + "/fd/" + std::to_string(fd++), "socket:[" + std::to_string(inode) + "]");
        }
        // Ordinary files and pipes sit next to sockets in a real fd table.
        link(dir + "/fd/0", "/dev/null");
        link(dir + "/fd/1", "pipe:[99]");
    }

    void remove(uint32_t pid) { fs::remove_all(root_ + "/" + std::to_string(pid)); }

    void write(const std::string& relative, const std::string& content) {
        const fs::path path = fs::path(root_) / relative;
        fs::create_directories(path.parent_path());
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << content;
    }

    void link(const std::string& relative, const std::string& target) {
        const fs::path path = fs::path(root_) / relative;
        fs::create_directories(path.parent_path());
        std::error_code ignored;
        fs::remove(path, ignored);
        fs::create_symlink(target, path);
    }

    // `net_dir` is "<pid>/net" for a process's own namespace view or "net".
    void set_tcp(const std::string& net_dir, const std::vector<FakeSocket>& v4,
                 const std::vector<FakeSocket>& v6 = {}) {
        write(net_dir + "/tcp", table(v4, false));
        write(net_dir + "/tcp6", table(v6, true));
    }

private:
    static std::string stat_line(const FakeProcess& p) {
        return std::to_string(p.pid) + " (" + p.comm + ") S " + std::to_string(p.ppid) +
               " 1 1 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 " + std::to_string(p.start_time) +
               " 1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
    }

    static std::string table(const std::vector<FakeSocket>& sockets, bool ipv6) {
        std::string out = ipv6 ? "  sl  local_address                         remote_address    "
                                 "                    st tx_queue rx_queue tr tm->when retrnsmt"
                                 "   uid  timeout inode\n"
                               : "  sl  local_address rem_address   st tx_queue rx_queue tr "
                                 "tm->when retrnsmt   uid  timeout inode\n";
        const char* any = ipv6 ? "00000000000000000000000000000000" : "00000000";
        const char* loopback = ipv6 ? "00000000000000000000000001000000" : "0100007F";
        int slot = 0;
        for (const FakeSocket& s : sockets) {
            char row[256];
            const bool listen = s.state == kTcpStateListen;
            const int peer_port = listen ? 0 : 40000 + slot;
            std::snprintf(row, sizeof(row),
                          "%4d: %s:%04X %s:%04X %02X 00000000:00000000 00:00000000 00000000  "
                          "1000        0 %llu 1 0000000000000000 100 0 0 10 0\n",
                          slot, listen ? any : loopback, s.port, listen ? any : loopback, peer_port,
                          s.state, static_cast<unsigned long long>(s.inode));
            out += row;
            ++slot;
        }
        return out;
    }

    std::string root_;
};

// Changes as short strings, so a whole sequence is one readable assertion.
std::vector<std::string> describe(const std::vector<DiscoveryChange>& changes) {
    std::vector<std::string> out;
    for (const DiscoveryChange& c : changes) {
        if (c.kind == DiscoveryChange::Kind::Instrument) {
            EXPECT_NE(c.identity, nullptr);
            out.push_back("instrument " + std::to_string(c.pid) + " " +
                          (c.identity ? c.identity->service_name : "?"));
        } else {
            EXPECT_EQ(c.identity, nullptr);
            out.push_back("forget " + std::to_string(c.pid));
        }
    }
    return out;
}

using Lines = std::vector<std::string>;

DiscoveryOptions options_for(const FakeProcTree& tree) {
    DiscoveryOptions options;
    options.proc_root = tree.root();
    return options;
}

PortSet ports(std::string_view text) {
    return std::get<PortSet>(PortSet::parse(text));
}

Selector by_exe(std::string regex) {
    Selector s;
    s.exe_path_regex = std::move(regex);
    return s;
}

Selector by_ports(std::string_view text) {
    Selector s;
    s.open_ports = ports(text);
    return s;
}

Selector named(Selector s, std::string name, std::string namespace_name = "") {
    s.name = std::move(name);
    s.namespace_name = std::move(namespace_name);
    return s;
}

class ProcessDiscoveryFake : public testing::Test {
protected:
    // 100 listens on 8080 (v4); 101 listens on 9090 (v6); 102 only has an
    // accepted connection whose local port is 8080; 103 has no sockets.
    void add_standard_processes() {
        tree.add({.pid = 100,
                  .start_time = 5000,
                  .comm = "nginx",
                  .exe = "/usr/sbin/nginx",
                  .sockets = {7001, 7002}});
        tree.add(
            {.pid = 101, .comm = "python3", .exe = "/opt/py/bin/python3.11", .sockets = {7101}});
        tree.add({.pid = 102, .comm = "worker", .exe = "/usr/bin/worker", .sockets = {7201}});
        tree.add({.pid = 103, .comm = "cron", .exe = "/usr/sbin/cron"});
        const std::vector<FakeSocket> v4 = {
            {8080, 7001}, {8080, 7201, kTcpStateEstablished}, {22, 6000}};
        const std::vector<FakeSocket> v6 = {{9090, 7101}, {22, 6001}};
        for (const uint32_t pid : {100, 101, 102, 103}) {
            tree.set_tcp(std::to_string(pid) + "/net", v4, v6);
        }
    }

    FakeProcTree tree;
};

TEST_F(ProcessDiscoveryFake, MatchesAListenerOnAnOpenPort) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("8080")};
    ProcessDiscovery discovery(options);

    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 100 nginx"}));
    const pipeline::ServiceIdentity& id = *changes[0].identity;
    EXPECT_EQ(id.pid, 100u);
    EXPECT_EQ(id.start_time_ticks, 5000u);
    EXPECT_EQ(id.exe_path, "/usr/sbin/nginx");
    EXPECT_EQ(id.exe_name, "nginx");
    EXPECT_EQ(id.service_namespace, "");
    EXPECT_EQ(id.selector, "discovery.instrument[0] listens on port 8080");
    EXPECT_TRUE(discovery.is_tracked(100));
    EXPECT_EQ(discovery.tracked_count(), 1u);
    EXPECT_TRUE(discovery.has_selector());

    // Nothing changed: a second walk reports nothing.
    EXPECT_TRUE(discovery.rescan().empty());
}

TEST_F(ProcessDiscoveryFake, UnjudgedRescanSkipsProcessesAlreadyJudged) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("8080")};
    ProcessDiscovery discovery(options);
    ASSERT_EQ(describe(discovery.rescan()), (Lines{"instrument 100 nginx"}));

    // cron (103) starts listening on 8080 without any event reaching us: an
    // unjudged-only rescan does not look at it again, a full one does.
    tree.add({.pid = 103, .comm = "cron", .exe = "/usr/sbin/cron", .sockets = {7301}});
    tree.set_tcp("103/net", {{8080, 7301}}, {});
    using Scope = ProcessDiscovery::RescanScope;
    EXPECT_TRUE(discovery.rescan(Scope::Unjudged).empty());
    // A process never judged is evaluated by either.
    tree.add({.pid = 104, .comm = "api", .exe = "/usr/bin/api", .sockets = {7401}});
    tree.set_tcp("104/net", {{8080, 7401}}, {});
    EXPECT_EQ(describe(discovery.rescan(Scope::Unjudged)), (Lines{"instrument 104 api"}));
    EXPECT_EQ(describe(discovery.rescan(Scope::Full)), (Lines{"instrument 103 cron"}));
}

TEST_F(ProcessDiscoveryFake, MatchesAnIpv6ListenerAndPortRanges) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("9000-9100")};
    ProcessDiscovery discovery(options);
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 101 python3.11"}));
    EXPECT_EQ(changes[0].identity->selector, "discovery.instrument[0] listens on port 9090");
}

TEST_F(ProcessDiscoveryFake, ListenerOnAnotherProcessesSocketDoesNotMatch) {
    // 104 has a socket, but the 8080 listener's inode belongs to 100 only.
    add_standard_processes();
    tree.add({.pid = 104, .exe = "/usr/bin/client", .sockets = {9999}});
    tree.set_tcp("104/net", {{8080, 7001}, {5555, 9999, kTcpStateEstablished}});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("8080,5555")};
    ProcessDiscovery discovery(options);
    EXPECT_EQ(describe(discovery.rescan()), (Lines{"instrument 100 nginx"}));
}

TEST_F(ProcessDiscoveryFake, MatchesAClientConnectedToAnOpenPort) {
    // Connections outlive a missed connect event: the walk finds them too.
    tree.add({.pid = 10, .exe = "/usr/bin/api", .sockets = {800}});
    tree.add({.pid = 11, .exe = "/usr/bin/batch", .sockets = {801}});
    tree.add({.pid = 12, .exe = "/usr/bin/postgres", .sockets = {802, 803}});
    tree.write("net/tcp",
               "  sl  local_address rem_address   st\n"
               // 10 -> postgres:5432 established; 11 still connecting (SYN_SENT)
               "   0: 0100007F:D431 0100007F:1538 01 0:0 0:0 0 0 0 800 1 0 20 4 30 10 -1\n"
               "   1: 0100007F:D432 0100007F:1538 02 0:0 0:0 0 0 0 801 1 0 20 4 30 10 -1\n"
               // postgres: the listener and its side of 10's connection
               "   2: 0100007F:1538 00000000:0000 0A 0:0 0:0 0 0 0 802 1 0 100 0 0 10 0\n"
               "   3: 0100007F:1538 0100007F:D431 01 0:0 0:0 0 0 0 803 1 0 20 4 30 10 -1\n");
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("5432")};
    ProcessDiscovery discovery(options);
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes),
              (Lines{"instrument 10 api", "instrument 11 batch", "instrument 12 postgres"}));
    EXPECT_EQ(changes[0].identity->selector, "discovery.instrument[0] connects to port 5432");
    EXPECT_EQ(changes[2].identity->selector, "discovery.instrument[0] listens on port 5432");

    // Listener mode ignores clients.
    DiscoveryOptions listeners = options_for(tree);
    listeners.instrument_all_listeners = true;
    ProcessDiscovery listener_discovery(listeners);
    EXPECT_EQ(describe(listener_discovery.rescan()), (Lines{"instrument 12 postgres"}));
}

TEST_F(ProcessDiscoveryFake, MatchesByExecutablePathRegex) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("python")};
    ProcessDiscovery discovery(options);
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 101 python3.11"}));
    EXPECT_EQ(changes[0].identity->selector, "discovery.instrument[0] exe_path ~ \"python\"");
}

TEST_F(ProcessDiscoveryFake, SelectorsAreOred) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("^/usr/sbin/cr"), by_ports("8080")};
    ProcessDiscovery discovery(options);
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 100 nginx", "instrument 103 cron"}));
    EXPECT_EQ(changes[0].identity->selector, "discovery.instrument[1] listens on port 8080");
    EXPECT_EQ(changes[1].identity->selector,
              "discovery.instrument[0] exe_path ~ \"^/usr/sbin/cr\"");
}

TEST_F(ProcessDiscoveryFake, NoSelectorMeansEveryListenerWhenAllowed) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument_all_listeners = true;
    ProcessDiscovery discovery(options);
    EXPECT_FALSE(discovery.has_selector());
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 100 nginx", "instrument 101 python3.11"}));
    EXPECT_EQ(changes[0].identity->selector, "any listening socket");
}

TEST_F(ProcessDiscoveryFake, NoSelectorAndNoListenerModeMatchesNothing) {
    add_standard_processes();
    ProcessDiscovery discovery(options_for(tree));
    EXPECT_TRUE(discovery.rescan().empty());
    EXPECT_TRUE(discovery.on_listen(100, 8080).empty());
    EXPECT_TRUE(discovery.on_exec(100).empty());
}

TEST_F(ProcessDiscoveryFake, SelectorsTurnOffListenerMode) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument_all_listeners = true;
    options.instrument = {by_exe("cron")};
    ProcessDiscovery discovery(options);
    EXPECT_EQ(describe(discovery.rescan()), (Lines{"instrument 103 cron"}));
}

TEST_F(ProcessDiscoveryFake, NeverInstrumentsSelfInitOrKernelThreads) {
    const std::vector<FakeSocket> listener = {{8080, 1}};
    auto add_listener = [&](FakeProcess p) {
        p.sockets = {1};
        tree.add(p);
        tree.set_tcp(std::to_string(p.pid) + "/net", listener);
    };
    add_listener({.pid = 1, .ppid = 0, .comm = "init", .exe = "/sbin/init"});
    add_listener({.pid = 2, .ppid = 0, .comm = "kthreadd", .exe = std::nullopt, .cmdline = ""});
    add_listener({.pid = 30, .ppid = 2, .comm = "kworker/0:1", .exe = std::nullopt, .cmdline = ""});
    add_listener({.pid = 31, .ppid = 2, .comm = "odd_kthread", .exe = "/usr/bin/x"});
    add_listener({.pid = 40, .comm = "zombie", .exe = "/usr/bin/zombie", .cmdline = ""});
    add_listener({.pid = 41, .comm = "hidden", .exe = std::nullopt});
    add_listener({.pid = 50, .comm = "sonde", .exe = "/usr/bin/sonde"});
    add_listener({.pid = 60, .comm = "real", .exe = "/usr/bin/real"});

    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("8080")};
    options.never_instrument = {50};
    ProcessDiscovery discovery(options);
    EXPECT_EQ(describe(discovery.rescan()), (Lines{"instrument 60 real"}));
    for (const uint32_t pid : {1u, 2u, 30u, 31u, 40u, 41u, 50u}) {
        EXPECT_TRUE(discovery.on_exec(pid).empty()) << pid;
        if (pid == 40) continue;  // see below
        EXPECT_TRUE(discovery.on_listen(pid, 8080).empty()) << pid;
        EXPECT_TRUE(discovery.on_connect(pid, 8080).empty()) << pid;
    }
    // Only 41 gets as far as reading its exe link: once per walk and per event.
    EXPECT_EQ(discovery.stats().processes_unreadable, 4u);
    // A socket event was made by a live process: one that is a zombie by the time the event
    // is handled (a short-lived client) still counts.
    EXPECT_EQ(describe(discovery.on_connect(40, 8080)), (Lines{"instrument 40 zombie"}));
}

TEST_F(ProcessDiscoveryFake, ServiceNameFromOtelServiceName) {
    tree.add({.pid = 10,
              .exe = "/usr/bin/java",
              .environ = "HOME=/\0OTEL_SERVICE_NAME=checkout\0"
                         "OTEL_RESOURCE_ATTRIBUTES=service.name=ignored,"
                         "service.namespace=shop\0"s});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("java")};
    ProcessDiscovery discovery(options);
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 10 checkout"}));
    EXPECT_EQ(changes[0].identity->service_namespace, "shop");
    EXPECT_EQ(changes[0].identity->exe_name, "java");
}

TEST_F(ProcessDiscoveryFake, ServiceNameFromResourceAttributes) {
    tree.add({.pid = 10,
              .exe = "/usr/bin/node",
              .environ = "OTEL_SERVICE_NAME=\0"  // empty counts as unset
                         "OTEL_RESOURCE_ATTRIBUTES=team=a, service.name=cart%20api ,"
                         "service.namespace=shop\0"s});
    tree.add({.pid = 11,
              .exe = "/usr/bin/node",
              .environ = "OTEL_RESOURCE_ATTRIBUTES=service.name=bad%zz\0"s});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("node")};
    ProcessDiscovery discovery(options);
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 10 cart api", "instrument 11 node"}));
    EXPECT_EQ(changes[0].identity->service_namespace, "shop");
    EXPECT_EQ(changes[1].identity->service_namespace, "");
}

TEST_F(ProcessDiscoveryFake, ExplicitServiceNameWins) {
    tree.add({.pid = 10,
              .exe = "/usr/bin/java",
              .environ = "OTEL_SERVICE_NAME=checkout\0"
                         "OTEL_RESOURCE_ATTRIBUTES=service.namespace=shop\0"s});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("java")};
    options.service_name = "fixed";
    options.service_namespace = "ops";
    ProcessDiscovery discovery(options);
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 10 fixed"}));
    EXPECT_EQ(changes[0].identity->service_namespace, "ops");
}

TEST_F(ProcessDiscoveryFake, ExplicitNameStillTakesNamespaceFromEnviron) {
    tree.add({.pid = 10,
              .exe = "/usr/bin/java",
              .environ = "OTEL_RESOURCE_ATTRIBUTES=service.namespace=shop\0"s});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("java")};
    options.service_name = "fixed";
    ProcessDiscovery discovery(options);
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 10 fixed"}));
    EXPECT_EQ(changes[0].identity->service_namespace, "shop");
}

TEST_F(ProcessDiscoveryFake, UnreadableEnvironFallsBackToExeName) {
    tree.add({.pid = 10, .exe = "/usr/bin/java"});
    fs::remove(tree.root() + "/10/environ");
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("java")};
    ProcessDiscovery discovery(options);
    EXPECT_EQ(describe(discovery.rescan()), (Lines{"instrument 10 java"}));
}

TEST_F(ProcessDiscoveryFake, DeletedExecutableKeepsItsPath) {
    tree.add({.pid = 10, .exe = "/srv/app/server (deleted)"});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("server$")};
    ProcessDiscovery discovery(options);
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 10 server"}));
    EXPECT_EQ(changes[0].identity->exe_path, "/srv/app/server");
}

TEST_F(ProcessDiscoveryFake, ExitAndDisappearanceForget) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("8080,9090")};
    ProcessDiscovery discovery(options);
    ASSERT_EQ(describe(discovery.rescan()),
              (Lines{"instrument 100 nginx", "instrument 101 python3.11"}));

    EXPECT_EQ(describe(discovery.on_exit(100)), (Lines{"forget 100"}));
    EXPECT_TRUE(discovery.on_exit(100).empty());
    EXPECT_TRUE(discovery.on_exit(103).empty());  // never tracked
    EXPECT_FALSE(discovery.is_tracked(100));

    // Missed exit: the directory is simply gone at the next walk.
    tree.remove(101);
    EXPECT_EQ(describe(discovery.rescan()), (Lines{"forget 101", "instrument 100 nginx"}));
    EXPECT_EQ(discovery.tracked_count(), 1u);
}

TEST_F(ProcessDiscoveryFake, PidReuseForgetsThenInstrumentsTheNewProcess) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("8080")};
    ProcessDiscovery discovery(options);
    ASSERT_EQ(describe(discovery.rescan()), (Lines{"instrument 100 nginx"}));

    // Same pid, later start time, another program still on the port.
    tree.add({.pid = 100,
              .start_time = 9000,
              .comm = "envoy",
              .exe = "/usr/bin/envoy",
              .sockets = {7001}});
    tree.set_tcp("100/net", {{8080, 7001}});
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"forget 100", "instrument 100 envoy"}));
    EXPECT_EQ(changes[1].identity->start_time_ticks, 9000u);

    // Reused by something that does not match: only the forget.
    tree.add({.pid = 100, .start_time = 9500, .exe = "/usr/bin/other"});
    EXPECT_EQ(describe(discovery.rescan()), (Lines{"forget 100"}));
    EXPECT_FALSE(discovery.is_tracked(100));
}

TEST_F(ProcessDiscoveryFake, ExecReevaluatesTheProcess) {
    tree.add({.pid = 10, .exe = "/usr/bin/bash"});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("python|ruby")};
    ProcessDiscovery discovery(options);
    EXPECT_TRUE(discovery.rescan().empty());

    // bash execs python: now it matches.
    tree.add({.pid = 10, .exe = "/usr/bin/python3"});
    auto changes = discovery.on_exec(10);
    ASSERT_EQ(describe(changes), (Lines{"instrument 10 python3"}));
    EXPECT_EQ(changes[0].identity->selector, "discovery.instrument[0] exe_path ~ \"python|ruby\"");

    // The same exec reported twice changes nothing.
    EXPECT_TRUE(discovery.on_exec(10).empty());

    // python execs ruby: still matches, but it is another program.
    tree.add({.pid = 10, .exe = "/usr/bin/ruby"});
    EXPECT_EQ(describe(discovery.on_exec(10)), (Lines{"forget 10", "instrument 10 ruby"}));

    // ruby execs something that does not match.
    tree.add({.pid = 10, .exe = "/usr/bin/cat"});
    EXPECT_EQ(describe(discovery.on_exec(10)), (Lines{"forget 10"}));
    EXPECT_FALSE(discovery.is_tracked(10));

    // An exec of a pid that is already gone.
    tree.remove(10);
    EXPECT_TRUE(discovery.on_exec(10).empty());
}

TEST_F(ProcessDiscoveryFake, ExecThatChangesOnlyTheServiceNameReinstruments) {
    tree.add({.pid = 10, .exe = "/usr/bin/java", .environ = "OTEL_SERVICE_NAME=a\0"s});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("java")};
    ProcessDiscovery discovery(options);
    ASSERT_EQ(describe(discovery.rescan()), (Lines{"instrument 10 a"}));
    tree.add({.pid = 10, .exe = "/usr/bin/java", .environ = "OTEL_SERVICE_NAME=b\0"s});
    EXPECT_EQ(describe(discovery.on_exec(10)), (Lines{"forget 10", "instrument 10 b"}));
}

TEST_F(ProcessDiscoveryFake, ListenEventsOnOpenPorts) {
    // No socket in /proc yet: the kernel event alone is the evidence.
    tree.add({.pid = 10, .exe = "/usr/bin/app"});
    tree.add({.pid = 11, .exe = "/usr/bin/app2"});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("8080")};
    ProcessDiscovery discovery(options);
    EXPECT_TRUE(discovery.rescan().empty());

    EXPECT_TRUE(discovery.on_listen(10, 9090).empty());
    const auto changes = discovery.on_listen(10, 8080);
    ASSERT_EQ(describe(changes), (Lines{"instrument 10 app"}));
    EXPECT_EQ(changes[0].identity->selector, "discovery.instrument[0] listens on port 8080");
    EXPECT_TRUE(discovery.on_listen(10, 8080).empty());   // already tracked
    EXPECT_TRUE(discovery.on_listen(999, 8080).empty());  // no such process

    // A later walk keeps it: only vanished or reused pids are forgotten.
    EXPECT_TRUE(discovery.rescan().empty());
    EXPECT_TRUE(discovery.is_tracked(10));
    EXPECT_FALSE(discovery.is_tracked(11));
}

TEST_F(ProcessDiscoveryFake, ConnectEventsOnOpenPorts) {
    tree.add({.pid = 10, .exe = "/usr/bin/client"});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("5432")};
    ProcessDiscovery discovery(options);
    EXPECT_TRUE(discovery.on_connect(10, 80).empty());
    EXPECT_EQ(describe(discovery.on_connect(10, 5432)), (Lines{"instrument 10 client"}));
    EXPECT_TRUE(discovery.on_connect(10, 5432).empty());
}

TEST_F(ProcessDiscoveryFake, ShortLivedClientIsJudgedOnWhatItsExecShowed) {
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("5432")};
    ProcessDiscovery discovery(options);
    // Seen at exec, then gone (exited) before its connect() event is handled.
    tree.add({.pid = 10, .start_time = 500, .exe = "/usr/bin/curl"});
    EXPECT_TRUE(discovery.on_exec(10).empty());
    tree.remove(10);
    const auto changes = discovery.on_connect(10, 5432);
    ASSERT_EQ(describe(changes), (Lines{"instrument 10 curl"}));
    EXPECT_EQ(changes[0].identity->exe_path, "/usr/bin/curl");
    EXPECT_EQ(changes[0].identity->start_time_ticks, 500u);
    EXPECT_EQ(describe(discovery.on_exit(10)), (Lines{"forget 10"}));

    // A zombie: stat still there, exe link gone.
    tree.add({.pid = 11, .start_time = 600, .exe = "/usr/bin/curl"});
    EXPECT_TRUE(discovery.on_exec(11).empty());
    tree.add({.pid = 11, .start_time = 600, .exe = std::nullopt, .cmdline = ""});
    EXPECT_EQ(describe(discovery.on_connect(11, 5432)), (Lines{"instrument 11 curl"}));

    // Pid reuse: another process with that pid is not taken for the remembered one.
    tree.add({.pid = 12, .start_time = 700, .exe = "/usr/bin/curl"});
    EXPECT_TRUE(discovery.on_exec(12).empty());
    tree.add({.pid = 12, .start_time = 701, .exe = std::nullopt});
    EXPECT_TRUE(discovery.on_connect(12, 5432).empty());

    // An exit forgets what the exec showed.
    tree.add({.pid = 13, .start_time = 800, .exe = "/usr/bin/curl"});
    EXPECT_TRUE(discovery.on_exec(13).empty());
    EXPECT_TRUE(discovery.on_exit(13).empty());
    tree.remove(13);
    EXPECT_TRUE(discovery.on_connect(13, 5432).empty());
}

TEST_F(ProcessDiscoveryFake, ListenerModeUsesListenButNotConnectEvents) {
    tree.add({.pid = 10, .exe = "/usr/bin/client"});
    tree.add({.pid = 11, .exe = "/usr/bin/server"});
    DiscoveryOptions options = options_for(tree);
    options.instrument_all_listeners = true;
    ProcessDiscovery discovery(options);
    EXPECT_TRUE(discovery.on_connect(10, 443).empty());
    const auto changes = discovery.on_listen(11, 31337);
    ASSERT_EQ(describe(changes), (Lines{"instrument 11 server"}));
    EXPECT_EQ(changes[0].identity->selector, "any listening socket");
}

TEST_F(ProcessDiscoveryFake, FallsBackToTheRootNetTables) {
    tree.add({.pid = 10, .exe = "/usr/bin/app", .sockets = {500}});
    tree.set_tcp("net", {}, {{8443, 500}});
    DiscoveryOptions options = options_for(tree);
    options.proc_root = tree.root() + "/";  // a trailing slash is harmless
    options.instrument = {by_ports("8443")};
    ProcessDiscovery discovery(options);
    EXPECT_EQ(describe(discovery.rescan()), (Lines{"instrument 10 app"}));
}

TEST_F(ProcessDiscoveryFake, ProcessTablesWinOverTheRootTables) {
    // The root tables are the reader's namespace; the process's own differ.
    tree.add({.pid = 10, .exe = "/usr/bin/app", .sockets = {500}});
    tree.set_tcp("net", {{8443, 500}});
    tree.set_tcp("10/net", {{9443, 500}});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("8443")};
    ProcessDiscovery discovery(options);
    EXPECT_TRUE(discovery.rescan().empty());
}

TEST_F(ProcessDiscoveryFake, OneTableReadPerNetworkNamespaceDuringAWalk) {
    // 10 and 11 share a namespace, so 11 uses the table read for 10 even
    // though its own view (absent here) would have fallen back to the root.
    tree.add({.pid = 10, .exe = "/usr/bin/a", .sockets = {500}});
    tree.add({.pid = 11, .exe = "/usr/bin/b", .sockets = {501}});
    tree.add({.pid = 12, .exe = "/usr/bin/c", .sockets = {502}});
    tree.link("10/ns/net", "net:[4026531840]");
    tree.link("11/ns/net", "net:[4026531840]");
    tree.link("12/ns/net", "net:[4026532000]");
    tree.set_tcp("10/net", {{8080, 500}, {8081, 501}});
    tree.set_tcp("net", {{8082, 502}});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("8080-8082")};
    ProcessDiscovery discovery(options);
    EXPECT_EQ(describe(discovery.rescan()),
              (Lines{"instrument 10 a", "instrument 11 b", "instrument 12 c"}));
}

TEST_F(ProcessDiscoveryFake, GarbageFilesAreSkippedAndCounted) {
    tree.add({.pid = 10, .exe = "/usr/bin/app", .sockets = {500}});
    tree.write("10/net/tcp",
               "  sl  local_address rem_address   st\n"
               "   0: 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 500 1 0 100 0 0 10 0\n"
               "   1: zzzz\n"
               "   2: 00000000:1F91 00000000:00");
    tree.add({.pid = 11, .exe = "/usr/bin/app"});
    tree.write("11/stat", "garbage");
    tree.write("12/stat", std::string(100000, '('));
    tree.write("not_a_pid/stat", "1 (x) S 0");
    tree.write("0013/stat", "13 (x) S 0");
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("8080")};
    ProcessDiscovery discovery(options);
    EXPECT_EQ(describe(discovery.rescan()), (Lines{"instrument 10 app"}));
    EXPECT_EQ(discovery.stats().tcp_rows_malformed, 2u);
    EXPECT_EQ(discovery.stats().files_truncated, 1u);  // the 100 kB stat
}

TEST_F(ProcessDiscoveryFake, EmptyOrMissingRootFindsNothing) {
    DiscoveryOptions options = options_for(tree);
    options.instrument_all_listeners = true;
    ProcessDiscovery empty(options);
    EXPECT_TRUE(empty.rescan().empty());
    options.proc_root = tree.root() + "/does/not/exist";
    ProcessDiscovery missing(options);
    EXPECT_TRUE(missing.rescan().empty());
}

TEST(ProcessDiscovery, InvalidRegexThrows) {
    DiscoveryOptions options;
    options.instrument = {by_exe("(unclosed")};
    EXPECT_THROW(ProcessDiscovery{options}, std::invalid_argument);
}

TEST(ProcessDiscovery, SelectorWithoutCriteriaThrows) {
    DiscoveryOptions options;
    options.instrument = {named(Selector{}, "checkout", "shop")};
    EXPECT_THROW(ProcessDiscovery{options}, std::invalid_argument);
    options.instrument = {};
    options.exclude = {Selector{}};
    EXPECT_THROW(ProcessDiscovery{options}, std::invalid_argument);
}

// ---- Selectors: ORed lists, ANDed fields, exclusions, naming, Kubernetes.

TEST_F(ProcessDiscoveryFake, FieldsInsideASelectorAreAnded) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    // nginx matches both; python3.11 only the exe (its port is 9090); worker
    // only the port (a client of 8080, not matching the exe).
    Selector both = by_exe("nginx|python|worker");
    both.open_ports = ports("8080");
    options.instrument = {both};
    ProcessDiscovery discovery(options);
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 100 nginx"}));
    EXPECT_EQ(
        changes[0].identity->selector,
        "discovery.instrument[0] exe_path ~ \"nginx|python|worker\" and listens on port 8080");
    // Each field alone picks more: the AND is what leaves 101 and 102 out.
    options.instrument = {by_exe("nginx|python|worker")};
    EXPECT_EQ(ProcessDiscovery(options).rescan().size(), 3u);
}

TEST_F(ProcessDiscoveryFake, AndedSelectorMatchesOnceTheProcessListens) {
    // The late-binding server: its exec alone is not enough, its listen is.
    tree.add({.pid = 10, .exe = "/srv/checkout"});
    tree.add({.pid = 11, .exe = "/srv/other"});
    DiscoveryOptions options = options_for(tree);
    Selector both = by_exe("checkout$");
    both.open_ports = ports("8080");
    options.instrument = {both};
    ProcessDiscovery discovery(options);
    EXPECT_TRUE(discovery.rescan().empty());
    EXPECT_TRUE(discovery.on_exec(10).empty());
    EXPECT_TRUE(discovery.on_listen(10, 9090).empty());
    EXPECT_TRUE(discovery.on_listen(11, 8080).empty());
    const auto changes = discovery.on_listen(10, 8080);
    ASSERT_EQ(describe(changes), (Lines{"instrument 10 checkout"}));
    EXPECT_EQ(changes[0].identity->selector,
              "discovery.instrument[0] exe_path ~ \"checkout$\" and listens on port 8080");
}

TEST_F(ProcessDiscoveryFake, TopLevelOpenPortAndExecutableNameAreOneAndedSelector) {
    // What the agent builds from open_port + executable_name (Beyla: both must hold).
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    Selector top;
    top.exe_path_regex = "python";
    top.open_ports = ports("8080");
    top.origin = "open_port+executable_name";
    options.instrument = {top};
    ProcessDiscovery discovery(options);
    EXPECT_TRUE(discovery.rescan().empty());  // python is on 9090, nginx is not python
    options.instrument[0].open_ports = ports("8080,9090");
    const auto changes = ProcessDiscovery(options).rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 101 python3.11"}));
    EXPECT_EQ(changes[0].identity->selector,
              "open_port+executable_name exe_path ~ \"python\" and listens on port 9090");
}

TEST_F(ProcessDiscoveryFake, ExclusionsWin) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("/")};
    options.exclude = {by_exe("cron$"), by_ports("9090")};
    ProcessDiscovery discovery(options);
    EXPECT_EQ(describe(discovery.rescan()),
              (Lines{"instrument 100 nginx", "instrument 102 worker"}));
    for (const uint32_t pid : {101u, 103u}) {
        EXPECT_TRUE(discovery.on_exec(pid).empty()) << pid;
        EXPECT_FALSE(discovery.is_tracked(pid)) << pid;
    }
    // An exclusion with two fields needs both, like any selector.
    Selector narrow = by_exe("cron$");
    narrow.open_ports = ports("8080");
    options.exclude = {narrow};
    EXPECT_EQ(ProcessDiscovery(options).rescan().size(), 4u);
}

TEST_F(ProcessDiscoveryFake, ExclusionWinsWhenTheExcludedPortComesLater) {
    tree.add({.pid = 10, .exe = "/usr/bin/java"});
    tree.add({.pid = 11, .exe = "/usr/bin/java"});
    tree.add({.pid = 12, .exe = "/usr/bin/java"});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("java")};
    options.exclude = {by_ports("22")};
    ProcessDiscovery discovery(options);
    ASSERT_EQ(describe(discovery.rescan()),
              (Lines{"instrument 10 java", "instrument 11 java", "instrument 12 java"}));

    // A listen event on the excluded port: forgotten at once.
    EXPECT_TRUE(discovery.on_listen(10, 8080).empty());
    EXPECT_EQ(describe(discovery.on_listen(10, 22)), (Lines{"forget 10"}));
    EXPECT_TRUE(discovery.on_listen(10, 22).empty());  // stays out
    EXPECT_FALSE(discovery.is_tracked(10));
    tree.add({.pid = 10, .exe = "/usr/bin/java", .sockets = {901}});  // /proc catches up
    tree.set_tcp("10/net", {{22, 901}});

    // No event seen: the next walk finds the socket and forgets it too.
    tree.add({.pid = 11, .exe = "/usr/bin/java", .sockets = {900}});
    tree.set_tcp("11/net", {{22, 900}});
    EXPECT_EQ(describe(discovery.rescan()), (Lines{"forget 11"}));
    EXPECT_TRUE(discovery.rescan().empty());
    EXPECT_TRUE(discovery.is_tracked(12));
}

TEST_F(ProcessDiscoveryFake, ExclusionsApplyInListenerMode) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument_all_listeners = true;
    options.exclude = {by_exe("python")};
    ProcessDiscovery discovery(options);
    EXPECT_EQ(describe(discovery.rescan()), (Lines{"instrument 100 nginx"}));
    EXPECT_TRUE(discovery.on_listen(101, 9091).empty());
}

TEST_F(ProcessDiscoveryFake, SelectorNameBeatsOtelServiceNameBeatsExeName) {
    // Acceptance 5: OTEL_SERVICE_NAME names a server; no name means the
    // executable's; a selector's name beats both.
    const std::string checkout_env = "OTEL_SERVICE_NAME=checkout\0"s;
    tree.add({.pid = 10, .exe = "/srv/go_http_server", .environ = checkout_env, .sockets = {1}});
    tree.add({.pid = 11, .exe = "/srv/go_http_server", .sockets = {2}});
    tree.add({.pid = 12, .exe = "/srv/go_http_server", .environ = checkout_env, .sockets = {3}});
    for (const uint32_t pid : {10, 11, 12}) {
        tree.set_tcp(std::to_string(pid) + "/net", {{8081, 1}, {8082, 2}, {8083, 3}});
    }
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("8081"), by_ports("8082"),
                          named(by_ports("8083"), "from-selector")};
    ProcessDiscovery discovery(options);
    EXPECT_EQ(describe(discovery.rescan()),
              (Lines{"instrument 10 checkout", "instrument 11 go_http_server",
                     "instrument 12 from-selector"}));
}

TEST_F(ProcessDiscoveryFake, SelectorNameBeatsTheAgentWideName) {
    tree.add({.pid = 10, .exe = "/usr/bin/api", .environ = "OTEL_SERVICE_NAME=own\0"s});
    tree.add({.pid = 11, .exe = "/usr/bin/web", .environ = "OTEL_SERVICE_NAME=own\0"s});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {named(by_exe("api$"), "api-from-selector"), by_exe("web$")};
    options.service_name = "agent-wide";
    ProcessDiscovery discovery(options);
    EXPECT_EQ(describe(discovery.rescan()),
              (Lines{"instrument 10 api-from-selector", "instrument 11 agent-wide"}));
}

TEST_F(ProcessDiscoveryFake, TheFirstMatchingSelectorNamesTheService) {
    tree.add({.pid = 10, .exe = "/usr/bin/api"});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("nomatch"), named(by_exe("api"), "second", "ns2"),
                          named(by_exe("/usr"), "third", "ns3")};
    ProcessDiscovery discovery(options);
    const auto changes = discovery.rescan();
    ASSERT_EQ(describe(changes), (Lines{"instrument 10 second"}));
    EXPECT_EQ(changes[0].identity->service_namespace, "ns2");
    EXPECT_EQ(changes[0].identity->selector, "discovery.instrument[1] exe_path ~ \"api\"");
}

TEST_F(ProcessDiscoveryFake, NamespaceRules) {
    const std::string env = "OTEL_RESOURCE_ATTRIBUTES=service.namespace=from-env\0"s;
    tree.add({.pid = 10, .exe = "/usr/bin/a", .environ = env});
    tree.add({.pid = 11, .exe = "/usr/bin/b", .environ = env});
    tree.add({.pid = 12, .exe = "/usr/bin/c"});
    DiscoveryOptions options = options_for(tree);
    // A selector with a name but no namespace still lets the namespace fall through.
    options.instrument = {named(by_exe("a$"), "", "from-selector"), named(by_exe("b$"), "bee"),
                          by_exe("c$")};
    auto namespaces = [&](const DiscoveryOptions& o) {
        std::vector<std::string> out;
        for (const DiscoveryChange& c : ProcessDiscovery(o).rescan()) {
            out.push_back(c.identity->service_name + "/" + c.identity->service_namespace);
        }
        return out;
    };
    EXPECT_EQ(namespaces(options), (Lines{"a/from-selector", "bee/from-env", "c/"}));
    options.service_namespace = "agent";
    EXPECT_EQ(namespaces(options), (Lines{"a/from-selector", "bee/agent", "c/agent"}));
}

TEST_F(ProcessDiscoveryFake, KubernetesSelectorsMatchNothingAndAreReportedInactive) {
    add_standard_processes();
    DiscoveryOptions options = options_for(tree);
    options.instrument_all_listeners = true;  // must not kick in: there are selectors
    Selector payments;
    payments.k8s_namespace = "payments";
    payments.origin = "discovery.instrument[0] (config.yml:4)";
    Selector labelled;
    labelled.k8s_pod_labels = {{"instrument", "beyla"}, {"tier", "web"}};
    // Mixed with active criteria the selector still matches nothing: it
    // would otherwise pick processes outside the wanted deployment.
    Selector mixed = by_exe("nginx");
    mixed.open_ports = ports("8080");
    mixed.k8s_deployment_name = "shop";
    mixed.k8s_pod_name = "shop-1";
    Selector owner = by_exe("nginx");
    owner.other_inactive_criteria = {{"k8s_owner_name", "shop"}};
    Selector containers;
    containers.other_inactive_criteria = {{"containers_only", "true"}};
    Selector excluded;
    excluded.k8s_namespace = "kube-system";
    options.instrument = {payments, labelled, mixed, owner, containers};
    options.exclude = {excluded};
    ProcessDiscovery discovery(options);
    EXPECT_TRUE(discovery.has_selector());
    EXPECT_TRUE(discovery.rescan().empty());
    EXPECT_TRUE(discovery.on_listen(100, 8080).empty());
    EXPECT_TRUE(discovery.on_exec(100).empty());
    EXPECT_TRUE(discovery.watched_ports().empty());
    EXPECT_EQ(discovery.inactive_criteria(),
              (Lines{"discovery.instrument[0] (config.yml:4): k8s_namespace=\"payments\"",
                     "discovery.instrument[1]: k8s_pod_labels={instrument=\"beyla\", "
                     "tier=\"web\"}",
                     "discovery.instrument[2]: k8s_pod_name=\"shop-1\" "
                     "k8s_deployment_name=\"shop\"",
                     "discovery.instrument[3]: k8s_owner_name=\"shop\"",
                     "discovery.instrument[4]: containers_only=\"true\"",
                     "discovery.exclude_instrument[0]: k8s_namespace=\"kube-system\""}));

    // An inactive exclusion excludes nothing.
    options.instrument = {by_ports("8080")};
    ProcessDiscovery with_active(options);
    EXPECT_EQ(describe(with_active.rescan()), (Lines{"instrument 100 nginx"}));
    EXPECT_EQ(with_active.inactive_criteria().size(), 1u);
}

TEST_F(ProcessDiscoveryFake, NoInactiveCriteriaWithoutKubernetesFields) {
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_exe("x"), by_ports("80")};
    options.exclude = {by_exe("y")};
    EXPECT_TRUE(ProcessDiscovery(options).inactive_criteria().empty());
}

TEST_F(ProcessDiscoveryFake, OriginNamesTheSelectorInTheIdentity) {
    tree.add({.pid = 10, .exe = "/srv/api-gateway"});
    DiscoveryOptions options = options_for(tree);
    Selector selector = by_exe("checkout|api-gateway");
    selector.origin = "discovery.instrument[2] (config.yml:7)";
    options.instrument = {selector};
    const auto changes = ProcessDiscovery(options).rescan();
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].identity->selector,
              "discovery.instrument[2] (config.yml:7) exe_path ~ \"checkout|api-gateway\"");
}

TEST(ProcessDiscoverySelectors, WatchedPortsAreTheUnionOfActiveInstrumentSelectors) {
    DiscoveryOptions options;
    Selector k8s = by_ports("7000");
    k8s.k8s_namespace = "payments";
    options.instrument = {by_ports("9000-9002,8080"), by_exe("x"), by_ports("443,8080"), k8s};
    options.exclude = {by_ports("22")};
    ProcessDiscovery discovery(options);
    EXPECT_EQ(discovery.watched_ports(), (std::vector<uint16_t>{443, 8080, 9000, 9001, 9002}));
    EXPECT_EQ(discovery.watched_ports(2), (std::vector<uint16_t>{443, 8080}));

    options.instrument = {by_ports("1-65535")};
    const auto capped = ProcessDiscovery(options).watched_ports();
    ASSERT_EQ(capped.size(), ProcessDiscovery::kMaxWatchedPorts);
    EXPECT_EQ(capped.front(), 1);
    EXPECT_EQ(capped.back(), ProcessDiscovery::kMaxWatchedPorts);

    options.instrument = {by_exe("x")};
    EXPECT_TRUE(ProcessDiscovery(options).watched_ports().empty());
}

TEST(ProcessDiscoverySelectors, EverySelectorProblemIsReportedWithItsOrigin) {
    DiscoveryOptions options;
    Selector name_only;
    name_only.name = "checkout";
    name_only.origin = "discovery.instrument[1] (config.yml:9)";
    Selector bad_label;
    bad_label.k8s_pod_labels = {{"", "x"}};
    options.instrument = {by_exe("ok"), name_only};
    options.exclude = {by_exe("(unclosed"), bad_label};
    const auto errors = validate_selectors(options);
    ASSERT_EQ(errors.size(), 3u);
    EXPECT_EQ(
        errors[0].rfind("discovery.instrument[1] (config.yml:9): selector has no criteria", 0), 0u)
        << errors[0];
    EXPECT_EQ(errors[1].rfind("discovery.exclude_instrument[0]: invalid exe_path regex "
                              "\"(unclosed\": missing )",
                              0),
              0u)
        << errors[1];
    EXPECT_EQ(errors[2], "discovery.exclude_instrument[1]: k8s_pod_labels has an empty label name");

    try {
        ProcessDiscovery discovery(options);
        ADD_FAILURE() << "constructed with invalid selectors";
    } catch (const std::invalid_argument& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(errors[0]), std::string::npos) << message;
        EXPECT_NE(message.find(errors[2]), std::string::npos) << message;
    }

    options.instrument = {by_exe("ok"), by_ports("80")};
    options.exclude = {};
    EXPECT_TRUE(validate_selectors(options).empty());
    EXPECT_NO_THROW(ProcessDiscovery{options});
}

TEST_F(ProcessDiscoveryFake, SocketsAndEnvironAreReadOnlyForCandidates) {
    // Garbage tcp rows and an oversized environ are counted when read, so the
    // counters show whether discovery looked at them.
    tree.add(
        {.pid = 10, .exe = "/usr/bin/idle", .environ = std::string(100000, 'x'), .sockets = {500}});
    tree.write("10/net/tcp",
               "  sl  local_address rem_address   st\n"
               "   0: 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 500 1 0 100 0 0 10 0\n"
               "   1: zzzz\n");
    DiscoveryOptions options = options_for(tree);
    Selector anded = by_exe("busy");  // fails on the exe, so its port is never checked
    anded.open_ports = ports("8080");
    options.instrument = {by_exe("other"), anded};
    options.exclude = {by_ports("8080")};  // only consulted for processes that matched
    ProcessDiscovery discovery(options);
    EXPECT_TRUE(discovery.rescan().empty());
    EXPECT_TRUE(discovery.on_exec(10).empty());
    EXPECT_EQ(discovery.stats().tcp_rows_malformed, 0u);
    EXPECT_EQ(discovery.stats().files_truncated, 0u);

    options.instrument = {by_ports("8080")};
    options.exclude = {};
    ProcessDiscovery by_port(options);
    EXPECT_EQ(describe(by_port.rescan()), (Lines{"instrument 10 idle"}));
    EXPECT_EQ(by_port.stats().tcp_rows_malformed, 1u);
    EXPECT_EQ(by_port.stats().files_truncated, 1u);  // the environ, read for naming
}

TEST_F(ProcessDiscoveryFake, ConnectEvidenceDoesNotCountAsListening) {
    tree.add({.pid = 10, .exe = "/usr/bin/client"});
    DiscoveryOptions options = options_for(tree);
    options.instrument = {by_ports("5432")};
    ProcessDiscovery discovery(options);
    const auto changes = discovery.on_connect(10, 5432);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].identity->selector, "discovery.instrument[0] connects to port 5432");
}

// ---- Against the real /proc, looking only at this test process, so no
// privilege is needed.

std::string self_exe() {
    std::error_code ec;
    return fs::read_symlink("/proc/self/exe", ec).string();
}

uint64_t self_start_time() {
    std::ifstream in("/proc/self/stat");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto stat = parse_proc_stat(text);
    return stat ? stat->start_time_ticks : 0;
}

TEST(ProcessDiscoveryRealProc, FindsThisTestProcessByItsExecutable) {
    const uint32_t self = static_cast<uint32_t>(::getpid());
    if (self == 1) {
        GTEST_SKIP() << "running as pid 1, which discovery never instruments";
    }
    const std::string exe = self_exe();
    ASSERT_FALSE(exe.empty());
    const uint64_t start = self_start_time();
    ASSERT_NE(start, 0u);

    DiscoveryOptions options;
    options.instrument = {by_exe("/" + RE2::QuoteMeta(fs::path(exe).filename().string()) + "$")};
    options.service_name = "sonde-unit-tests";
    ProcessDiscovery discovery(options);
    const auto changes = discovery.on_exec(self);
    ASSERT_EQ(changes.size(), 1u);
    const pipeline::ServiceIdentity& id = *changes[0].identity;
    EXPECT_EQ(id.pid, self);
    EXPECT_EQ(id.exe_path, exe);
    EXPECT_EQ(id.exe_name, fs::path(exe).filename().string());
    EXPECT_EQ(id.start_time_ticks, start);
    EXPECT_EQ(id.service_name, "sonde-unit-tests");

    // A walk of the whole /proc keeps it and finds nothing to forget.
    for (const DiscoveryChange& c : discovery.rescan()) {
        EXPECT_NE(c.pid, self);
    }
    EXPECT_TRUE(discovery.is_tracked(self));

    // Never-instrument (the agent's own pid) wins over a matching selector.
    options.never_instrument = {self};
    ProcessDiscovery excluding(options);
    EXPECT_TRUE(excluding.on_exec(self).empty());
}

TEST(ProcessDiscoveryRealProc, FindsThisProcessesListeningSocket) {
    const uint32_t self = static_cast<uint32_t>(::getpid());
    if (self == 1) {
        GTEST_SKIP() << "running as pid 1, which discovery never instruments";
    }
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(fd, 4), 0);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    const uint16_t port = ntohs(addr.sin_port);

    DiscoveryOptions options;
    options.instrument = {by_ports(std::to_string(port))};
    ProcessDiscovery discovery(options);
    // on_exec carries no port hint, so this goes through fd links and net/tcp.
    const auto changes = discovery.on_exec(self);
    ::close(fd);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].identity->selector,
              "discovery.instrument[0] listens on port " + std::to_string(port));
    EXPECT_EQ(changes[0].identity->exe_path, self_exe());
}

}  // namespace
}  // namespace sonde::discovery
