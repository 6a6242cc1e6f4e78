// The connection tracker's cost per request/response pair: the path every
// data record of a tracked process takes, from ring bytes to a span.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "bench_common.h"
#include "conntrack/connection_tracker.h"
#include "ebpf/events.h"
#include "pipeline/self_metrics.h"
#include "pipeline/span.h"

namespace {

using namespace sonde;

constexpr uint32_t kPid = 4242;
constexpr int32_t kFd = 12;

// One syscall's record, as the kernel writes it into the ring: the fixed
// part of a data record (sonde_data_head) followed by the captured bytes.
class RingRecord {
public:
    RingRecord(uint8_t direction, std::string_view payload) {
        sonde_data_head ev{};
        ev.hdr.type = SONDE_EVENT_DATA;
        ev.hdr.pid = kPid;
        ev.hdr.tid = kPid;
        ev.hdr.proc_start_ns = 77;
        ev.fd = kFd;
        ev.direction = direction;
        ev.syscall = direction == SONDE_DIR_INGRESS ? SONDE_SYS_READ : SONDE_SYS_WRITEV;
        ev.socket_cookie = 0xffff888012345678;
        // 10.0.0.5:8080 <- 10.0.0.9:51234, as IPv4-mapped IPv6
        for (auto* addr : {ev.tuple.local_addr, ev.tuple.peer_addr}) {
            addr[10] = addr[11] = 0xff;
            addr[12] = 10;
        }
        ev.tuple.local_addr[15] = 5;
        ev.tuple.peer_addr[15] = 9;
        ev.tuple.local_port = 8080;
        ev.tuple.peer_port = 51234;
        ev.tuple.family = 2;
        ev.segment_count = 1;
        ev.segments[0].captured = ev.segments[0].length = uint32_t(payload.size());
        ev.captured_length = ev.total_length = uint32_t(payload.size());
        bytes_.resize(SONDE_DATA_EVENT_HEADER_BYTES + payload.size());
        std::memcpy(bytes_.data(), &ev, SONDE_DATA_EVENT_HEADER_BYTES);
        std::memcpy(bytes_.data() + SONDE_DATA_EVENT_HEADER_BYTES, payload.data(), payload.size());
    }

    void set_times(uint64_t enter, uint64_t exit) {
        std::memcpy(bytes_.data() + offsetof(sonde_data_head, hdr.ts_enter_ns), &enter,
                    sizeof enter);
        std::memcpy(bytes_.data() + offsetof(sonde_data_head, hdr.ts_exit_ns), &exit, sizeof exit);
    }
    std::span<const uint8_t> bytes() const { return bytes_; }

private:
    std::vector<uint8_t> bytes_;
};

class Fixture {
public:
    // The sink takes ownership of each span, as the agent's does.
    Fixture()
        : tracker_({}, metrics_, [this](pipeline::Span&& span) {
              last_ = std::move(span);
              ++spans_;
          }) {
        auto id = std::make_shared<pipeline::ServiceIdentity>();
        id->pid = kPid;
        id->start_time_ticks = 77;
        id->service_name = "shop";
        tracker_.set_process(std::move(id));
    }
    conntrack::ConnectionTracker& tracker() { return tracker_; }
    uint64_t spans() const { return spans_; }

private:
    // The sink's state outlives the tracker that writes to it.
    pipeline::SelfMetrics metrics_;
    pipeline::Span last_;
    uint64_t spans_ = 0;
    conntrack::ConnectionTracker tracker_;
};

ebpf::DataRecord decoded(std::span<const uint8_t> bytes) {
    return std::get<ebpf::DataRecord>(ebpf::decode_record(bytes));
}

// ConnectionTracker::on_data alone, on already decoded records.
void BM_ConnectionTracker_OnDataPair(benchmark::State& state) {
    Fixture f;
    RingRecord request(SONDE_DIR_INGRESS, bench::kRequest);
    RingRecord response(SONDE_DIR_EGRESS, bench::kResponse);
    ebpf::DataRecord req = decoded(request.bytes());
    ebpf::DataRecord resp = decoded(response.bytes());
    uint64_t now = 1'000'000;
    for (auto _ : state) {
        req.fixed.hdr.ts_enter_ns = now;
        req.fixed.hdr.ts_exit_ns = now + 2'000;
        resp.fixed.hdr.ts_enter_ns = now + 50'000;
        resp.fixed.hdr.ts_exit_ns = now + 55'000;
        now += 100'000;
        f.tracker().on_data(req);
        f.tracker().on_data(resp);
    }
    if (f.spans() != uint64_t(state.iterations()))
        state.SkipWithError("tracker did not produce one span per pair");
    bench::report_items(state);
}
BENCHMARK(BM_ConnectionTracker_OnDataPair);

// What the agent does for each ring record of the pair: decode (validate and
// copy out of the ring), then on_data.
void BM_ConnectionTracker_DecodeAndOnDataPair(benchmark::State& state) {
    Fixture f;
    RingRecord request(SONDE_DIR_INGRESS, bench::kRequest);
    RingRecord response(SONDE_DIR_EGRESS, bench::kResponse);
    uint64_t now = 1'000'000;
    for (auto _ : state) {
        request.set_times(now, now + 2'000);
        response.set_times(now + 50'000, now + 55'000);
        now += 100'000;
        for (const RingRecord* r : {&request, &response}) {
            ebpf::Record record = ebpf::decode_record(r->bytes());
            if (auto* data = std::get_if<ebpf::DataRecord>(&record)) f.tracker().on_data(*data);
        }
    }
    if (f.spans() != uint64_t(state.iterations()))
        state.SkipWithError("tracker did not produce one span per pair");
    bench::report_items(state);
}
BENCHMARK(BM_ConnectionTracker_DecodeAndOnDataPair);

}  // namespace
