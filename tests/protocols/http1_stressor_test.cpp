// Stressor: seeded random conversations, each direction cut at random split
// points (and, in one variant, with body bytes left uncaptured), must yield
// exactly the exchanges the unsplit conversation yields, with timestamps
// that follow the pieces holding each message's first and last byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "handler_test_support.h"
#include "protocols/http1/http1.h"

namespace sonde::protocols::http1 {
namespace {

// One direction's bytes, with the bytes whose content the handler may never
// see (Content-Length and chunk data, bodies read until close) marked.
struct ByteStream {
    std::string bytes;
    std::vector<bool> body;

    void add(std::string_view s, bool is_body = false) {
        bytes.append(s);
        body.insert(body.end(), s.size(), is_body);
    }
    size_t size() const { return bytes.size(); }
};

struct Span {
    size_t first = 0;  // offsets of a message's first and last byte
    size_t last = 0;
};

struct Conversation {
    ByteStream requests;
    ByteStream responses;
    std::vector<Span> request_spans;
    std::vector<Span> response_spans;   // the final (non-1xx) response of each exchange
    std::vector<size_t> response_ends;  // end offset of each exchange's responses, 1xx included
    std::vector<Exchange> expected;     // times left zero
};

class Generator {
public:
    explicit Generator(uint64_t seed) : rng_(seed) {}

    Conversation conversation() {
        Conversation c;
        const int count = uniform(2, 8);
        const bool until_close_last = chance(30);
        for (int i = 0; i < count; ++i) {
            exchange(c, i, until_close_last && i == count - 1);
        }
        return c;
    }

    int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    bool chance(int percent) { return uniform(1, 100) <= percent; }

private:
    std::string word(int min_len, int max_len) {
        std::string w(static_cast<size_t>(uniform(min_len, max_len)), 'a');
        for (char& ch : w) ch = static_cast<char>('a' + uniform(0, 25));
        return w;
    }

    std::string content_length_name() {
        const char* names[] = {"Content-Length", "content-length", "CONTENT-LENGTH"};
        return names[uniform(0, 2)];
    }

    // Appends a Content-Length or chunked body; returns its byte count.
    size_t body(ByteStream& out, const std::string& eol, bool chunked, std::string& headers) {
        if (!chunked) {
            const std::string data = word(0, 3000);
            headers += content_length_name() + ": " + std::to_string(data.size()) + eol;
            out.add(headers + eol);
            out.add(data, true);
            return data.size();
        }
        headers += "Transfer-Encoding: chunked" + eol;
        out.add(headers + eol);
        size_t total = 0;
        const int chunks = uniform(1, 5);
        for (int k = 0; k < chunks; ++k) {
            const std::string data = word(1, 700);
            char size_line[32];
            snprintf(size_line, sizeof(size_line), chance(50) ? "%zx" : "%zX", data.size());
            std::string line = size_line;
            if (chance(20)) line += ";ext=" + word(1, 6);
            out.add(line + eol);
            out.add(data, true);
            out.add(eol);
            total += data.size();
        }
        std::string last = "0" + eol;
        if (chance(30)) last += "X-Checksum: " + word(4, 8) + eol;
        out.add(last + eol);
        return total;
    }

    void exchange(Conversation& c, int index, bool until_close) {
        const char* methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"};
        Exchange ex;
        ex.method = methods[uniform(0, 6)];
        if (until_close && ex.method == "HEAD") ex.method = "GET";
        ex.path = "/" + word(1, 10) + "/" + std::to_string(index);
        ex.protocol_version = chance(15) ? "1.0" : "1.1";
        ex.host = "svc-" + word(1, 5) + ":8080";
        if (chance(50)) {
            ex.traceparent = "00-" + std::string(32, 'a') + "-" + std::string(16, 'b') + "-01";
        }
        const std::string eol = chance(10) ? "\n" : "\r\n";

        // Request.
        if (index > 0 && chance(10)) c.requests.add("\r\n");  // stray CRLF between messages
        Span request;
        request.first = c.requests.size();
        std::string headers = ex.method + " " + ex.path;
        if (chance(40)) headers += "?q=" + word(1, 8) + "&x=1";
        if (chance(10)) headers += "#frag";
        headers += " HTTP/" + ex.protocol_version + eol;
        headers += (chance(50) ? "Host: " : "host: ") + ex.host + eol;
        if (ex.protocol_version == "1.0") headers += "Connection: keep-alive" + eol;
        if (!ex.traceparent.empty()) headers += "traceparent: " + ex.traceparent + eol;
        for (int h = uniform(0, 5); h > 0; --h) {
            headers += "X-" + word(1, 8) + ": " + word(0, 40) + eol;
        }
        const bool has_body = ex.method == "POST" || ex.method == "PUT" || ex.method == "PATCH";
        if (has_body) {
            ex.request_body_bytes = body(c.requests, eol, chance(40), headers);
        } else {
            c.requests.add(headers + eol);
        }
        request.last = c.requests.size() - 1;
        c.request_spans.push_back(request);

        // Interim response, then the final one.
        if (chance(15)) {
            c.responses.add("HTTP/1.1 103 Early Hints" + eol + "Link: </a.css>" + eol + eol);
        }
        const int statuses[] = {200, 201, 204, 304, 404, 500};
        ex.status = until_close ? 200 : statuses[uniform(0, 5)];
        Span response;
        response.first = c.responses.size();
        headers = "HTTP/1.1 " + std::to_string(ex.status) + (chance(20) ? "" : " Reason") + eol;
        headers += "Server: stress" + eol;
        if (until_close) {
            headers += "Connection: close" + eol;
            c.responses.add(headers + eol);
            const std::string data = word(0, 5000);
            c.responses.add(data, true);
            ex.response_body_bytes = data.size();
        } else if (ex.status == 204 || ex.status == 304 || ex.method == "HEAD") {
            if (ex.status != 204) headers += content_length_name() + ": 1234" + eol;
            c.responses.add(headers + eol);
        } else {
            ex.response_body_bytes = body(c.responses, eol, chance(40), headers);
        }
        response.last = c.responses.size() - 1;
        c.response_spans.push_back(response);
        c.response_ends.push_back(c.responses.size());
        c.expected.push_back(std::move(ex));
    }

    std::mt19937_64 rng_;
};

struct Piece {
    size_t begin = 0;
    size_t end = 0;       // exclusive
    size_t captured = 0;  // bytes of the piece that were copied
};

// Cuts [0, size) into pieces: many tiny ones, some medium, a few large.
std::vector<Piece> split(Generator& g, const ByteStream& s, size_t min_first) {
    std::vector<Piece> pieces;
    size_t pos = 0;
    while (pos < s.size()) {
        const int kind = g.uniform(1, 10);
        size_t n = kind <= 3 ? g.uniform(1, 4) : kind <= 7 ? g.uniform(5, 64) : g.uniform(65, 2500);
        if (pieces.empty()) n = std::max(n, min_first);
        const size_t end = std::min(s.size(), pos + n);
        pieces.push_back({pos, end, end - pos});
        pos = end;
    }
    return pieces;
}

// Leaves a random part of each piece's tail uncaptured, as long as the
// uncaptured bytes are all body bytes: the handler must skip them by count.
void drop_body_tails(Generator& g, const ByteStream& s, std::vector<Piece>& pieces) {
    for (Piece& p : pieces) {
        size_t keep = p.end;
        while (keep > p.begin && s.body[keep - 1]) --keep;
        if (keep == p.end) continue;
        p.captured = keep - p.begin + g.uniform(0, static_cast<int>(p.end - keep));
    }
}

// Timestamps encode the piece's byte range, so the expected times of a
// message follow from the offsets of its first and last byte.
constexpr uint64_t kRequestBase = 1'000'000;
constexpr uint64_t kResponseBase = 50'000'000;

uint64_t enter_ns(uint64_t base, const Piece& p) {
    return base + 2 * p.begin;
}
uint64_t exit_ns(uint64_t base, const Piece& p) {
    return base + 2 * p.end + 1;
}

const Piece& piece_at(const std::vector<Piece>& pieces, size_t offset) {
    auto it = std::upper_bound(pieces.begin(), pieces.end(), offset,
                               [](size_t off, const Piece& p) { return off < p.end; });
    return *it;
}

struct Run {
    Role role = Role::Server;
    bool requests_first = false;  // pipelined: every request before any response
};

std::vector<Exchange> feed(const Conversation& c, const std::vector<Piece>& req_pieces,
                           const std::vector<Piece>& resp_pieces, const Run& run,
                           ProtocolStats& stats) {
    const Direction request_dir = run.role == Role::Client ? Direction::Egress : Direction::Ingress;
    const Direction response_dir =
        request_dir == Direction::Ingress ? Direction::Egress : Direction::Ingress;
    auto handler = make_handler(run.role);
    std::vector<Exchange> out;
    auto send = [&](const ByteStream& s, const Piece& p, Direction d, uint64_t base) {
        StreamPiece piece;
        piece.captured = {reinterpret_cast<const uint8_t*>(s.bytes.data()) + p.begin, p.captured};
        piece.length = p.end - p.begin;
        piece.ts_enter_ns = enter_ns(base, p);
        piece.ts_exit_ns = exit_ns(base, p);
        handler->on_data(d, piece, out);
    };
    size_t next_request = 0;
    for (const Piece& rp : resp_pieces) {
        // A response can only be sent once the request it answers was received.
        const size_t exchange =
            std::upper_bound(c.response_ends.begin(), c.response_ends.end(), rp.end - 1) -
            c.response_ends.begin();
        const size_t needed =
            run.requests_first ? c.requests.size() : c.request_spans[exchange].last + 1;
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

using test::describe;

// The exchanges a handler must produce for these pieces.
std::vector<Exchange> expected_for(const Conversation& c, const std::vector<Piece>& req_pieces,
                                   const std::vector<Piece>& resp_pieces, Role role) {
    const bool server = role != Role::Client;
    std::vector<Exchange> expected = c.expected;
    for (size_t i = 0; i < expected.size(); ++i) {
        Exchange& e = expected[i];
        e.role = server ? Role::Server : Role::Client;
        const Piece& req_first = piece_at(req_pieces, c.request_spans[i].first);
        const Piece& req_last = piece_at(req_pieces, c.request_spans[i].last);
        const Piece& resp_first = piece_at(resp_pieces, c.response_spans[i].first);
        const Piece& resp_last = piece_at(resp_pieces, c.response_spans[i].last);
        // Ingress bytes count from the call's return, Egress bytes from its entry.
        e.request_start_ns =
            server ? exit_ns(kRequestBase, req_first) : enter_ns(kRequestBase, req_first);
        e.request_end_ns = exit_ns(kRequestBase, req_last);
        e.response_start_ns =
            server ? enter_ns(kResponseBase, resp_first) : exit_ns(kResponseBase, resp_first);
        e.response_end_ns = exit_ns(kResponseBase, resp_last);
    }
    return expected;
}

void expect_same(const std::vector<Exchange>& got, const std::vector<Exchange>& want,
                 const ProtocolStats& stats, const std::string& context) {
    SCOPED_TRACE(context);
    test::expect_clean(stats);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(describe(got[i]), describe(want[i])) << "exchange " << i;
        EXPECT_EQ(got[i].tracestate, want[i].tracestate);
        EXPECT_EQ(got[i].role, want[i].role);
    }
}

std::vector<Piece> whole(const ByteStream& s) {
    return {{0, s.size(), s.size()}};
}

constexpr uint64_t kSeeds = 300;

TEST(Http1Stressor, RandomSplitsGiveTheUnsplitExchanges) {
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
        Generator g(seed);
        const Conversation c = g.conversation();
        const Role roles[] = {Role::Server, Role::Client, Role::Unknown};
        const Role role = roles[seed % 3];

        // The unsplit feed: one piece per direction.
        ProtocolStats stats;
        const auto unsplit_req = whole(c.requests);
        const auto unsplit_resp = whole(c.responses);
        const auto unsplit = feed(c, unsplit_req, unsplit_resp, {role, false}, stats);
        expect_same(unsplit, expected_for(c, unsplit_req, unsplit_resp, role), stats,
                    "seed " + std::to_string(seed) + " unsplit");

        // An undecided role is settled by the first piece, which must show a
        // whole method and the target's first byte.
        const size_t min_first = role == Role::Unknown ? 16 : 1;
        for (int round = 0; round < 4; ++round) {
            const auto req_pieces = split(g, c.requests, min_first);
            const auto resp_pieces = split(g, c.responses, 1);
            const auto want = expected_for(c, req_pieces, resp_pieces, role);
            for (bool requests_first : {false, true}) {
                const auto got = feed(c, req_pieces, resp_pieces, {role, requests_first}, stats);
                expect_same(got, want, stats,
                            "seed " + std::to_string(seed) + " round " + std::to_string(round) +
                                (requests_first ? " pipelined" : " interleaved"));
                // Times aside, the split feed must match the unsplit one.
                ASSERT_EQ(got.size(), unsplit.size());
                for (size_t i = 0; i < got.size(); ++i) {
                    EXPECT_EQ(got[i].path, unsplit[i].path);
                    EXPECT_EQ(got[i].status, unsplit[i].status);
                    EXPECT_EQ(got[i].response_body_bytes, unsplit[i].response_body_bytes);
                }
            }
            if (HasFailure()) return;  // one seed's report is enough to debug
        }
    }
}

TEST(Http1Stressor, RandomSplitsWithUncapturedBodyBytes) {
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
        Generator g(seed * 7919);
        const Conversation c = g.conversation();
        const Role role = seed % 2 ? Role::Server : Role::Client;
        for (int round = 0; round < 4; ++round) {
            auto req_pieces = split(g, c.requests, 1);
            auto resp_pieces = split(g, c.responses, 1);
            drop_body_tails(g, c.requests, req_pieces);
            drop_body_tails(g, c.responses, resp_pieces);
            ProtocolStats stats;
            const auto got = feed(c, req_pieces, resp_pieces, {role, round % 2 == 1}, stats);
            expect_same(got, expected_for(c, req_pieces, resp_pieces, role), stats,
                        "seed " + std::to_string(seed) + " round " + std::to_string(round));
            if (HasFailure()) return;
        }
    }
}

}  // namespace
}  // namespace sonde::protocols::http1
