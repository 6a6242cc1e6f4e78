// Typed, validated copies of the records the kernel programs emit. Records
// are copied out of the ring with memcpy (never cast in place) and checked
// against their declared sizes: a record that does not add up is rejected
// and counted, not trusted.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <variant>

#include "sonde_events.h"

namespace sonde::ebpf {

struct DataRecord {
    sonde_data_head fixed;             // the record's fixed part
    std::span<const uint8_t> payload;  // the captured bytes; valid only during the callback
};

struct ConnRecord {
    sonde_conn_event event;
};

struct ProcRecord {
    sonde_proc_event event;
};

struct DecodeError {
    std::string_view reason;  // static text
};

using Record = std::variant<DataRecord, ConnRecord, ProcRecord, DecodeError>;

// Decodes one ring-buffer record. Pure; safe on arbitrary bytes.
Record decode_record(std::span<const uint8_t> bytes);

}  // namespace sonde::ebpf
