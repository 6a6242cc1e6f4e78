// HPACK decoding: the RFC 7541 Appendix C vectors in exact and fallback mode,
// fallback started mid-connection, malformed blocks, the switch from exact to
// fallback, field extraction and bounds, and random header lists encoded by
// libnghttp2's deflater.
#include "protocols/http2/hpack.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <array>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sonde::protocols::http2 {
namespace {

std::vector<uint8_t> from_hex(std::string_view text) {
    std::vector<uint8_t> out;
    int high = -1;
    for (char c : text) {
        int nibble = -1;
        if (c >= '0' && c <= '9') nibble = c - '0';
        if (c >= 'a' && c <= 'f') nibble = c - 'a' + 10;
        if (nibble < 0) continue;  // spaces between groups, as the RFC prints them
        if (high < 0) {
            high = nibble;
        } else {
            out.push_back(static_cast<uint8_t>(high << 4 | nibble));
            high = -1;
        }
    }
    return out;
}

// RFC 7541 section 5.1, for building blocks by hand.
void append_integer(std::vector<uint8_t>& out, uint8_t first_bits, unsigned prefix_bits,
                    uint64_t value) {
    const uint64_t mask = (1u << prefix_bits) - 1;
    if (value < mask) {
        out.push_back(static_cast<uint8_t>(first_bits | value));
        return;
    }
    out.push_back(static_cast<uint8_t>(first_bits | mask));
    value -= mask;
    while (value >= 128) {
        out.push_back(static_cast<uint8_t>(0x80 | (value & 0x7f)));
        value >>= 7;
    }
    out.push_back(static_cast<uint8_t>(value));
}

void append_raw_string(std::vector<uint8_t>& out, std::string_view s) {
    append_integer(out, 0x00, 7, s.size());
    out.insert(out.end(), s.begin(), s.end());
}

using FieldList = std::vector<std::pair<std::string_view, std::string_view>>;

// Every field as a literal without indexing with a new, raw name.
std::vector<uint8_t> literal_block(const FieldList& fields) {
    std::vector<uint8_t> out;
    for (const auto& [name, value] : fields) {
        out.push_back(0x00);
        append_raw_string(out, name);
        append_raw_string(out, value);
    }
    return out;
}

// Literal with incremental indexing, indexed name (a static index).
std::vector<uint8_t> indexed_name_block(unsigned name_index, std::string_view value) {
    std::vector<uint8_t> out;
    append_integer(out, 0x40, 6, name_index);
    append_raw_string(out, value);
    return out;
}

struct Expected {
    std::string method;
    std::string path;
    std::string authority;
    int status = 0;
    std::string content_type;
    int grpc_status = -1;
    std::string traceparent;
    std::string tracestate;
};

void expect_fields(const DecodedHeaders& h, const Expected& e) {
    EXPECT_EQ(h.method, e.method);
    EXPECT_EQ(h.path, e.path);
    EXPECT_EQ(h.authority, e.authority);
    EXPECT_EQ(h.status, e.status);
    EXPECT_EQ(h.content_type, e.content_type);
    EXPECT_EQ(h.grpc_status, e.grpc_status);
    EXPECT_EQ(h.traceparent, e.traceparent);
    EXPECT_EQ(h.tracestate, e.tracestate);
}

enum class Mode { Exact, FallbackFromStart };

const char* mode_name(Mode m) {
    return m == Mode::Exact ? "exact" : "fallback";
}

// ---- RFC 7541 Appendix C

struct RfcBlock {
    std::string_view hex;
    std::string_view method;
    std::string_view path;
    std::string_view authority;
    int status = 0;
};

struct RfcSequence {
    const char* name;
    uint32_t table_size;
    std::array<RfcBlock, 3> blocks;
};

// C.3: requests, no Huffman coding.
constexpr std::array<RfcBlock, 3> kC3 = {{
    {"8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", "GET", "/", "www.example.com"},
    {"8286 84be 5808 6e6f 2d63 6163 6865", "GET", "/", "www.example.com"},
    {"8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", "GET",
     "/index.html", "www.example.com"},
}};

// C.4: the same requests, Huffman-coded.
constexpr std::array<RfcBlock, 3> kC4 = {{
    {"8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", "GET", "/", "www.example.com"},
    {"8286 84be 5886 a8eb 1064 9cbf", "GET", "/", "www.example.com"},
    {"8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", "GET", "/index.html",
     "www.example.com"},
}};

// C.5: responses, no Huffman coding, 256-byte table (evictions in every block).
constexpr std::array<RfcBlock, 3> kC5 = {{
    {"4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 "
     "2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 "
     "6c65 2e63 6f6d",
     "", "", "", 302},
    {"4803 3330 37c1 c0bf", "", "", "", 307},
    {"88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d "
     "54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 "
     "5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e "
     "3d31",
     "", "", "", 200},
}};

// C.6: the same responses, Huffman-coded.
constexpr std::array<RfcBlock, 3> kC6 = {{
    {"4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 "
     "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
     "", "", "", 302},
    {"4883 640e ffc1 c0bf", "", "", "", 307},
    {"88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab "
     "77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f "
     "9587 3160 65c0 03ed 4ee5 b106 3d50 07",
     "", "", "", 200},
}};

const RfcSequence kRfcSequences[] = {
    {"C3_requests_raw", 4096, kC3},
    {"C4_requests_huffman", 4096, kC4},
    {"C5_responses_raw", 256, kC5},
    {"C6_responses_huffman", 256, kC6},
};

// The examples assume a 256-byte table from the start. Announcing a smaller
// size than the default obliges the encoder to open its next block with a
// size update (RFC 7541 section 4.2), which libnghttp2 enforces, so the
// connection that would carry C.5/C.6 starts that way.
const std::vector<uint8_t> kSizeUpdate256 = from_hex("3fe101");

std::vector<uint8_t> rfc_block(const RfcSequence& seq, size_t i) {
    std::vector<uint8_t> block = from_hex(seq.blocks[i].hex);
    if (i == 0 && seq.table_size != 4096) {
        block.insert(block.begin(), kSizeUpdate256.begin(), kSizeUpdate256.end());
    }
    return block;
}

Expected expected_of(const RfcBlock& b) {
    Expected e;
    e.method = b.method;
    e.path = b.path;
    e.authority = b.authority;
    e.status = b.status;
    return e;
}

class HpackRfcVectorTest : public ::testing::TestWithParam<RfcSequence> {};

TEST_P(HpackRfcVectorTest, DecodesEveryBlockInBothModes) {
    const RfcSequence& seq = GetParam();
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        HpackDecoder decoder(mode == Mode::Exact);
        decoder.set_max_table_size(seq.table_size);
        DecodedHeaders out;
        for (size_t i = 0; i < seq.blocks.size(); ++i) {
            SCOPED_TRACE("block " + std::to_string(i + 1));
            EXPECT_EQ(decoder.decode(rfc_block(seq, i), out), HpackResult::Ok);
            EXPECT_FALSE(out.partial);
            expect_fields(out, expected_of(seq.blocks[i]));
            EXPECT_EQ(decoder.exact(), mode == Mode::Exact);
        }
    }
}

// After the third block the table holds exactly three entries (C.3.3, C.4.3:
// 164 bytes; C.5.3, C.6.3: 215 bytes after evictions), so index 64 exists and
// index 65 does not: the fallback's size accounting and evictions match.
TEST_P(HpackRfcVectorTest, TableHoldsExactlyTheRfcEntriesAfterwards) {
    const RfcSequence& seq = GetParam();
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        HpackDecoder decoder(mode == Mode::Exact);
        decoder.set_max_table_size(seq.table_size);
        DecodedHeaders out;
        for (size_t i = 0; i < seq.blocks.size(); ++i) decoder.decode(rfc_block(seq, i), out);
        EXPECT_EQ(decoder.decode(from_hex("bebf c0"), out), HpackResult::Ok);
        EXPECT_EQ(decoder.decode(from_hex("c1"), out),
                  mode == Mode::Exact ? HpackResult::Error : HpackResult::Partial);
    }
}

INSTANTIATE_TEST_SUITE_P(Hpack, HpackRfcVectorTest, ::testing::ValuesIn(kRfcSequences),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- Fallback started mid-connection: the first block was never seen.

struct MidCase {
    const char* name;
    uint32_t table_size;
    std::array<RfcBlock, 3> blocks;
    // Expected fields of blocks 2 and 3, both Partial.
    std::array<Expected, 2> fields;
};

const MidCase kMidCases[] = {
    // :authority is dynamic entry 62 (block 2) or 63 (block 3): entries inserted
    // by block 1, which the decoder never saw.
    {"C3", 4096, kC3, {{{"GET", "/", ""}, {"GET", "/index.html", ""}}}},
    {"C4", 4096, kC4, {{{"GET", "/", ""}, {"GET", "/index.html", ""}}}},
    // Block 2 inserts :status 307 itself; its other fields are dynamic entries of block 1.
    {"C5", 256, kC5, {{{"", "", "", 307}, {"", "", "", 200}}}},
    {"C6", 256, kC6, {{{"", "", "", 307}, {"", "", "", 200}}}},
};

class HpackMidConnectionTest : public ::testing::TestWithParam<MidCase> {};

TEST_P(HpackMidConnectionTest, DecodesStaticAndLiteralFieldsAndReportsPartial) {
    const MidCase& c = GetParam();
    HpackDecoder decoder(false);
    decoder.set_max_table_size(c.table_size);
    DecodedHeaders out;
    for (size_t i = 1; i < 3; ++i) {
        SCOPED_TRACE("block " + std::to_string(i + 1));
        EXPECT_EQ(decoder.decode(from_hex(c.blocks[i].hex), out), HpackResult::Partial);
        EXPECT_TRUE(out.partial);
        expect_fields(out, c.fields[i - 1]);
    }
    EXPECT_FALSE(decoder.exact());
}

INSTANTIATE_TEST_SUITE_P(Hpack, HpackMidConnectionTest, ::testing::ValuesIn(kMidCases),
                         [](const auto& info) { return std::string(info.param.name); });

// Entries inserted after the start are known: references to them resolve,
// those to older entries do not.
TEST(HpackMidConnection, ResolvesEntriesInsertedSinceItStarted) {
    HpackDecoder decoder(false);
    DecodedHeaders out;
    ASSERT_EQ(decoder.decode(from_hex(kC3[1].hex), out), HpackResult::Partial);
    ASSERT_EQ(decoder.decode(from_hex(kC3[2].hex), out), HpackResult::Partial);
    // 62 custom-key and 63 cache-control are known and of no interest.
    EXPECT_EQ(decoder.decode(from_hex("bebf"), out), HpackResult::Ok);
    expect_fields(out, {});
    // 64 is C.3.1's :authority, inserted before the decoder started.
    EXPECT_EQ(decoder.decode(from_hex("82 c0"), out), HpackResult::Partial);
    expect_fields(out, {.method = "GET"});
    // A literal naming the unknown entry 64 inserts an entry whose name is unknown.
    std::vector<uint8_t> named_unknown;
    append_integer(named_unknown, 0x40, 6, 64);
    append_raw_string(named_unknown, "v");
    EXPECT_EQ(decoder.decode(named_unknown, out), HpackResult::Partial);
    EXPECT_EQ(decoder.decode(indexed_name_block(4, "/next"), out), HpackResult::Ok);
    EXPECT_EQ(out.path, "/next");
    // 62 is now /next, 63 the unknown-named entry.
    EXPECT_EQ(decoder.decode(from_hex("be"), out), HpackResult::Ok);
    EXPECT_EQ(out.path, "/next");
    EXPECT_EQ(decoder.decode(from_hex("bf"), out), HpackResult::Partial);
}

// A malformed block leaves the positions of the model uncertain: it forgets
// every entry rather than risk resolving an index to the wrong one.
TEST(HpackFallback, ForgetsTheTableAfterAMalformedBlock) {
    HpackDecoder decoder(false);
    DecodedHeaders out;
    ASSERT_EQ(decoder.decode(indexed_name_block(4, "/a"), out), HpackResult::Ok);
    ASSERT_EQ(decoder.decode(from_hex("be"), out), HpackResult::Ok);
    EXPECT_EQ(out.path, "/a");
    EXPECT_EQ(decoder.decode(from_hex("82 ff"), out), HpackResult::Error);
    EXPECT_EQ(decoder.decode(from_hex("be"), out), HpackResult::Partial);
    EXPECT_EQ(out.path, "");
}

// ---- Malformed blocks

struct MalformedCase {
    const char* name;
    std::string_view hex;
};

const MalformedCase kMalformed[] = {
    {"truncated_index", "ff"},
    {"truncated_integer_continuation", "ff 80"},
    {"integer_above_2_pow_32", "ff 80 80 80 80 10"},
    {"integer_with_six_continuation_bytes", "ff 80 80 80 80 80 00"},
    {"index_zero", "80"},
    {"literal_index_overflow", "0f ff ff ff ff 1f"},
    {"literal_without_name_length", "40"},
    {"literal_without_value", "00 01 61"},
    {"indexed_name_without_value", "44"},
    {"name_length_past_block", "00 05 61 62"},
    {"value_length_past_block", "40 01 61 05 62"},
    {"value_length_overflows", "04 7f ff ff ff ff 0f"},
    {"size_update_after_field", "82 20"},
    {"size_update_above_default_max", "3f e2 1f"},  // 4097
    {"truncated_size_update", "3f"},
    {"huffman_name_with_eos", "00 84 ff ff ff ff 00"},
    {"huffman_value_overlong_padding_kept_field", "44 81 ff"},
    {"huffman_value_overlong_padding_indexed", "7a 81 ff"},
    {"bad_huffman_after_good_huffman", "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff 44 81 ff"},
};

class HpackMalformedTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(HpackMalformedTest, IsAnErrorInBothModes) {
    const std::vector<uint8_t> block = from_hex(GetParam().hex);
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        HpackDecoder decoder(mode == Mode::Exact);
        DecodedHeaders out;
        EXPECT_EQ(decoder.decode(block, out), HpackResult::Error);
        EXPECT_FALSE(decoder.exact());
        // The decoder remains usable.
        EXPECT_EQ(decoder.decode(from_hex("82 84"), out), HpackResult::Ok);
        expect_fields(out, {.method = "GET", .path = "/"});
    }
}

INSTANTIATE_TEST_SUITE_P(Hpack, HpackMalformedTest, ::testing::ValuesIn(kMalformed),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HpackMalformed, KeepsTheFieldsBeforeTheFault) {
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        HpackDecoder decoder(mode == Mode::Exact);
        DecodedHeaders out;
        EXPECT_EQ(decoder.decode(from_hex("82 84 00 05 61"), out), HpackResult::Error);
        EXPECT_EQ(out.method, "GET");
        EXPECT_EQ(out.path, "/");
    }
}

// Beyond the real table in exact mode, unknown in fallback mode.
TEST(HpackMalformed, IndexPastTheTable) {
    DecodedHeaders out;
    HpackDecoder exact(true);
    EXPECT_EQ(exact.decode(from_hex("82 be"), out), HpackResult::Error);
    HpackDecoder fallback(false);
    EXPECT_EQ(fallback.decode(from_hex("82 be"), out), HpackResult::Partial);
    expect_fields(out, {.method = "GET"});
    EXPECT_TRUE(out.partial);
}

// ---- Exact mode falls back for good after an error

TEST(HpackExactToFallback, LaterBlocksStillDecode) {
    for (const std::string_view fault : {"ff", "82 c0", "00 84 ff ff ff ff 00"}) {
        SCOPED_TRACE(fault);
        HpackDecoder decoder(true);
        DecodedHeaders out;
        ASSERT_EQ(decoder.decode(from_hex(kC3[0].hex), out), HpackResult::Ok);
        ASSERT_TRUE(decoder.exact());
        EXPECT_EQ(decoder.decode(from_hex(fault), out), HpackResult::Error);
        EXPECT_FALSE(decoder.exact());
        // The table the exact inflater had is no longer trusted.
        EXPECT_EQ(decoder.decode(from_hex(kC3[1].hex), out), HpackResult::Partial);
        expect_fields(out, {.method = "GET", .path = "/"});
        EXPECT_EQ(decoder.decode(from_hex(kC3[2].hex), out), HpackResult::Partial);
        expect_fields(out, {.method = "GET", .path = "/index.html"});
        // Entries inserted since the switch resolve.
        EXPECT_EQ(decoder.decode(indexed_name_block(1, "late.example"), out), HpackResult::Ok);
        EXPECT_EQ(decoder.decode(from_hex("be"), out), HpackResult::Ok);
        EXPECT_EQ(out.authority, "late.example");
        EXPECT_FALSE(decoder.exact());
    }
}

// libnghttp2 holds the encoder to RFC 7541 section 4.2: once a smaller table
// is announced the next block must open with a size update. The fallback
// tolerates its absence.
TEST(HpackExactToFallback, MissingSizeUpdateAfterShrink) {
    DecodedHeaders out;
    HpackDecoder exact(true);
    exact.set_max_table_size(1024);
    EXPECT_EQ(exact.decode(from_hex("82"), out), HpackResult::Error);
    EXPECT_FALSE(exact.exact());
    HpackDecoder fallback(false);
    fallback.set_max_table_size(1024);
    EXPECT_EQ(fallback.decode(from_hex("82"), out), HpackResult::Ok);

    HpackDecoder with_update(true);
    with_update.set_max_table_size(1024);
    EXPECT_EQ(with_update.decode(from_hex("3f e1 07 82"), out), HpackResult::Ok);  // 1024
    EXPECT_TRUE(with_update.exact());
}

TEST(HpackDecoderObject, MovesAndSurvivesUseAfterMove) {
    HpackDecoder a(true);
    DecodedHeaders out;
    ASSERT_EQ(a.decode(from_hex(kC3[0].hex), out), HpackResult::Ok);
    HpackDecoder b(std::move(a));
    EXPECT_TRUE(b.exact());
    EXPECT_EQ(b.decode(from_hex(kC3[1].hex), out), HpackResult::Ok);
    EXPECT_EQ(out.authority, "www.example.com");
    HpackDecoder c(false);
    c = std::move(b);
    EXPECT_EQ(c.decode(from_hex(kC3[2].hex), out), HpackResult::Ok);
    EXPECT_EQ(out.authority, "www.example.com");
    // NOLINTNEXTLINE(bugprone-use-after-move): a moved-from decoder must not crash.
    EXPECT_EQ(a.decode(from_hex("82"), out), HpackResult::Error);
    EXPECT_FALSE(a.exact());
    a.set_max_table_size(0);
}

// ---- Table size

TEST(HpackTableSize, UpdatesAreBoundedByTheAnnouncedSizeCappedAt64KiB) {
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        DecodedHeaders out;
        HpackDecoder d(mode == Mode::Exact);
        d.set_max_table_size(1u << 20);
        EXPECT_EQ(d.decode(from_hex("3f e1 ff 03 82"), out), HpackResult::Ok);  // 65536
        EXPECT_EQ(d.decode(from_hex("3f e2 ff 03"), out), HpackResult::Error);  // 65537
    }
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        DecodedHeaders out;
        HpackDecoder d(mode == Mode::Exact);
        EXPECT_EQ(d.decode(from_hex("3f e1 1f"), out), HpackResult::Ok);        // 4096, the default
        EXPECT_EQ(d.decode(from_hex("20 3f e1 1f 82"), out), HpackResult::Ok);  // two updates
    }
}

TEST(HpackTableSize, SizeUpdatesEvict) {
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        DecodedHeaders out;
        HpackDecoder d(mode == Mode::Exact);
        ASSERT_EQ(d.decode(indexed_name_block(4, "/a"), out), HpackResult::Ok);  // 39 bytes
        ASSERT_EQ(d.decode(indexed_name_block(4, "/b"), out), HpackResult::Ok);
        EXPECT_EQ(d.decode(from_hex("bebf"), out), HpackResult::Ok);
        EXPECT_EQ(out.path, "/b");
        // 39 bytes left: only /b stays.
        EXPECT_EQ(d.decode(from_hex("3f 08 be"), out), HpackResult::Ok);
        EXPECT_EQ(out.path, "/b");
        EXPECT_EQ(d.decode(from_hex("bf"), out),
                  mode == Mode::Exact ? HpackResult::Error : HpackResult::Partial);
    }
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        DecodedHeaders out;
        HpackDecoder d(mode == Mode::Exact);
        ASSERT_EQ(d.decode(indexed_name_block(4, "/a"), out), HpackResult::Ok);
        // An entry larger than the table empties it and is not inserted.
        const std::string big(5000, 'x');
        ASSERT_EQ(d.decode(indexed_name_block(4, big), out), HpackResult::Ok);
        EXPECT_EQ(d.decode(from_hex("be"), out),
                  mode == Mode::Exact ? HpackResult::Error : HpackResult::Partial);
    }
}

// Eviction stops as soon as the new entry fits: a table filled to exactly its
// maximum keeps every entry.
TEST(HpackTableSize, EntriesFillingTheTableExactlyAreAllKept) {
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        DecodedHeaders out;
        HpackDecoder d(mode == Mode::Exact);
        d.set_max_table_size(78);
        ASSERT_EQ(d.decode(from_hex("3f 2f"), out), HpackResult::Ok);            // 78
        ASSERT_EQ(d.decode(indexed_name_block(1, "h"), out), HpackResult::Ok);   // 43 bytes
        ASSERT_EQ(d.decode(indexed_name_block(4, "/b"), out), HpackResult::Ok);  // 39: h goes
        ASSERT_EQ(d.decode(indexed_name_block(4, "/c"), out), HpackResult::Ok);  // 39 + 39 = 78
        EXPECT_EQ(d.decode(from_hex("bfbe"), out), HpackResult::Ok);
        EXPECT_EQ(out.path, "/b");
        EXPECT_EQ(d.decode(from_hex("c0"), out),
                  mode == Mode::Exact ? HpackResult::Error : HpackResult::Partial);
    }
}

TEST(HpackTableSize, AnnouncingASmallerSizeEvicts) {
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        DecodedHeaders out;
        HpackDecoder d(mode == Mode::Exact);
        ASSERT_EQ(d.decode(indexed_name_block(4, "/a"), out), HpackResult::Ok);
        ASSERT_EQ(d.decode(indexed_name_block(4, "/b"), out), HpackResult::Ok);
        d.set_max_table_size(40);
        EXPECT_EQ(d.decode(from_hex("3f 09 be"), out), HpackResult::Ok);  // 40
        EXPECT_EQ(out.path, "/b");
        EXPECT_EQ(d.decode(from_hex("bf"), out),
                  mode == Mode::Exact ? HpackResult::Error : HpackResult::Partial);
    }
}

// ---- Field extraction

struct ExtractCase {
    const char* name;
    FieldList fields;
    Expected expected;
};

const std::string kLong600(600, 'a');
const std::string kLong3000 = "/" + std::string(2999, 'p');
const std::string kStatusLong = "200" + std::string(600, '0');

const ExtractCase kExtractCases[] = {
    {"grpc_response",
     {{":status", "200"}, {"content-type", "application/grpc"}, {"grpc-status", "0"}},
     {.status = 200, .content_type = "application/grpc", .grpc_status = 0}},
    {"request_with_trace_context",
     {{":method", "POST"},
      {":scheme", "http"},
      {":path", "/pkg.Svc/Call?x=1"},
      {":authority", "svc:50051"},
      {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
      {"tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
      {"user-agent", "grpc-go/1.60"}},
     {.method = "POST",
      .path = "/pkg.Svc/Call?x=1",
      .authority = "svc:50051",
      .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      .tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}},
    {"grpc_status_14", {{"grpc-status", "14"}}, {.grpc_status = 14}},
    {"grpc_status_999", {{"grpc-status", "999"}}, {.grpc_status = 999}},
    {"grpc_status_leading_zeros", {{"grpc-status", "007"}}, {.grpc_status = 7}},
    {"grpc_status_1000", {{"grpc-status", "1000"}}, {.grpc_status = -1}},
    {"grpc_status_empty", {{"grpc-status", ""}}, {.grpc_status = -1}},
    {"grpc_status_negative", {{"grpc-status", "-1"}}, {.grpc_status = -1}},
    {"grpc_status_space", {{"grpc-status", " 1"}}, {.grpc_status = -1}},
    {"grpc_status_letters", {{"grpc-status", "1a"}}, {.grpc_status = -1}},
    {"status_404", {{":status", "404"}}, {.status = 404}},
    {"status_two_digits", {{":status", "20"}}, {.status = 0}},
    {"status_four_digits", {{":status", "2000"}}, {.status = 0}},
    {"status_not_digits", {{":status", "2x0"}}, {.status = 0}},
    {"status_long", {{":status", kStatusLong}}, {.status = 0}},
    {"host_only", {{"host", "h.example"}}, {.authority = "h.example"}},
    {"authority_over_host",
     {{":authority", "a.example"}, {"host", "h.example"}},
     {.authority = "a.example"}},
    {"authority_over_earlier_host",
     {{"host", "h.example"}, {":authority", "a.example"}},
     {.authority = "a.example"}},
    {"first_duplicate_wins",
     {{":path", "/one"}, {":path", "/two"}, {":status", "200"}, {":status", "500"}},
     {.path = "/one", .status = 200}},
    {"upper_case_names_are_not_ours", {{"Content-Type", "text/plain"}, {":Path", "/x"}}, {}},
    {"empty_values", {{":method", ""}, {"content-type", ""}}, {}},
    {"path_truncated_at_2048", {{":path", kLong3000}}, {.path = kLong3000.substr(0, 2048)}},
    {"others_truncated_at_512",
     {{":method", kLong600},
      {":authority", kLong600},
      {"content-type", kLong600},
      {"traceparent", kLong600},
      {"tracestate", kLong600}},
     {.method = kLong600.substr(0, 512),
      .authority = kLong600.substr(0, 512),
      .content_type = kLong600.substr(0, 512),
      .traceparent = kLong600.substr(0, 512),
      .tracestate = kLong600.substr(0, 512)}},
    {"binary_value_kept_as_is",
     {{"tracestate", std::string_view("a\0b", 3)}},
     {.tracestate = std::string("a\0b", 3)}},
};

class HpackExtractTest : public ::testing::TestWithParam<ExtractCase> {};

TEST_P(HpackExtractTest, KeepsTheFieldsSondeUses) {
    const ExtractCase& c = GetParam();
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        HpackDecoder decoder(mode == Mode::Exact);
        DecodedHeaders out;
        // Leftovers from an earlier block must not survive the reset.
        out.method = "stale";
        out.status = 999;
        out.grpc_status = 5;
        out.partial = true;
        EXPECT_EQ(decoder.decode(literal_block(c.fields), out), HpackResult::Ok);
        EXPECT_FALSE(out.partial);
        expect_fields(out, c.expected);
    }
}

INSTANTIATE_TEST_SUITE_P(Hpack, HpackExtractTest, ::testing::ValuesIn(kExtractCases),
                         [](const auto& info) { return std::string(info.param.name); });

// A value stored in the table is bounded too, and a reference to it yields the
// same bounded copy.
TEST(HpackExtract, TableEntriesAreBoundedLikeLiterals) {
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        HpackDecoder decoder(mode == Mode::Exact);
        DecodedHeaders out;
        ASSERT_EQ(decoder.decode(indexed_name_block(4, kLong3000), out), HpackResult::Ok);
        EXPECT_EQ(out.path, kLong3000.substr(0, 2048));
        ASSERT_EQ(decoder.decode(indexed_name_block(31, kLong600), out), HpackResult::Ok);
        EXPECT_EQ(out.content_type, kLong600.substr(0, 512));
        EXPECT_EQ(decoder.decode(from_hex("bebf"), out), HpackResult::Ok);
        EXPECT_EQ(out.path, kLong3000.substr(0, 2048));
        EXPECT_EQ(out.content_type, kLong600.substr(0, 512));
    }
}

// Static entries carry values: :path "/" and "/index.html", :status 200..500.
TEST(HpackExtract, StaticTableValues) {
    for (Mode mode : {Mode::Exact, Mode::FallbackFromStart}) {
        SCOPED_TRACE(mode_name(mode));
        HpackDecoder decoder(mode == Mode::Exact);
        DecodedHeaders out;
        EXPECT_EQ(decoder.decode(from_hex("83 85 81"), out), HpackResult::Ok);
        expect_fields(out, {.method = "POST", .path = "/index.html"});
        EXPECT_EQ(decoder.decode(from_hex("8e"), out), HpackResult::Ok);
        EXPECT_EQ(out.status, 500);
        EXPECT_EQ(decoder.decode(from_hex("bf"), out),  // 63 is past the (empty) table
                  mode == Mode::Exact ? HpackResult::Error : HpackResult::Partial);
    }
    // Literals naming static entries 1..61 by index, not indexed.
    HpackDecoder decoder(false);
    DecodedHeaders out;
    std::vector<uint8_t> block;
    for (unsigned i = 1; i <= 61; ++i) {
        append_integer(block, 0x00, 4, i);
        append_raw_string(block, "v" + std::to_string(i));
    }
    EXPECT_EQ(decoder.decode(block, out), HpackResult::Ok);
    expect_fields(out, {.method = "v2", .path = "v4", .authority = "v1", .content_type = "v31"});
}

// ---- Random header lists through libnghttp2's deflater

struct DeflaterDeleter {
    void operator()(nghttp2_hd_deflater* d) const noexcept { nghttp2_hd_deflate_del(d); }
};
using DeflaterPtr = std::unique_ptr<nghttp2_hd_deflater, DeflaterDeleter>;

int status_of(std::string_view v) {
    if (v.size() != 3) return 0;
    for (char c : v) {
        if (c < '0' || c > '9') return 0;
    }
    return (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
}

int grpc_status_of(std::string_view v) {
    if (v.empty() || v.size() > 3) return -1;
    int n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') return -1;
        n = n * 10 + (c - '0');
    }
    return n;
}

class HeaderListGenerator {
public:
    explicit HeaderListGenerator(uint64_t seed) : rng_(seed) {}

    struct Field {
        std::string name;
        std::string value;
        bool sensitive = false;
    };

    // Each kept field at most once, so "first wins" does not matter here.
    std::vector<Field> next(Expected& e) {
        std::vector<Field> fields;
        std::optional<std::string> authority;
        std::optional<std::string> host;
        if (chance(60))
            e.method = add(fields, ":method", pick({"GET", "POST", "PUT", "DELETE", token()}));
        if (chance(60)) {
            const std::string path = chance(5) ? "/" + std::string(uniform(2000, 3000), 'q')
                                     : chance(50)
                                         ? pick({"/", "/index.html", "/pkg.Svc/Method"})
                                         : "/api/items?id=" + std::to_string(uniform(0, 50));
            e.path = add(fields, ":path", path).substr(0, 2048);
        }
        if (chance(20)) fields.push_back({":scheme", pick({"http", "https"})});
        if (chance(50))
            authority =
                add(fields, ":authority", pick({"example.com", "api.internal:8443", token()}));
        if (chance(50))
            e.status = status_of(add(
                fields, ":status", pick({"200", "204", "404", "500", "302", "20", "2000", "abc"})));
        if (chance(40)) {
            const std::string ct =
                chance(5)
                    ? std::string(700, 'c')
                    : pick({"application/grpc", "application/json", "text/html; charset=utf-8"});
            e.content_type = add(fields, "content-type", ct).substr(0, 512);
        }
        if (chance(30))
            e.grpc_status = grpc_status_of(
                add(fields, "grpc-status", pick({"0", "1", "14", "999", "1000", "-1", "x", ""})));
        if (chance(40))
            e.traceparent = add(fields, "traceparent", "00-" + hex(32) + "-" + hex(16) + "-01");
        if (chance(30)) {
            const std::string ts = chance(10) ? std::string(uniform(500, 900), 't')
                                              : pick({"congo=t61rcWkgMzE", "rojo=" + hex(16)});
            e.tracestate = add(fields, "tracestate", ts).substr(0, 512);
        }
        if (chance(30)) host = add(fields, "host", pick({"example.com", "other.example", token()}));
        for (int i = uniform(0, 4); i > 0; --i) {
            fields.push_back({pick({"user-agent", "accept", "cookie", "x-request-id",
                                    "grpc-message", "te", token()}),
                              chance(50) ? pick({"trailers", "*/*", "gzip"}) : token()});
        }
        for (Field& f : fields) f.sensitive = chance(10);
        e.authority = authority ? authority->substr(0, 512) : host ? host->substr(0, 512) : "";
        e.method = e.method.substr(0, 512);
        return fields;
    }

    int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    bool chance(int percent) { return uniform(0, 99) < percent; }

private:
    static std::string add(std::vector<Field>& fields, std::string name, std::string value) {
        fields.push_back({std::move(name), value});
        return value;
    }
    std::string pick(std::initializer_list<std::string> options) {
        return *(options.begin() + uniform(0, static_cast<int>(options.size()) - 1));
    }
    std::string token() { return "t" + std::to_string(uniform(0, 300)); }
    std::string hex(int n) {
        std::string s;
        for (int i = 0; i < n; ++i) s += "0123456789abcdef"[uniform(0, 15)];
        return s;
    }

    std::mt19937_64 rng_;
};

void expect_consistent_partial(const DecodedHeaders& h, const Expected& e,
                               bool host_and_authority) {
    if (!h.method.empty()) EXPECT_EQ(h.method, e.method);
    if (!h.path.empty()) EXPECT_EQ(h.path, e.path);
    if (!h.authority.empty() && !host_and_authority) EXPECT_EQ(h.authority, e.authority);
    if (h.status != 0) EXPECT_EQ(h.status, e.status);
    if (!h.content_type.empty()) EXPECT_EQ(h.content_type, e.content_type);
    if (h.grpc_status != -1) EXPECT_EQ(h.grpc_status, e.grpc_status);
    if (!h.traceparent.empty()) EXPECT_EQ(h.traceparent, e.traceparent);
    if (!h.tracestate.empty()) EXPECT_EQ(h.tracestate, e.tracestate);
}

TEST(HpackDeflaterRoundTrip, ExactAndFallbackAgreeWithTheEncoder) {
    constexpr int kBlocks = 400;
    constexpr int kMidStart = 40;
    // (seed, the deflater's own table limit)
    const std::pair<uint64_t, size_t> kRuns[] = {{1, 4096}, {2, 4096}, {3, 256}, {4, 1024}};
    int mid_ok = 0;
    int mid_partial = 0;
    for (const auto& [seed, deflater_max] : kRuns) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        HeaderListGenerator gen(seed);
        nghttp2_hd_deflater* raw = nullptr;
        ASSERT_EQ(nghttp2_hd_deflate_new(&raw, deflater_max), 0);
        DeflaterPtr deflater(raw);
        HpackDecoder exact(true);
        HpackDecoder from_start(false);
        std::optional<HpackDecoder> mid;
        uint32_t announced = 4096;
        std::vector<uint8_t> block;
        DecodedHeaders out;
        for (int i = 0; i < kBlocks; ++i) {
            SCOPED_TRACE("block " + std::to_string(i));
            if (gen.chance(4)) {
                const int sizes[] = {0, 100, 256, 1024, 4096, 8192};
                announced = static_cast<uint32_t>(sizes[gen.uniform(0, 5)]);
                ASSERT_EQ(nghttp2_hd_deflate_change_table_size(deflater.get(), announced), 0);
                exact.set_max_table_size(announced);
                from_start.set_max_table_size(announced);
                if (mid) mid->set_max_table_size(announced);
            }
            if (i == kMidStart) {
                mid.emplace(false);
                mid->set_max_table_size(announced);
            }
            Expected expected;
            const std::vector<HeaderListGenerator::Field> fields = gen.next(expected);
            std::vector<nghttp2_nv> nva;
            bool host_and_authority = false;
            bool has_authority = false;
            bool has_host = false;
            for (const auto& f : fields) {
                has_authority |= f.name == ":authority";
                has_host |= f.name == "host";
                nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(f.name.data())),
                               reinterpret_cast<uint8_t*>(const_cast<char*>(f.value.data())),
                               f.name.size(), f.value.size(),
                               static_cast<uint8_t>(f.sensitive ? NGHTTP2_NV_FLAG_NO_INDEX
                                                                : NGHTTP2_NV_FLAG_NONE)});
            }
            host_and_authority = has_authority && has_host;
            block.resize(nghttp2_hd_deflate_bound(deflater.get(), nva.data(), nva.size()));
            const ssize_t n = nghttp2_hd_deflate_hd(deflater.get(), block.data(), block.size(),
                                                    nva.data(), nva.size());
            ASSERT_GE(n, 0);
            block.resize(static_cast<size_t>(n));

            ASSERT_EQ(exact.decode(block, out), HpackResult::Ok);
            expect_fields(out, expected);
            ASSERT_EQ(from_start.decode(block, out), HpackResult::Ok);
            expect_fields(out, expected);
            if (mid) {
                const HpackResult r = mid->decode(block, out);
                ASSERT_NE(r, HpackResult::Error);
                EXPECT_EQ(out.partial, r == HpackResult::Partial);
                if (r == HpackResult::Ok) {
                    ++mid_ok;
                    expect_fields(out, expected);
                } else {
                    ++mid_partial;
                    expect_consistent_partial(out, expected, host_and_authority);
                }
            }
        }
        EXPECT_TRUE(exact.exact());
        EXPECT_FALSE(from_start.exact());
    }
    // Some blocks after the late start still name entries from before it, and
    // some need only entries the decoder has seen since.
    EXPECT_GT(mid_ok, 0);
    EXPECT_GT(mid_partial, 0);
    RecordProperty("late_fallback_ok", mid_ok);
    RecordProperty("late_fallback_partial", mid_partial);
}

}  // namespace
}  // namespace sonde::protocols::http2
