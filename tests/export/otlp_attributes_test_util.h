// OTLP attribute lists as maps, for encoder tests: one comparison checks every key, its type and
// its value, and a key that appears twice fails the test.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <variant>

#include "opentelemetry/proto/common/v1/common.pb.h"

namespace sonde::exporter::otlp::testing {

using Value = std::variant<std::string, int64_t, bool>;
using Attributes = std::map<std::string, Value>;

inline Attributes attributes_of(
    const google::protobuf::RepeatedPtrField<opentelemetry::proto::common::v1::KeyValue>& attrs) {
    Attributes out;
    for (const auto& kv : attrs) {
        EXPECT_EQ(out.count(kv.key()), 0u) << "duplicate key " << kv.key();
        if (kv.value().has_string_value()) {
            out[kv.key()] = kv.value().string_value();
        } else if (kv.value().has_int_value()) {
            out[kv.key()] = kv.value().int_value();
        } else if (kv.value().has_bool_value()) {
            out[kv.key()] = kv.value().bool_value();
        } else {
            ADD_FAILURE() << "unexpected value type for " << kv.key();
        }
    }
    return out;
}

}  // namespace sonde::exporter::otlp::testing
