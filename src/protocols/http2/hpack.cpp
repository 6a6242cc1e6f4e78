// HPACK (RFC 7541) decoding reduced to the fields Sonde keeps: libnghttp2's
// inflater when the whole history of the direction is known, otherwise a
// representation-by-representation decoder over a model of the dynamic table
// that holds only the entries inserted since it started.
#include "protocols/http2/hpack.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>
#include <vector>

namespace sonde::protocols::http2 {

namespace {

// RFC 7541 section 4.2 and RFC 9113 section 6.5.2: the initial table size.
constexpr uint32_t kDefaultTableSize = 4096;
// Bounds the memory of one decoder whatever a peer announces.
constexpr uint32_t kMaxTableSizeCap = 64 * 1024;
constexpr uint64_t kEntryOverhead = 32;  // RFC 7541 section 4.1
constexpr uint32_t kStaticEntries = 61;
constexpr uint32_t kFirstDynamicIndex = kStaticEntries + 1;

constexpr size_t kMaxPathBytes = 2048;
constexpr size_t kMaxValueBytes = 512;

constexpr std::string_view kErrTruncatedInteger = "integer runs past the end of the block";
constexpr std::string_view kErrIntegerOverflow = "integer does not fit in 32 bits";
constexpr std::string_view kErrTruncatedString = "string length runs past the end of the block";
constexpr std::string_view kErrIndexZero = "index 0";
constexpr std::string_view kErrLateSizeUpdate = "dynamic table size update after a header field";
constexpr std::string_view kErrSizeUpdateTooLarge =
    "dynamic table size update above the allowed maximum";
constexpr std::string_view kErrHuffman =
    "libnghttp2 rejected a Huffman-coded string (bad code, EOS, padding, or longer than 64 KiB)";
constexpr std::string_view kErrNoInflater = "could not create an nghttp2 inflater";
constexpr std::string_view kErrInflaterStalled = "libnghttp2 neither finished nor failed the block";
constexpr std::string_view kErrResize = "libnghttp2 refused the table size change";

// The header fields Sonde keeps. Unknown: the name itself is not known (it
// came from a dynamic-table entry inserted before the decoder started).
enum class Field : uint8_t {
    Other,
    Method,
    Path,
    Authority,
    Host,
    Status,
    ContentType,
    GrpcStatus,
    Traceparent,
    Tracestate,
    Unknown,
};

constexpr Field classify(std::string_view name) {
    // HTTP/2 field names are lower case (RFC 9113 section 8.2.1); an upper-case
    // name makes the message malformed, so it is not one of ours.
    switch (name.size()) {
        case 4:
            return name == "host" ? Field::Host : Field::Other;
        case 5:
            return name == ":path" ? Field::Path : Field::Other;
        case 7:
            if (name == ":method") return Field::Method;
            return name == ":status" ? Field::Status : Field::Other;
        case 10:
            if (name == ":authority") return Field::Authority;
            return name == "tracestate" ? Field::Tracestate : Field::Other;
        case 11:
            if (name == "grpc-status") return Field::GrpcStatus;
            return name == "traceparent" ? Field::Traceparent : Field::Other;
        case 12:
            return name == "content-type" ? Field::ContentType : Field::Other;
        default:
            return Field::Other;
    }
}

constexpr bool is_kept(Field f) {
    return f != Field::Other && f != Field::Unknown;
}

constexpr size_t value_bound(Field f) {
    return f == Field::Path ? kMaxPathBytes : kMaxValueBytes;
}

struct StaticEntry {
    std::string_view name;
    std::string_view value;
};

// RFC 7541 Appendix A; index i is kStaticTable[i - 1].
constexpr std::array<StaticEntry, kStaticEntries> kStaticTable = {{
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
}};

constexpr std::array<Field, kStaticEntries> kStaticFields = [] {
    std::array<Field, kStaticEntries> fields{};
    for (size_t i = 0; i < kStaticEntries; ++i) fields[i] = classify(kStaticTable[i].name);
    return fields;
}();

static_assert(kStaticFields[0] == Field::Authority && kStaticFields[37] == Field::Host);
static_assert(kStaticTable[60].name == "www-authenticate");

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

int parse_status(std::string_view v) {
    if (v.size() != 3) return 0;
    int code = 0;
    for (char c : v) {
        if (!is_digit(c)) return 0;
        code = code * 10 + (c - '0');
    }
    return code;
}

int parse_grpc_status(std::string_view v) {
    if (v.empty() || v.size() > 3) return -1;
    int code = 0;
    for (char c : v) {
        if (!is_digit(c)) return -1;
        code = code * 10 + (c - '0');
    }
    return code;
}

void assign_bounded(std::string& dst, std::string_view value, size_t bound) {
    dst.assign(value.data(), std::min(value.size(), bound));
}

// Collects one block's fields into `out`. The first occurrence of a field
// wins; :authority wins over host wherever each appears.
class FieldSink {
public:
    explicit FieldSink(DecodedHeaders& out) : out_(out) { out.clear(); }

    void add(Field f, std::string_view value) {
        if (!is_kept(f)) return;
        const auto bit = static_cast<uint16_t>(1u << static_cast<unsigned>(f));
        constexpr auto kAuthorityBit =
            static_cast<uint16_t>(1u << static_cast<unsigned>(Field::Authority));
        if ((seen_ & bit) != 0) return;
        if (f == Field::Host && (seen_ & kAuthorityBit) != 0) return;
        seen_ |= bit;
        switch (f) {
            case Field::Method:
                assign_bounded(out_.method, value, kMaxValueBytes);
                break;
            case Field::Path:
                assign_bounded(out_.path, value, kMaxPathBytes);
                break;
            case Field::Authority:
            case Field::Host:
                assign_bounded(out_.authority, value, kMaxValueBytes);
                break;
            case Field::Status:
                out_.status = parse_status(value);
                break;
            case Field::ContentType:
                assign_bounded(out_.content_type, value, kMaxValueBytes);
                break;
            case Field::GrpcStatus:
                out_.grpc_status = parse_grpc_status(value);
                break;
            case Field::Traceparent:
                assign_bounded(out_.traceparent, value, kMaxValueBytes);
                break;
            case Field::Tracestate:
                assign_bounded(out_.tracestate, value, kMaxValueBytes);
                break;
            case Field::Other:
            case Field::Unknown:
                break;
        }
    }

    void unknown() { out_.partial = true; }

    HpackResult result() const { return out_.partial ? HpackResult::Partial : HpackResult::Ok; }

private:
    DecodedHeaders& out_;
    uint16_t seen_ = 0;
};

struct InflaterDeleter {
    void operator()(nghttp2_hd_inflater* inflater) const noexcept {
        nghttp2_hd_inflate_del(inflater);
    }
};
using InflaterPtr = std::unique_ptr<nghttp2_hd_inflater, InflaterDeleter>;

InflaterPtr new_inflater() {
    nghttp2_hd_inflater* raw = nullptr;
    if (nghttp2_hd_inflate_new(&raw) != 0) return nullptr;
    return InflaterPtr(raw);
}

std::string_view view_of(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// A string literal (RFC 7541 section 5.2) as it sits in the block.
struct EncodedString {
    size_t begin = 0;  // the byte holding the H bit and the length prefix
    size_t data = 0;
    uint32_t length = 0;
    bool huffman = false;
};

class BlockReader {
public:
    explicit BlockReader(std::span<const uint8_t> block) : block_(block) {}

    bool done() const { return pos_ >= block_.size(); }
    uint8_t peek() const { return block_[pos_]; }
    std::string_view error() const { return error_; }

    // RFC 7541 section 5.1. Values above 2^32 - 1 or needing more than five
    // continuation bytes are errors, as in libnghttp2, so both modes agree.
    bool read_integer(unsigned prefix_bits, uint32_t& value) {
        if (done()) return fail(kErrTruncatedInteger);
        const uint32_t mask = (1u << prefix_bits) - 1;
        uint64_t v = block_[pos_++] & mask;
        if (v < mask) {
            value = static_cast<uint32_t>(v);
            return true;
        }
        for (unsigned shift = 0;; shift += 7) {
            if (done()) return fail(kErrTruncatedInteger);
            if (shift > 28) return fail(kErrIntegerOverflow);
            const uint8_t b = block_[pos_++];
            v += static_cast<uint64_t>(b & 0x7f) << shift;
            if (v > UINT32_MAX) return fail(kErrIntegerOverflow);
            if ((b & 0x80) == 0) break;
        }
        value = static_cast<uint32_t>(v);
        return true;
    }

    bool read_string(EncodedString& s) {
        s.begin = pos_;
        if (done()) return fail(kErrTruncatedInteger);
        s.huffman = (block_[pos_] & 0x80) != 0;
        if (!read_integer(7, s.length)) return false;
        if (s.length > block_.size() - pos_) return fail(kErrTruncatedString);
        s.data = pos_;
        pos_ += s.length;
        return true;
    }

    std::string_view raw(const EncodedString& s) const {
        return view_of(block_.data() + s.data, s.length);
    }
    std::span<const uint8_t> encoded(const EncodedString& s) const {
        return block_.subspan(s.begin, s.data + s.length - s.begin);
    }

private:
    bool fail(std::string_view why) {
        error_ = why;
        return false;
    }

    std::span<const uint8_t> block_;
    size_t pos_ = 0;
    std::string_view error_;
};

// Huffman-coded literals are decoded by libnghttp2 rather than by a second
// Huffman decoder: each is wrapped in a "literal header field without
// indexing, new name" representation, which never touches the scratch
// inflater's dynamic table, so one inflater serves every string of the
// connection as if they were fields of one endless block.
class HuffmanScratch {
public:
    // Either span may be empty (that string is not wanted). The views stay
    // valid until the next decode() or finish_block().
    bool decode(std::span<const uint8_t> name, std::span<const uint8_t> value,
                std::string_view& name_out, std::string_view& value_out) {
        if (!inflater_) {
            inflater_ = new_inflater();
            if (!inflater_) return false;
        }
        buffer_.clear();
        buffer_.push_back(0x00);
        append_or_empty(name);
        append_or_empty(value);
        nghttp2_nv nv{};
        int flags = 0;
        const ssize_t rv = nghttp2_hd_inflate_hd2(inflater_.get(), &nv, &flags, buffer_.data(),
                                                  buffer_.size(), /*in_final=*/0);
        if (rv != static_cast<ssize_t>(buffer_.size()) || (flags & NGHTTP2_HD_INFLATE_EMIT) == 0) {
            // A failed inflater refuses all later input: start a new one.
            inflater_.reset();
            in_block_ = false;
            return false;
        }
        in_block_ = true;
        name_out = view_of(nv.name, nv.namelen);
        value_out = view_of(nv.value, nv.valuelen);
        return true;
    }

    void finish_block() {
        if (in_block_ && inflater_) nghttp2_hd_inflate_end_headers(inflater_.get());
        in_block_ = false;
        // One huge literal should not pin its copy for the connection's life.
        if (buffer_.capacity() > 16 * 1024) std::vector<uint8_t>().swap(buffer_);
    }

private:
    void append_or_empty(std::span<const uint8_t> encoded) {
        if (encoded.empty()) {
            buffer_.push_back(0x00);  // a raw string of length 0
        } else {
            buffer_.insert(buffer_.end(), encoded.begin(), encoded.end());
        }
    }

    InflaterPtr inflater_;
    std::vector<uint8_t> buffer_;
    bool in_block_ = false;
};

// The dynamic table as far as the fallback knows it: the entries inserted
// since it started, newest first. Invariant: wherever the real table has an
// entry at position i, an entry this model holds at position i is that entry.
// So the model may keep more than the real table (it evicts by lower-bound
// sizes and an upper-bound maximum) and may know fewer entries, but never
// shifts them; an empty model is always correct.
class TableModel {
public:
    struct Entry {
        Field field = Field::Unknown;
        uint32_t name_len = 0;  // when field is not Unknown
        uint64_t size = 0;      // exact, or a lower bound when field is Unknown
        std::string value;      // only for kept fields, bounded
    };

    explicit TableModel(uint32_t max) : max_(max) {}

    // i = 0 is the newest entry (index 62).
    const Entry* at(uint64_t i) const {
        if (i >= count_) return nullptr;
        return &slots_[(head_ + count_ - 1 - i) % slots_.size()];
    }

    // RFC 7541 section 4.4.
    void insert(Field field, uint32_t name_len, uint64_t size, std::string_view value) {
        if (size > max_) {
            clear();
            return;
        }
        while (count_ > 0 && used_ + size > max_) evict_oldest();
        if (count_ == slots_.size()) grow();
        Entry& e = slots_[(head_ + count_) % slots_.size()];
        e.field = field;
        e.name_len = name_len;
        e.size = size;
        if (is_kept(field)) {
            assign_bounded(e.value, value, value_bound(field));
        } else {
            e.value.clear();
        }
        ++count_;
        used_ += size;
    }

    void set_max(uint32_t max) {
        max_ = max;
        while (used_ > max_) evict_oldest();
    }

    void clear() {
        while (count_ > 0) evict_oldest();
        head_ = 0;
    }

private:
    void evict_oldest() {
        Entry& e = slots_[head_];
        // Slots are reused; a long value's buffer is not worth keeping.
        if (e.value.capacity() > 64) std::string().swap(e.value);
        used_ -= e.size;
        head_ = (head_ + 1) % slots_.size();
        --count_;
    }

    // Entries are at least 32 bytes and the maximum is capped, so this stops
    // at kMaxTableSizeCap / 32 slots.
    void grow() {
        std::vector<Entry> bigger(std::max<size_t>(8, slots_.size() * 2));
        for (size_t i = 0; i < count_; ++i) {
            bigger[i] = std::move(slots_[(head_ + i) % slots_.size()]);
        }
        slots_ = std::move(bigger);
        head_ = 0;
    }

    std::vector<Entry> slots_;
    size_t head_ = 0;  // the oldest entry
    size_t count_ = 0;
    uint64_t used_ = 0;
    uint32_t max_;
};

}  // namespace

struct HpackDecoder::State {
    InflaterPtr exact;  // null once fallen back
    HuffmanScratch huffman;
    uint32_t settings_max = kDefaultTableSize;
    TableModel table{kDefaultTableSize};
    // Why the last Error was returned; static text.
    std::string_view last_error;

    HpackResult decode_exact(std::span<const uint8_t> block, FieldSink& sink);
    HpackResult decode_fallback(std::span<const uint8_t> block, FieldSink& sink);
    HpackResult decode_literal(BlockReader& reader, FieldSink& sink);
    HpackResult fail(std::string_view why);
    void fall_back(std::string_view why);
};

HpackResult HpackDecoder::State::fail(std::string_view why) {
    last_error = why;
    return HpackResult::Error;
}

void HpackDecoder::State::fall_back(std::string_view why) {
    last_error = why;
    exact.reset();
    // What the real table holds now is unknown (the block that failed may have
    // inserted entries past the fault), so the model starts empty; its maximum
    // stays at the announced one, an upper bound of the real table's.
    table.clear();
    table.set_max(settings_max);
}

HpackResult HpackDecoder::State::decode_exact(std::span<const uint8_t> block, FieldSink& sink) {
    const uint8_t* in = block.data();
    size_t left = block.size();
    while (true) {
        nghttp2_nv nv{};
        int flags = 0;
        const ssize_t rv =
            nghttp2_hd_inflate_hd2(exact.get(), &nv, &flags, in, left, /*in_final=*/1);
        if (rv < 0) {
            fall_back(nghttp2_strerror(static_cast<int>(rv)));
            return HpackResult::Error;
        }
        in += rv;
        left -= static_cast<size_t>(rv);
        if ((flags & NGHTTP2_HD_INFLATE_EMIT) != 0) {
            sink.add(classify(view_of(nv.name, nv.namelen)), view_of(nv.value, nv.valuelen));
        }
        if ((flags & NGHTTP2_HD_INFLATE_FINAL) != 0) {
            nghttp2_hd_inflate_end_headers(exact.get());
            return HpackResult::Ok;
        }
        if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0) {
            // With in_final set libnghttp2 either finishes or fails; anything
            // else leaves its state unknown.
            fall_back(kErrInflaterStalled);
            return HpackResult::Error;
        }
    }
}

HpackResult HpackDecoder::State::decode_fallback(std::span<const uint8_t> block, FieldSink& sink) {
    BlockReader reader(block);
    bool at_head = true;
    while (!reader.done()) {
        const uint8_t first = reader.peek();
        if ((first & 0x80) != 0) {  // RFC 7541 section 6.1
            at_head = false;
            uint32_t index = 0;
            if (!reader.read_integer(7, index)) return fail(reader.error());
            if (index == 0) return fail(kErrIndexZero);
            if (index <= kStaticEntries) {
                sink.add(kStaticFields[index - 1], kStaticTable[index - 1].value);
            } else if (const TableModel::Entry* e = table.at(index - kFirstDynamicIndex);
                       e != nullptr && e->field != Field::Unknown) {
                sink.add(e->field, e->value);
            } else {
                sink.unknown();
            }
        } else if ((first & 0xe0) == 0x20) {  // RFC 7541 section 6.3
            if (!at_head) return fail(kErrLateSizeUpdate);
            uint32_t size = 0;
            if (!reader.read_integer(5, size)) return fail(reader.error());
            if (size > settings_max) return fail(kErrSizeUpdateTooLarge);
            table.set_max(size);
        } else {  // RFC 7541 section 6.2
            at_head = false;
            const HpackResult r = decode_literal(reader, sink);
            if (r == HpackResult::Error) return r;
        }
    }
    return sink.result();
}

HpackResult HpackDecoder::State::decode_literal(BlockReader& reader, FieldSink& sink) {
    const bool indexing = (reader.peek() & 0x40) != 0;
    uint32_t index = 0;
    if (!reader.read_integer(indexing ? 6 : 4, index)) return fail(reader.error());

    Field field = Field::Unknown;
    uint32_t name_len = 0;
    EncodedString name;
    if (index == 0) {
        if (!reader.read_string(name)) return fail(reader.error());
    } else if (index <= kStaticEntries) {
        field = kStaticFields[index - 1];
        name_len = static_cast<uint32_t>(kStaticTable[index - 1].name.size());
    } else if (const TableModel::Entry* e = table.at(index - kFirstDynamicIndex)) {
        // Copied out: inserting below may evict the entry itself.
        field = e->field;
        name_len = e->name_len;
    }
    EncodedString value;
    if (!reader.read_string(value)) return fail(reader.error());

    std::string_view name_text;
    std::string_view value_text = reader.raw(value);
    const bool decode_name = index == 0 && name.huffman;
    if (index == 0 && !name.huffman) {
        name_text = reader.raw(name);
        field = classify(name_text);
        name_len = name.length;
    }
    // The value is needed for a kept field, and for its decoded length when
    // it enters the table; a Huffman name is not classified yet.
    const bool decode_value = value.huffman && (indexing || decode_name || is_kept(field));
    if (decode_name || decode_value) {
        std::string_view decoded_value;
        if (!huffman.decode(decode_name ? reader.encoded(name) : std::span<const uint8_t>{},
                            decode_value ? reader.encoded(value) : std::span<const uint8_t>{},
                            name_text, decoded_value)) {
            return fail(kErrHuffman);
        }
        if (decode_name) {
            field = classify(name_text);
            name_len = static_cast<uint32_t>(name_text.size());
        }
        if (decode_value) value_text = decoded_value;
    }

    if (field == Field::Unknown) {
        sink.unknown();
    } else {
        sink.add(field, value_text);
    }
    if (indexing) {
        // An unknown name's length is unknown: the size is a lower bound.
        const uint64_t size = uint64_t{name_len} + value_text.size() + kEntryOverhead;
        table.insert(field, name_len, size, value_text);
    }
    return HpackResult::Ok;
}

HpackDecoder::HpackDecoder(bool history_known) : state_(std::make_unique<State>()) {
    if (history_known) {
        state_->exact = new_inflater();
        if (!state_->exact) state_->last_error = kErrNoInflater;
    }
}

HpackDecoder::~HpackDecoder() = default;
HpackDecoder::HpackDecoder(HpackDecoder&&) noexcept = default;
HpackDecoder& HpackDecoder::operator=(HpackDecoder&&) noexcept = default;

HpackResult HpackDecoder::decode(std::span<const uint8_t> block, DecodedHeaders& out) {
    FieldSink sink(out);
    if (!state_) return HpackResult::Error;
    State& s = *state_;
    if (s.exact) return s.decode_exact(block, sink);
    const HpackResult r = s.decode_fallback(block, sink);
    s.huffman.finish_block();
    if (r == HpackResult::Error) {
        // The rest of the block may have inserted entries: positions in the
        // model would no longer match the real table.
        s.table.clear();
    }
    return r;
}

void HpackDecoder::set_max_table_size(uint32_t bytes) {
    if (!state_) return;
    State& s = *state_;
    s.settings_max = std::min(bytes, kMaxTableSizeCap);
    // The model's maximum is an upper bound of the real table's: lowering the
    // announced size forces the encoder down, and raising it may already have
    // been used by an update the decoder never saw.
    s.table.set_max(s.settings_max);
    if (s.exact && nghttp2_hd_inflate_change_table_size(s.exact.get(), s.settings_max) != 0) {
        s.fall_back(kErrResize);
    }
}

bool HpackDecoder::exact() const {
    return state_ && state_->exact;
}

}  // namespace sonde::protocols::http2
