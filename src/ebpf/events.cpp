#include "ebpf/events.h"

#include <cstddef>
#include <cstring>

namespace sonde::ebpf {

// The layout is shared with the BPF programs; these pin it so that a change
// on one side without the other fails to compile.
static_assert(sizeof(sonde_event_header) == 40);
static_assert(offsetof(sonde_event_header, proc_start_ns) == 16);
static_assert(sizeof(sonde_conn_tuple) == 40);
static_assert(offsetof(sonde_data_head, tuple) == 40);
static_assert(offsetof(sonde_data_head, fd) == 80);
static_assert(offsetof(sonde_data_head, socket_cookie) == 88);
static_assert(offsetof(sonde_data_head, segments) == 104);
static_assert(offsetof(sonde_data_head, tail_length) == 104 + 8 * SONDE_MAX_SEGMENTS);
static_assert(offsetof(sonde_data_head, tail) == 176);
static_assert(sizeof(sonde_data_head) == 176 + SONDE_TAIL_BYTES);
static_assert(offsetof(sonde_data_event, data) == sizeof(sonde_data_head));
static_assert(sizeof(sonde_conn_event) == 96);
static_assert(sizeof(sonde_proc_event) == 48);
static_assert(sizeof(sonde_ssl_key) == 16 && offsetof(sonde_ssl_key, tgid) == 8);
static_assert((SONDE_MAX_CAPTURE & (SONDE_MAX_CAPTURE - 1)) == 0, "capture size: power of two");
static_assert((SONDE_MAX_SEGMENTS & (SONDE_MAX_SEGMENTS - 1)) == 0, "segments: power of two");

namespace {

template <typename T>
bool copy_fixed(std::span<const uint8_t> bytes, T& out) {
    if (bytes.size() < sizeof(T)) return false;
    std::memcpy(&out, bytes.data(), sizeof(T));
    return true;
}

Record decode_data(std::span<const uint8_t> bytes) {
    constexpr size_t fixed_bytes = sizeof(sonde_data_head);
    if (bytes.size() < fixed_bytes) return DecodeError{"data record shorter than its header"};
    DataRecord rec{};
    std::memcpy(&rec.fixed, bytes.data(), fixed_bytes);
    const auto& ev = rec.fixed;
    if (ev.captured_length > SONDE_MAX_CAPTURE || fixed_bytes + ev.captured_length > bytes.size())
        return DecodeError{"data record captured_length exceeds record"};
    if (ev.segment_count == 0 || ev.segment_count > SONDE_MAX_SEGMENTS)
        return DecodeError{"data record segment_count out of range"};
    if (ev.direction > SONDE_DIR_EGRESS) return DecodeError{"data record direction invalid"};
    uint64_t captured_sum = 0;
    uint64_t length_sum = 0;
    for (unsigned i = 0; i < ev.segment_count; ++i) {
        if (ev.segments[i].captured > ev.segments[i].length)
            return DecodeError{"data record segment captures more than its length"};
        captured_sum += ev.segments[i].captured;
        length_sum += ev.segments[i].length;
    }
    if (ev.tail_length > SONDE_TAIL_BYTES || ev.tail_length > ev.total_length)
        return DecodeError{"data record tail_length out of range"};
    if (captured_sum != ev.captured_length)
        return DecodeError{"data record segments disagree with captured_length"};
    if (length_sum != ev.total_length)
        return DecodeError{"data record segments disagree with total_length"};
    rec.payload = bytes.subspan(fixed_bytes, ev.captured_length);
    return rec;
}

}  // namespace

Record decode_record(std::span<const uint8_t> bytes) {
    if (bytes.empty()) return DecodeError{"empty record"};
    switch (bytes[0]) {
        case SONDE_EVENT_DATA:
            return decode_data(bytes);
        case SONDE_EVENT_CONN_OPEN:
        case SONDE_EVENT_CONN_CLOSE: {
            ConnRecord rec{};
            if (!copy_fixed(bytes, rec.event)) return DecodeError{"connection record too short"};
            return rec;
        }
        case SONDE_EVENT_PROC_EXEC:
        case SONDE_EVENT_PROC_EXIT:
        case SONDE_EVENT_LISTEN:
        case SONDE_EVENT_CONNECT_WATCHED:
        case SONDE_EVENT_PROC_FORK:
        case SONDE_EVENT_PROC_MAPPED_EXEC: {
            ProcRecord rec{};
            if (!copy_fixed(bytes, rec.event)) return DecodeError{"process record too short"};
            return rec;
        }
        default:
            return DecodeError{"unknown record type"};
    }
}

}  // namespace sonde::ebpf
