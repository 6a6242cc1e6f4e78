// HTTP/2 frame headers and payload fields, table-driven, plus the detection
// predicates (preface, frame sequences) against HTTP/1 text and TLS records.
#include "protocols/http2/frames.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "protocols/http2/http2.h"

namespace sonde::protocols::http2 {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes frame(uint32_t length, uint8_t type, uint8_t flag_bits, uint32_t stream,
            const Bytes& payload = {}) {
    Bytes out = {static_cast<uint8_t>(length >> 16),
                 static_cast<uint8_t>(length >> 8),
                 static_cast<uint8_t>(length),
                 type,
                 flag_bits,
                 static_cast<uint8_t>(stream >> 24),
                 static_cast<uint8_t>(stream >> 16),
                 static_cast<uint8_t>(stream >> 8),
                 static_cast<uint8_t>(stream)};
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

// A frame whose length field matches its payload.
Bytes whole_frame(FrameType type, uint8_t flag_bits, uint32_t stream, const Bytes& payload = {}) {
    return frame(static_cast<uint32_t>(payload.size()), static_cast<uint8_t>(type), flag_bits,
                 stream, payload);
}

Bytes text(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

Bytes concat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

TEST(Http2Frames, HeaderFieldsAreBigEndianAndReservedBitIsSplitOff) {
    struct Case {
        Bytes bytes;
        uint32_t length;
        uint8_t type;
        uint8_t flag_bits;
        uint32_t stream;
        bool reserved;
    };
    const Case cases[] = {
        {{0, 0, 0, 4, 0, 0, 0, 0, 0}, 0, 4, 0, 0, false},
        {{0, 0x40, 0x00, 1, 0x25, 0, 0, 0, 3}, 0x4000, 1, 0x25, 3, false},
        {{0xff, 0xff, 0xff, 0, 1, 0x7f, 0xff, 0xff, 0xff},
         kMaxFrameLength,
         0,
         1,
         0x7fffffff,
         false},
        {{0, 0, 4, 8, 0, 0x80, 0, 0, 5}, 4, 8, 0, 5, true},
        {{0, 1, 2, 0xfa, 0xff, 0x12, 0x34, 0x56, 0x78}, 0x102, 0xfa, 0xff, 0x12345678, false},
    };
    for (const Case& c : cases) {
        const auto h = parse_frame_header(c.bytes);
        ASSERT_TRUE(h.has_value());
        EXPECT_EQ(h->length, c.length);
        EXPECT_EQ(h->type, c.type);
        EXPECT_EQ(h->flags, c.flag_bits);
        EXPECT_EQ(h->stream_id, c.stream);
        EXPECT_EQ(h->reserved_bit, c.reserved);
    }
    EXPECT_FALSE(parse_frame_header(Bytes{0, 0, 0, 4, 0, 0, 0, 0}).has_value());
    EXPECT_FALSE(parse_frame_header({}).has_value());
}

TEST(Http2Frames, HeaderRulesPerType) {
    struct Case {
        uint32_t length;
        FrameType type;
        uint8_t flag_bits;
        uint32_t stream;
        bool valid;
    };
    using T = FrameType;
    const Case cases[] = {
        {10, T::Data, 0, 1, true},
        {0, T::Data, flags::kEndStream, 1, true},
        {10, T::Data, 0, 0, false},  // DATA on stream 0
        {0, T::Data, flags::kPadded, 1, false},
        {1, T::Data, flags::kPadded, 1, true},
        {0, T::Headers, flags::kEndHeaders, 1, true},
        {7, T::Headers, 0, 0, false},
        {5, T::Headers, flags::kPriority, 3, true},
        {4, T::Headers, flags::kPriority, 3, false},
        {5, T::Headers, flags::kPriority | flags::kPadded, 3, false},
        {6, T::Headers, flags::kPriority | flags::kPadded, 3, true},
        {5, T::Priority, 0, 1, true},
        {4, T::Priority, 0, 1, false},
        {5, T::Priority, 0, 0, false},
        {4, T::RstStream, 0, 1, true},
        {8, T::RstStream, 0, 1, false},
        {4, T::RstStream, 0, 0, false},
        {0, T::Settings, 0, 0, true},
        {18, T::Settings, 0, 0, true},
        {7, T::Settings, 0, 0, false},  // not a multiple of 6
        {6, T::Settings, 0, 1, false},
        {0, T::Settings, flags::kAck, 0, true},
        {6, T::Settings, flags::kAck, 0, false},
        {4, T::PushPromise, flags::kEndHeaders, 1, true},
        {3, T::PushPromise, 0, 1, false},
        {4, T::PushPromise, flags::kPadded, 1, false},
        {4, T::PushPromise, 0, 0, false},
        {8, T::Ping, 0, 0, true},
        {8, T::Ping, flags::kAck, 0, true},
        {7, T::Ping, 0, 0, false},
        {8, T::Ping, 0, 1, false},
        {8, T::GoAway, 0, 0, true},
        {200, T::GoAway, 0, 0, true},
        {7, T::GoAway, 0, 0, false},
        {8, T::GoAway, 0, 3, false},
        {4, T::WindowUpdate, 0, 0, true},
        {4, T::WindowUpdate, 0, 9, true},
        {5, T::WindowUpdate, 0, 0, false},
        {100, T::Continuation, 0, 1, true},
        {100, T::Continuation, 0, 0, false},
    };
    for (const Case& c : cases) {
        FrameHeader h;
        h.length = c.length;
        h.type = static_cast<uint8_t>(c.type);
        h.flags = c.flag_bits;
        h.stream_id = c.stream;
        SCOPED_TRACE("type " + std::to_string(h.type) + " len " + std::to_string(c.length) +
                     " flags " + std::to_string(c.flag_bits) + " stream " +
                     std::to_string(c.stream));
        EXPECT_EQ(frame_header_error(h).empty(), c.valid) << frame_header_error(h);
    }
}

TEST(Http2Frames, UnknownTypesAreAlwaysAcceptable) {
    for (uint8_t type : {0x0a, 0x0c, 0x10, 0xff}) {
        FrameHeader h;
        h.type = type;
        h.length = 3;
        h.flags = 0xff;
        EXPECT_FALSE(h.known_type());
        EXPECT_TRUE(frame_header_error(h).empty());
    }
}

TEST(Http2Frames, HeadersFragmentStripsPaddingAndPriority) {
    struct Case {
        uint8_t flag_bits;
        Bytes payload;
        std::optional<Bytes> fragment;
    };
    const Case cases[] = {
        {flags::kEndHeaders, {0x82, 0x84}, Bytes{0x82, 0x84}},
        {flags::kPadded, {2, 0x82, 0x84, 0, 0}, Bytes{0x82, 0x84}},
        {flags::kPadded, {0, 0x82}, Bytes{0x82}},
        {flags::kPadded, {4, 0x82, 0, 0}, std::nullopt},  // padding past the end
        {flags::kPadded, {}, std::nullopt},
        {flags::kPriority, {0x80, 0, 0, 1, 15, 0x82}, Bytes{0x82}},
        {flags::kPriority, {0, 0, 0, 1}, std::nullopt},
        {flags::kPriority | flags::kPadded, {1, 0, 0, 0, 3, 200, 0x82, 0x86, 0}, Bytes{0x82, 0x86}},
        {flags::kPriority | flags::kPadded, {3, 0, 0, 0, 3, 200, 0x82}, std::nullopt},
        {flags::kPadded, {3, 0, 0, 0}, Bytes{}},  // all padding: an empty fragment is fine
    };
    for (const Case& c : cases) {
        FrameHeader h;
        h.type = static_cast<uint8_t>(FrameType::Headers);
        h.flags = c.flag_bits;
        h.stream_id = 1;
        h.length = static_cast<uint32_t>(c.payload.size());
        const auto got = headers_fragment(h, c.payload);
        ASSERT_EQ(got.has_value(), c.fragment.has_value());
        if (got) EXPECT_EQ(Bytes(got->begin(), got->end()), *c.fragment);
    }
}

TEST(Http2Frames, PushPromiseFields) {
    FrameHeader h;
    h.type = static_cast<uint8_t>(FrameType::PushPromise);
    h.stream_id = 1;
    const Bytes plain = {0x80, 0, 0, 2, 0x82, 0x87};  // reserved bit set: ignored
    h.length = static_cast<uint32_t>(plain.size());
    auto got = push_promise_payload(h, plain);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->promised_stream_id, 2u);
    EXPECT_EQ(Bytes(got->fragment.begin(), got->fragment.end()), (Bytes{0x82, 0x87}));

    h.flags = flags::kPadded;
    const Bytes padded = {1, 0, 0, 0, 4, 0x82, 0};
    got = push_promise_payload(h, padded);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->promised_stream_id, 4u);
    EXPECT_EQ(got->fragment.size(), 1u);
    EXPECT_FALSE(push_promise_payload(h, Bytes{9, 0, 0, 0, 4}));
    h.flags = 0;
    EXPECT_FALSE(push_promise_payload(h, Bytes{0, 0, 2}));
}

TEST(Http2Frames, DataPaddingOverhead) {
    FrameHeader h;
    h.type = static_cast<uint8_t>(FrameType::Data);
    h.stream_id = 1;
    h.length = 10;
    EXPECT_EQ(padding_overhead(h, 200), 0u);  // not PADDED: the first byte is data
    h.flags = flags::kPadded;
    EXPECT_EQ(padding_overhead(h, 0), 1u);
    EXPECT_EQ(padding_overhead(h, 9), 10u);  // all padding, no data
    EXPECT_FALSE(padding_overhead(h, 10));
    EXPECT_FALSE(padding_overhead(h, 255));
}

TEST(Http2Frames, SettingsEntries) {
    Settings s;
    EXPECT_TRUE(parse_settings({}, s));
    EXPECT_EQ(s.entries, 0u);
    EXPECT_FALSE(s.header_table_size);

    const Bytes entries = {
        0,    1,    0, 0, 0x10, 0,    // HEADER_TABLE_SIZE 4096
        0,    3,    0, 0, 0,    100,  // MAX_CONCURRENT_STREAMS (ignored)
        0,    5,    0, 0, 0x40, 0,    // MAX_FRAME_SIZE 16384
        0x0a, 0x0a, 1, 2, 3,    4,    // unknown (GREASE-like): ignored
        0,    1,    0, 1, 0,    0,    // HEADER_TABLE_SIZE again: the last one wins
    };
    ASSERT_TRUE(parse_settings(entries, s));
    EXPECT_EQ(s.entries, 5u);
    EXPECT_EQ(s.header_table_size, 65536u);
    EXPECT_EQ(s.max_frame_size, 16384u);

    Settings bad;
    EXPECT_FALSE(parse_settings(Bytes{0, 1, 0, 0, 0x10}, bad));
    EXPECT_FALSE(parse_settings(Bytes{0, 1, 0, 0, 0x10, 0, 0}, bad));
}

TEST(Http2Frames, RstStreamGoAwayWindowUpdate) {
    EXPECT_EQ(rst_stream_error(Bytes{0, 0, 0, 8}), error_code::kCancel);
    EXPECT_EQ(rst_stream_error(Bytes{0, 0, 0, 7}), error_code::kRefusedStream);
    EXPECT_FALSE(rst_stream_error(Bytes{0, 0, 8}));
    EXPECT_FALSE(rst_stream_error(Bytes{0, 0, 0, 0, 8}));

    const auto goaway = parse_goaway(Bytes{0x80, 0, 0, 0x0b, 0, 0, 0, 0xb, 'c', 'a', 'l', 'm'});
    ASSERT_TRUE(goaway);
    EXPECT_EQ(goaway->last_stream_id, 11u);
    EXPECT_EQ(goaway->error_code, error_code::kEnhanceYourCalm);
    EXPECT_FALSE(parse_goaway(Bytes{0, 0, 0, 1, 0, 0, 0}));

    EXPECT_EQ(window_update_increment(Bytes{0x80, 0, 0xff, 0xff}), 0xffffu);
    EXPECT_FALSE(window_update_increment(Bytes{0, 0xff, 0xff}));
}

TEST(Http2Frames, PrefaceNeedsSixteenMatchingBytes) {
    const std::string_view preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    ASSERT_EQ(preface.size(), kPrefaceBytes);
    EXPECT_EQ(Bytes(client_preface().begin(), client_preface().end()), text(preface));
    EXPECT_TRUE(starts_with_preface(text(preface)));
    EXPECT_TRUE(starts_with_preface(
        concat({text(preface), whole_frame(FrameType::Settings, 0, 0, {0, 4, 0, 0, 0xff, 0xff})})));
    EXPECT_TRUE(starts_with_preface(text(preface.substr(0, 16))));
    EXPECT_FALSE(starts_with_preface(text(preface.substr(0, 15))));
    EXPECT_FALSE(starts_with_preface(text("PRI * HTTP/2.0\r\n\r\nSX\r\n\r\n")));
    EXPECT_FALSE(starts_with_preface(text("GET / HTTP/1.1\r\nHost: a\r\n\r\n")));
    EXPECT_FALSE(starts_with_preface({}));
}

TEST(Http2Frames, LooksLikeFramesAcceptsTypicalConnectionMiddles) {
    const Bytes settings = whole_frame(FrameType::Settings, 0, 0, {0, 3, 0, 0, 0, 100});
    const Bytes settings_ack = whole_frame(FrameType::Settings, flags::kAck, 0);
    const Bytes window = whole_frame(FrameType::WindowUpdate, 0, 0, {0, 0x0f, 0, 1});
    const Bytes headers = whole_frame(FrameType::Headers, flags::kEndHeaders, 1, {0x82, 0x84});
    const Bytes data = whole_frame(FrameType::Data, flags::kEndStream, 1, text("hello"));
    const Bytes ping = whole_frame(FrameType::Ping, 0, 0, Bytes(8, 7));
    const Bytes rst = whole_frame(FrameType::RstStream, 0, 5, {0, 0, 0, 8});
    const Bytes open_block = whole_frame(FrameType::Headers, 0, 3, {0x82});
    const Bytes continuation = whole_frame(FrameType::Continuation, flags::kEndHeaders, 3, {0x84});

    const Bytes good[] = {
        settings,
        concat({settings, settings_ack, window}),
        concat({headers, data}),
        data,
        ping,
        rst,
        concat({open_block, continuation, data}),
        // A large DATA frame whose payload runs past the captured bytes.
        Bytes(frame(60000, 0, 0, 7, Bytes(100, 'x'))),
    };
    for (const Bytes& b : good) EXPECT_TRUE(looks_like_frames(b));
}

TEST(Http2Frames, LooksLikeFramesRejectsOtherProtocols) {
    const Bytes bad[] = {
        {},
        Bytes{0, 0, 0, 4, 0, 0, 0, 0},  // eight bytes: not even a frame header
        text("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        text("HTTP/1.1 200 OK\r\n\r\n"),
        text("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        // TLS ClientHello and application data records.
        {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03},
        {0x17, 0x03, 0x03, 0x00, 0x45, 0xaa, 0xbb, 0xcc, 0xdd, 0xee},
        Bytes(32, 0),                                           // DATA on stream 0
        frame(4, 0x0a, 0, 0, {1, 2, 3, 4}),                     // an extension type first
        frame(0, 1, flags::kEndHeaders, 2),                     // HEADERS on an even stream
        frame(0, 1, 0x40, 1),                                   // an undefined flag
        frame(7, 4, 0, 0, Bytes(7, 0)),                         // SETTINGS not a multiple of 6
        frame(2, 9, flags::kEndHeaders, 1, {0x82, 0x84}),       // CONTINUATION with no HEADERS
        frame(2 << 20, 0, 0, 1),                                // a 2 MiB frame
        frame(4, 3, 0, 0x80000001, {0, 0, 0, 8}),               // reserved bit set
        concat({whole_frame(FrameType::Headers, 0, 3, {0x82}),  // open block, then DATA
                whole_frame(FrameType::Data, 0, 3, {1})}),
        concat({whole_frame(FrameType::Settings, 0, 0), Bytes(9, 0xff)}),  // good, then junk
        whole_frame(FrameType::Headers, flags::kPadded | flags::kEndHeaders, 1, {9, 0x82}),
        whole_frame(FrameType::Data, flags::kPadded, 1, {3, 'a'}),
    };
    for (size_t i = 0; i < std::size(bad); ++i) {
        EXPECT_FALSE(looks_like_frames(bad[i])) << "case " << i;
    }
}

}  // namespace
}  // namespace sonde::protocols::http2
