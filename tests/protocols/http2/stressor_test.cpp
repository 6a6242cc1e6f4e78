// Stressor: seeded random HTTP/2 conversations (many concurrent streams,
// plain HTTP and gRPC, CONTINUATION, padding, 1xx, resets, control and
// extension frames), each direction cut at random split points (and, in one
// variant, with DATA payload bytes left uncaptured), must yield exactly the
// exchanges of the unsplit feed, with timestamps that follow the pieces
// holding each message's first and last byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../handler_test_support.h"
#include "http2_test_writer.h"
#include "protocols/http2/frames.h"
#include "protocols/http2/http2.h"

namespace sonde::protocols::http2 {
namespace {

using test::Bytes;
using test::Fields;

using Encoder = test::HpackEncoder;

// One direction's bytes; `body` marks DATA payload bytes whose content the
// handler never needs (everything but the Pad Length byte).
struct ByteStream {
    Bytes bytes;
    std::vector<bool> body;

    size_t size() const { return bytes.size(); }

    // Appends one frame; returns the offset of its first byte.
    size_t frame(FrameType type, uint8_t flag_bits, uint32_t stream, const Bytes& payload,
                 size_t body_from = SIZE_MAX) {
        const size_t begin = bytes.size();
        test::append_frame_header(bytes, type, flag_bits, stream,
                                  static_cast<uint32_t>(payload.size()));
        body.insert(body.end(), kFrameHeaderBytes, false);
        bytes.insert(bytes.end(), payload.begin(), payload.end());
        for (size_t i = 0; i < payload.size(); ++i) body.push_back(i >= body_from);
        return begin;
    }
};

struct Span {
    size_t first = 0;  // offsets of a message's first and last byte
    size_t last = 0;
    bool on_request_stream = false;  // the byte stream that holds it
};

struct Expected {
    Exchange exchange;  // times left zero
    Span request;
    Span response;
};

// A write: `end` bytes of one direction's stream exist once it happened.
struct Write {
    bool from_client = false;
    size_t end = 0;
};

struct Conversation {
    ByteStream requests;
    ByteStream responses;
    std::vector<Write> writes;
    // Where the server's SETTINGS end: the client's blocks after them use
    // the larger table they allow, so the handler must see them first.
    size_t server_settings_end = 0;
    std::vector<Expected> expected;
};

enum class Kind : uint8_t { Get, Post, Grpc, GrpcTrailersOnly, ClientCancel, ServerRefused, Early };

class Generator {
public:
    explicit Generator(uint64_t seed) : rng_(seed) {}

    int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    bool chance(int percent) { return uniform(1, 100) <= percent; }

    Conversation conversation() {
        Conversation c;
        // Client preface and SETTINGS, then the server's SETTINGS raising the
        // client's header table; the client adopts it for its next block.
        c.requests.bytes = {'P', 'R', 'I',  ' ',  '*',  ' ',  'H', 'T', 'T',  'P',  '/',  '2',
                            '.', '0', '\r', '\n', '\r', '\n', 'S', 'M', '\r', '\n', '\r', '\n'};
        c.requests.body.assign(c.requests.bytes.size(), false);
        c.requests.frame(FrameType::Settings, 0, 0, setting(3, 100));
        end_write(c, true);
        c.responses.frame(FrameType::Settings, 0, 0,
                          concat(setting(setting::kHeaderTableSize, 8192), setting(3, 128)));
        end_write(c, false);
        c.server_settings_end = c.responses.size();
        client_.change_table_size(8192);

        const int total = uniform(3, 40);
        int opened = 0;
        while (opened < total || !active_.empty()) {
            const int action = uniform(1, 100);
            if (action <= 25 && opened < total && active_.size() < 12) {
                open_stream(c, opened++);
            } else if (action <= 30) {
                control(c, chance(50));
            } else if (!active_.empty()) {
                advance(c, active_[static_cast<size_t>(uniform(0, int(active_.size()) - 1))]);
            } else if (opened < total) {
                open_stream(c, opened++);
            }
        }
        for (auto& [id, s] : streams_) c.expected.push_back(s.expected);
        return c;
    }

private:
    struct Stream {
        uint32_t id = 0;
        Kind kind = Kind::Get;
        Expected expected;
        int request_frames_left = 0;  // DATA frames still to send
        bool request_done = false;
        int response_step = 0;
        bool finished = false;
    };

    static Bytes concat(Bytes a, const Bytes& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    }

    static Bytes setting(uint16_t id, uint32_t value) {
        return {static_cast<uint8_t>(id >> 8),     static_cast<uint8_t>(id),
                static_cast<uint8_t>(value >> 24), static_cast<uint8_t>(value >> 16),
                static_cast<uint8_t>(value >> 8),  static_cast<uint8_t>(value)};
    }

    void end_write(Conversation& c, bool from_client) {
        const size_t end = from_client ? c.requests.size() : c.responses.size();
        if (!c.writes.empty() && c.writes.back().from_client == from_client) {
            c.writes.back().end = end;  // consecutive writes of one side: one syscall
        } else {
            c.writes.push_back({from_client, end});
        }
    }

    std::string word(int min_len, int max_len) {
        std::string w(static_cast<size_t>(uniform(min_len, max_len)), 'a');
        for (char& ch : w) ch = static_cast<char>('a' + uniform(0, 25));
        return w;
    }

    // HEADERS (+ CONTINUATIONs) carrying `block`; returns [first, last] offsets.
    Span header_block(ByteStream& s, uint32_t stream, const Bytes& block, bool end_stream) {
        const size_t max_fragment =
            chance(25) ? static_cast<size_t>(uniform(1, 40)) : block.size() + 1;
        const size_t first = std::min(block.size(), max_fragment);
        uint8_t f = end_stream ? flags::kEndStream : 0;
        if (first == block.size()) f |= flags::kEndHeaders;
        Bytes payload;
        int pad = -1;
        if (chance(20)) {
            pad = uniform(0, 20);
            f |= flags::kPadded;
            payload.push_back(static_cast<uint8_t>(pad));
        }
        if (chance(10)) {
            f |= flags::kPriority;
            payload.insert(payload.end(), {0, 0, 0, 0, 200});
        }
        payload.insert(payload.end(), block.begin(), block.begin() + static_cast<long>(first));
        if (pad > 0) payload.insert(payload.end(), static_cast<size_t>(pad), 0);
        Span span;
        span.first = s.frame(FrameType::Headers, f, stream, payload);
        for (size_t pos = first; pos < block.size();) {
            const size_t n = std::min(block.size() - pos, max_fragment);
            const Bytes part(block.begin() + static_cast<long>(pos),
                             block.begin() + static_cast<long>(pos + n));
            pos += n;
            s.frame(FrameType::Continuation, pos == block.size() ? flags::kEndHeaders : 0, stream,
                    part);
        }
        span.last = s.size() - 1;
        return span;
    }

    // A DATA frame of `size` data bytes; returns [first, last] offsets.
    Span data(ByteStream& s, uint32_t stream, size_t size, bool end_stream) {
        Bytes payload;
        uint8_t f = end_stream ? flags::kEndStream : 0;
        size_t body_from = 0;
        if (chance(20)) {
            const int pad = uniform(0, 30);
            f |= flags::kPadded;
            payload.push_back(static_cast<uint8_t>(pad));
            payload.resize(1 + size, 'd');
            payload.resize(1 + size + static_cast<size_t>(pad), 0);
            body_from = 1;
        } else {
            payload.resize(size, 'd');
        }
        Span span;
        span.first = s.frame(FrameType::Data, f, stream, payload, body_from);
        span.last = s.size() - 1;
        return span;
    }

    void control(Conversation& c, bool from_client) {
        ByteStream& s = from_client ? c.requests : c.responses;
        switch (uniform(0, 4)) {
            case 0:
                s.frame(FrameType::Ping, uniform(0, 1) ? flags::kAck : 0, 0, Bytes(8, 9));
                break;
            case 1:
                s.frame(FrameType::WindowUpdate, 0, 0, Bytes{0, 1, 0, 0});
                break;
            case 2:
                s.frame(FrameType::Settings, flags::kAck, 0, {});
                break;
            case 3:  // an extension frame (PRIORITY_UPDATE): must be skipped
                s.frame(static_cast<FrameType>(0x10), 0, 0, Bytes{0, 0, 0, 1, 'u', '=', '1'});
                break;
            default:
                if (!active_.empty()) {
                    s.frame(FrameType::WindowUpdate, 0, active_.front(), Bytes{0, 0, 0x40, 0});
                }
                break;
        }
        end_write(c, from_client);
    }

    void open_stream(Conversation& c, int index) {
        const uint32_t id = next_id_;
        next_id_ += 2;
        Stream& s = streams_[id];
        s.id = id;
        s.kind = static_cast<Kind>(uniform(0, 6));
        Exchange& ex = s.expected.exchange;
        ex.protocol_version = "2";
        const bool grpc = s.kind == Kind::Grpc || s.kind == Kind::GrpcTrailersOnly ||
                          s.kind == Kind::ClientCancel;
        ex.grpc = grpc;
        const char* hosts[] = {"api.local", "users.svc:8080", "grpc.internal:50051"};
        ex.host = hosts[uniform(0, 2)];
        Fields fields;
        if (grpc) {
            ex.method = "POST";
            ex.path = "/pkg." + word(3, 8) + "/" + word(3, 8) + std::to_string(index);
            fields = {{":method", "POST"},   {":scheme", "http"},
                      {":path", ex.path},    {":authority", ex.host},
                      {"te", "trailers"},    {"content-type", "application/grpc+proto"},
                      {"grpc-timeout", "1S"}};
        } else {
            ex.method = s.kind == Kind::Get || s.kind == Kind::Early ? "GET" : "POST";
            ex.path = "/" + word(1, 10) + "/" + std::to_string(index);
            std::string target = ex.path;
            if (chance(40)) target += "?q=" + word(1, 8);
            fields = {{":method", ex.method},
                      {":scheme", "https"},
                      {":path", target},
                      {":authority", ex.host},
                      {"accept", "*/*"}};
            if (ex.method == "POST") fields.emplace_back("content-type", "application/json");
        }
        fields.emplace_back("user-agent", "stressor/1.0");
        fields.emplace_back("x-request-id", word(8, 16));
        if (chance(50)) {
            ex.traceparent = "00-" + std::string(32, 'a' + static_cast<char>(index % 6)) + "-" +
                             std::string(16, 'b') + "-01";
            fields.emplace_back("traceparent", ex.traceparent);
            if (chance(50)) {
                ex.tracestate = "k=" + word(1, 5);
                fields.emplace_back("tracestate", ex.tracestate);
            }
        }
        const bool has_body = ex.method == "POST";
        s.request_frames_left = has_body ? uniform(1, 3) : 0;
        s.expected.request = header_block(c.requests, id, client_.encode(fields), !has_body);
        s.expected.request.on_request_stream = true;
        if (!has_body) s.request_done = true;
        active_.push_back(id);
        // Often the first DATA goes out in the same write.
        if (has_body && chance(50)) advance_request(c, s);
        end_write(c, true);
    }

    void advance_request(Conversation& c, Stream& s) {
        const bool last = --s.request_frames_left == 0;
        const size_t size = static_cast<size_t>(chance(10) ? 0 : uniform(1, 2000));
        const Span d = data(c.requests, s.id, size, last);
        s.expected.exchange.request_body_bytes += size;
        if (last) {
            s.expected.request.last = d.last;
            s.request_done = true;
        }
    }

    void advance(Conversation& c, uint32_t id) {
        Stream& s = streams_[id];
        if (!s.request_done) {
            advance_request(c, s);
            end_write(c, true);
            return;
        }
        advance_response(c, s);
        if (s.finished) active_.erase(std::find(active_.begin(), active_.end(), id));
    }

    void finish(Stream& s, const Span& end) {
        s.expected.response.last = end.last;
        s.finished = true;
    }

    void advance_response(Conversation& c, Stream& s) {
        Exchange& ex = s.expected.exchange;
        ByteStream& out = c.responses;
        bool from_client = false;
        switch (s.kind) {
            case Kind::ClientCancel: {
                ByteStream& in = c.requests;
                const size_t at = in.frame(FrameType::RstStream, 0, s.id, Bytes{0, 0, 0, 8});
                s.expected.response = {at, in.size() - 1, true};
                ex.reset = true;
                ex.grpc_status = 1;
                s.finished = true;
                from_client = true;
                break;
            }
            case Kind::ServerRefused: {
                const size_t at = out.frame(FrameType::RstStream, 0, s.id, Bytes{0, 0, 0, 7});
                s.expected.response = {at, out.size() - 1, false};
                ex.reset = true;
                s.finished = true;
                break;
            }
            case Kind::GrpcTrailersOnly: {
                ex.status = 200;
                ex.grpc_status = uniform(1, 16);
                s.expected.response =
                    header_block(out, s.id,
                                 server_.encode({{":status", "200"},
                                                 {"content-type", "application/grpc"},
                                                 {"grpc-status", std::to_string(ex.grpc_status)},
                                                 {"grpc-message", word(0, 10)}}),
                                 true);
                s.finished = true;
                break;
            }
            case Kind::Grpc:
                if (s.response_step == 0) {
                    ex.status = 200;
                    s.expected.response = header_block(
                        out, s.id,
                        server_.encode({{":status", "200"}, {"content-type", "application/grpc"}}),
                        false);
                } else if (s.response_step < 3) {
                    const size_t size = static_cast<size_t>(uniform(5, 1500));
                    data(out, s.id, size, false);
                    ex.response_body_bytes += size;
                } else {
                    const int codes[] = {0, 0, 0, 2, 5, 13, 14};
                    ex.grpc_status = codes[uniform(0, 6)];
                    finish(s, header_block(
                                  out, s.id,
                                  server_.encode({{"grpc-status", std::to_string(ex.grpc_status)},
                                                  {"grpc-message", word(0, 6)}}),
                                  true));
                }
                ++s.response_step;
                break;
            case Kind::Early:
                if (s.response_step == 0) {
                    header_block(
                        out, s.id,
                        server_.encode({{":status", "103"}, {"link", "</a.css>; rel=preload"}}),
                        false);
                    ++s.response_step;
                    break;
                }
                [[fallthrough]];
            case Kind::Get:
            case Kind::Post: {
                const int step = s.kind == Kind::Early ? s.response_step - 1 : s.response_step;
                if (step == 0) {
                    const int statuses[] = {200, 201, 204, 304, 404, 500, 503};
                    ex.status = statuses[uniform(0, 6)];
                    const bool empty = ex.status == 204 || ex.status == 304 || chance(15);
                    s.expected.response =
                        header_block(out, s.id,
                                     server_.encode({{":status", std::to_string(ex.status)},
                                                     {"server", "stress"},
                                                     {"content-type", "application/json"},
                                                     {"x-trace", word(4, 12)}}),
                                     empty);
                    if (empty) s.finished = true;
                } else {
                    const bool last = step >= 2 && chance(60);
                    const size_t size = static_cast<size_t>(chance(10) ? 0 : uniform(1, 3000));
                    const Span d = data(out, s.id, size, last);
                    ex.response_body_bytes += size;
                    if (last) finish(s, d);
                }
                ++s.response_step;
                break;
            }
        }
        end_write(c, from_client);
    }

    std::mt19937_64 rng_;
    Encoder client_{8192};
    Encoder server_{8192};
    uint32_t next_id_ = 1;
    std::map<uint32_t, Stream> streams_;
    std::vector<uint32_t> active_;
};

struct Piece {
    size_t begin = 0;
    size_t end = 0;       // exclusive
    size_t captured = 0;  // bytes of the piece that were copied
};

// Cuts [0, size) into pieces: many tiny ones, some medium, a few large; a
// cut is always made at `forced` (0 for none).
std::vector<Piece> split(Generator& g, size_t size, size_t forced) {
    std::vector<Piece> pieces;
    size_t pos = 0;
    while (pos < size) {
        const int kind = g.uniform(1, 10);
        size_t n = kind <= 3   ? static_cast<size_t>(g.uniform(1, 12))
                   : kind <= 7 ? static_cast<size_t>(g.uniform(13, 200))
                               : static_cast<size_t>(g.uniform(201, 5000));
        size_t end = std::min(size, pos + n);
        if (pos < forced && end > forced) end = forced;
        pieces.push_back({pos, end, end - pos});
        pos = end;
    }
    return pieces;
}

// One piece per write, as the program made them.
std::vector<Piece> by_writes(const Conversation& c, bool client) {
    std::vector<Piece> pieces;
    size_t pos = 0;
    for (const Write& w : c.writes) {
        if (w.from_client != client || w.end == pos) continue;
        pieces.push_back({pos, w.end, w.end - pos});
        pos = w.end;
    }
    return pieces;
}

// Leaves a random part of each piece's tail uncaptured, as long as those
// bytes are all DATA payload: the handler must skip them by count.
void drop_body_tails(Generator& g, const ByteStream& s, std::vector<Piece>& pieces) {
    for (Piece& p : pieces) {
        size_t keep = p.end;
        while (keep > p.begin && s.body[keep - 1]) --keep;
        if (keep == p.end) continue;
        p.captured = keep - p.begin + static_cast<size_t>(g.uniform(0, int(p.end - keep)));
    }
}

constexpr uint64_t kRequestBase = 1'000'000;
constexpr uint64_t kResponseBase = 50'000'000;

uint64_t enter_ns(uint64_t base, const Piece& p) {
    return base + 2 * p.begin;
}
uint64_t exit_ns(uint64_t base, const Piece& p) {
    return base + 2 * p.end + 1;
}

const Piece& piece_at(const std::vector<Piece>& pieces, size_t offset) {
    return *std::upper_bound(pieces.begin(), pieces.end(), offset,
                             [](size_t off, const Piece& p) { return off < p.end; });
}

// For each byte of the response stream, how much of the request stream was
// written before it: a response piece is fed only after those bytes.
std::vector<size_t> request_bytes_before(const Conversation& c) {
    std::vector<size_t> before(c.responses.size(), 0);
    size_t req = 0;
    size_t resp = 0;
    for (const Write& w : c.writes) {
        if (w.from_client) {
            req = w.end;
        } else {
            for (size_t i = resp; i < w.end; ++i) before[i] = req;
            resp = w.end;
        }
    }
    return before;
}

struct FeedOptions {
    Role role = Role::Server;
    Direction request_dir = Direction::Ingress;  // for Role::Unknown
};

std::vector<Exchange> feed(const Conversation& c, const std::vector<Piece>& req_pieces,
                           const std::vector<Piece>& resp_pieces, const FeedOptions& run,
                           ProtocolStats& stats) {
    const Direction request_dir = run.request_dir;
    const Direction response_dir =
        request_dir == Direction::Ingress ? Direction::Egress : Direction::Ingress;
    auto handler = make_handler(run.role, /*from_connection_start=*/true);
    std::vector<Exchange> out;
    auto send = [&](const ByteStream& s, const Piece& p, Direction d, uint64_t base) {
        StreamPiece piece;
        piece.captured = std::span<const uint8_t>(s.bytes).subspan(p.begin, p.captured);
        piece.length = p.end - p.begin;
        piece.ts_enter_ns = enter_ns(base, p);
        piece.ts_exit_ns = exit_ns(base, p);
        handler->on_data(d, piece, out);
    };
    const std::vector<size_t> before = request_bytes_before(c);
    size_t next_request = 0;
    for (size_t i = 0; i < resp_pieces.size(); ++i) {
        const Piece& rp = resp_pieces[i];
        // The server's SETTINGS need nothing before them, and the client's
        // blocks after them rely on them.
        size_t needed = 0;
        for (size_t b = rp.begin; b < rp.end; ++b) needed = std::max(needed, before[b]);
        if (rp.end <= c.server_settings_end) needed = 0;
        while (next_request < req_pieces.size() && req_pieces[next_request].begin < needed) {
            send(c.requests, req_pieces[next_request++], request_dir, kRequestBase);
        }
        send(c.responses, rp, response_dir, kResponseBase);
    }
    while (next_request < req_pieces.size()) {
        send(c.requests, req_pieces[next_request++], request_dir, kRequestBase);
    }
    handler->on_close(999'999'999, out);
    stats = handler->stats();
    return out;
}

std::vector<Exchange> expected_for(const Conversation& c, const std::vector<Piece>& req_pieces,
                                   const std::vector<Piece>& resp_pieces, const FeedOptions& run) {
    const Direction request_dir = run.request_dir;
    const Role role = request_dir == Direction::Ingress ? Role::Server : Role::Client;
    auto first_byte = [&](const Span& span, size_t offset) {
        const bool ingress = span.on_request_stream == (request_dir == Direction::Ingress);
        const auto& pieces = span.on_request_stream ? req_pieces : resp_pieces;
        const uint64_t base = span.on_request_stream ? kRequestBase : kResponseBase;
        const Piece& p = piece_at(pieces, offset);
        return ingress ? exit_ns(base, p) : enter_ns(base, p);
    };
    auto last_byte = [&](const Span& span, size_t offset) {
        const auto& pieces = span.on_request_stream ? req_pieces : resp_pieces;
        return exit_ns(span.on_request_stream ? kRequestBase : kResponseBase,
                       piece_at(pieces, offset));
    };
    std::vector<Exchange> expected;
    for (const Expected& e : c.expected) {
        Exchange ex = e.exchange;
        ex.role = role;
        ex.request_start_ns = first_byte(e.request, e.request.first);
        ex.request_end_ns = last_byte(e.request, e.request.last);
        ex.response_start_ns = first_byte(e.response, e.response.first);
        ex.response_end_ns = last_byte(e.response, e.response.last);
        expected.push_back(std::move(ex));
    }
    return expected;
}

using test::describe;

// Exchanges leave in the order streams end, which depends on how the two
// directions' pieces interleave; compare them by path (unique per stream).
std::vector<std::string> sorted(const std::vector<Exchange>& exchanges) {
    std::vector<std::string> out;
    for (const Exchange& e : exchanges) out.push_back(describe(e));
    std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
        return a.substr(a.find(' ')) < b.substr(b.find(' '));
    });
    return out;
}

void expect_same(const std::vector<Exchange>& got, const std::vector<Exchange>& want,
                 const ProtocolStats& stats, const std::string& context) {
    SCOPED_TRACE(context);
    test::expect_clean(stats);
    ASSERT_EQ(got.size(), want.size());
    const auto g = sorted(got);
    const auto w = sorted(want);
    for (size_t i = 0; i < g.size(); ++i) EXPECT_EQ(g[i], w[i]) << "exchange " << i;
}

constexpr uint64_t kSeeds = 200;

FeedOptions run_for(uint64_t seed) {
    switch (seed % 4) {
        case 0:
            return {Role::Server, Direction::Ingress};
        case 1:
            return {Role::Client, Direction::Egress};
        case 2:
            return {Role::Unknown, Direction::Ingress};
        default:
            return {Role::Unknown, Direction::Egress};
    }
}

TEST(Http2Stressor, RandomSplitsGiveTheUnsplitExchanges) {
    size_t exchanges = 0;
    size_t grpc = 0;
    size_t resets = 0;
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
        Generator g(seed);
        const Conversation c = g.conversation();
        const FeedOptions run = run_for(seed);
        for (const Expected& e : c.expected) {
            ++exchanges;
            grpc += e.exchange.grpc;
            resets += e.exchange.reset;
        }

        // The unsplit feed: one piece per write.
        ProtocolStats stats;
        const auto unsplit_req = by_writes(c, true);
        const auto unsplit_resp = by_writes(c, false);
        const auto unsplit = feed(c, unsplit_req, unsplit_resp, run, stats);
        expect_same(unsplit, expected_for(c, unsplit_req, unsplit_resp, run), stats,
                    "seed " + std::to_string(seed) + " unsplit");
        ASSERT_EQ(unsplit.size(), c.expected.size());

        for (int round = 0; round < 4; ++round) {
            const auto req_pieces = split(g, c.requests.size(), 0);
            const auto resp_pieces = split(g, c.responses.size(), c.server_settings_end);
            const auto got = feed(c, req_pieces, resp_pieces, run, stats);
            expect_same(got, expected_for(c, req_pieces, resp_pieces, run), stats,
                        "seed " + std::to_string(seed) + " round " + std::to_string(round));
            // Times aside, the split feed matches the unsplit one.
            ASSERT_EQ(got.size(), unsplit.size());
            if (HasFailure()) return;  // one seed's report is enough to debug
        }
    }
    // The generator does make long, varied conversations.
    EXPECT_GT(exchanges, 3000u);
    EXPECT_GT(grpc, 1000u);
    EXPECT_GT(resets, 500u);
}

TEST(Http2Stressor, RandomSplitsWithUncapturedDataPayload) {
    uint64_t uncaptured = 0;
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
        Generator g(seed * 7919);
        const Conversation c = g.conversation();
        const FeedOptions run = run_for(seed);
        for (int round = 0; round < 4; ++round) {
            auto req_pieces = split(g, c.requests.size(), 0);
            auto resp_pieces = split(g, c.responses.size(), c.server_settings_end);
            drop_body_tails(g, c.requests, req_pieces);
            drop_body_tails(g, c.responses, resp_pieces);
            for (const auto* pieces : {&req_pieces, &resp_pieces}) {
                for (const Piece& p : *pieces) uncaptured += p.end - p.begin - p.captured;
            }
            ProtocolStats stats;
            const auto got = feed(c, req_pieces, resp_pieces, run, stats);
            expect_same(got, expected_for(c, req_pieces, resp_pieces, run), stats,
                        "seed " + std::to_string(seed) + " round " + std::to_string(round));
            if (HasFailure()) return;
        }
    }
    EXPECT_GT(uncaptured, 100'000u);  // the variant did hide bytes
}

}  // namespace
}  // namespace sonde::protocols::http2
