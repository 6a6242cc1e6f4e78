#include "ebpf/events.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace sonde::ebpf {
namespace {

std::vector<uint8_t> data_record(std::initializer_list<sonde_segment> segments,
                                 std::string_view payload) {
    sonde_data_head ev{};
    ev.hdr.type = SONDE_EVENT_DATA;
    ev.hdr.pid = 42;
    ev.direction = SONDE_DIR_EGRESS;
    ev.segment_count = static_cast<uint8_t>(segments.size());
    unsigned i = 0;
    for (const auto& s : segments) {
        ev.segments[i++] = s;
        ev.total_length += s.length;
    }
    ev.captured_length = static_cast<uint32_t>(payload.size());
    std::vector<uint8_t> bytes(sizeof(sonde_data_head) + payload.size());
    std::memcpy(bytes.data(), &ev, sizeof(sonde_data_head));
    std::memcpy(bytes.data() + sizeof(sonde_data_head), payload.data(), payload.size());
    return bytes;
}

TEST(DecodeRecord, DataRecordWithSegments) {
    auto bytes = data_record({{3, 3}, {2, 100}}, "abcde");
    Record r = decode_record(bytes);
    auto* d = std::get_if<DataRecord>(&r);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->fixed.hdr.pid, 42u);
    EXPECT_EQ(d->fixed.total_length, 103u);
    EXPECT_EQ(std::string(d->payload.begin(), d->payload.end()), "abcde");
}

struct BadCase {
    const char* name;
    std::vector<uint8_t> bytes;
};

TEST(DecodeRecord, RejectsRecordsThatDoNotAddUp) {
    auto truncated = data_record({{5, 5}}, "hello");
    truncated.pop_back();
    auto segment_over = data_record({{6, 5}}, "hello!");
    auto bad_count = data_record({{5, 5}}, "hello");
    bad_count[offsetof(sonde_data_head, segment_count)] = 0;
    auto too_many = data_record({{5, 5}}, "hello");
    too_many[offsetof(sonde_data_head, segment_count)] = SONDE_MAX_SEGMENTS + 1;
    auto bad_direction = data_record({{5, 5}}, "hello");
    bad_direction[offsetof(sonde_data_head, direction)] = 7;
    auto length_mismatch = data_record({{5, 5}}, "hello");
    length_mismatch[offsetof(sonde_data_head, total_length)] = 9;

    std::vector<BadCase> cases = {
        {"empty", {}},
        {"unknown type", {99, 0, 0, 0}},
        {"short data header", {SONDE_EVENT_DATA, 0, 0}},
        {"short conn record", {SONDE_EVENT_CONN_OPEN, 0, 0, 0, 0, 0}},
        {"short proc record", {SONDE_EVENT_PROC_EXEC, 0}},
        {"payload truncated", truncated},
        {"segment captures more than length", segment_over},
        {"zero segments", bad_count},
        {"too many segments", too_many},
        {"bad direction", bad_direction},
        {"segment lengths disagree with total", length_mismatch},
    };
    for (const auto& c : cases) {
        Record r = decode_record(c.bytes);
        EXPECT_TRUE(std::holds_alternative<DecodeError>(r)) << c.name;
    }
}

TEST(DecodeRecord, ControlRecords) {
    sonde_conn_event conn{};
    conn.hdr.type = SONDE_EVENT_CONN_CLOSE;
    conn.fd = 7;
    std::vector<uint8_t> bytes(sizeof conn);
    std::memcpy(bytes.data(), &conn, sizeof conn);
    auto r = decode_record(bytes);
    ASSERT_TRUE(std::holds_alternative<ConnRecord>(r));
    EXPECT_EQ(std::get<ConnRecord>(r).event.fd, 7);

    sonde_proc_event proc{};
    proc.hdr.type = SONDE_EVENT_LISTEN;
    proc.port = 8080;
    bytes.assign(sizeof proc, 0);
    std::memcpy(bytes.data(), &proc, sizeof proc);
    r = decode_record(bytes);
    ASSERT_TRUE(std::holds_alternative<ProcRecord>(r));
    EXPECT_EQ(std::get<ProcRecord>(r).event.port, 8080);
}

}  // namespace
}  // namespace sonde::ebpf
