// Table-driven tests of the pure HTTP/1 parsing functions.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "protocols/http1/http1.h"
#include "protocols/http1/http1_internal.h"

namespace sonde::protocols::http1 {
namespace {

std::span<const uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct HeadCase {
    const char* name = "";
    std::string_view input = {};
    bool is_request = true;
    ParseStatus status = ParseStatus::Complete;
    // Checked only when status is Complete.
    size_t consumed = 0;  // 0: the whole input
    std::string_view method = {};
    std::string_view target = {};
    int code = 0;
    int minor = 1;
    std::optional<uint64_t> content_length = {};
    bool chunked = false;
    bool close = false;
    bool upgrade = false;
    std::string_view host = {};
    std::string_view traceparent = {};
    std::string_view tracestate = {};
    size_t max_head_bytes = 16 * 1024;
    size_t max_headers = 128;
};

std::string many_headers(int count) {
    std::string s = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < count; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
}

const std::string kHundredHeaders = many_headers(100);
const std::string kTooManyHeaders = many_headers(129);
constexpr char kNulInValue[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
const std::string kBigHead = "GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n";

const HeadCase kHeadCases[] = {
    // Requests.
    {.name = "simple_get",
     .input = "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
     .method = "GET",
     .target = "/index.html?x=1",
     .host = "example.com"},
    {.name = "post_content_length",
     .input = "POST /api HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
     .method = "POST",
     .target = "/api",
     .content_length = 5},
    {.name = "body_after_head_not_consumed",
     .input = "PUT /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
     .consumed = 38,
     .method = "PUT",
     .target = "/x",
     .content_length = 5},
    {.name = "bare_lf",
     .input = "GET / HTTP/1.1\nHost: a\n\n",
     .method = "GET",
     .target = "/",
     .host = "a"},
    {.name = "mixed_line_endings",
     .input = "GET / HTTP/1.1\r\nHost: a\n\r\n",
     .method = "GET",
     .target = "/",
     .host = "a"},
    {.name = "leading_empty_lines_skipped",
     .input = "\r\n\nDELETE /item/7 HTTP/1.1\r\n\r\n",
     .method = "DELETE",
     .target = "/item/7"},
    {.name = "http10_defaults_to_close",
     .input = "GET / HTTP/1.0\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 0,
     .close = true},
    {.name = "http10_keep_alive",
     .input = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 0},
    {.name = "http11_connection_close",
     .input = "GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n",
     .method = "GET",
     .target = "/",
     .close = true},
    {.name = "connection_upgrade",
     .input = "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
     .method = "GET",
     .target = "/ws",
     .upgrade = true},
    {.name = "extension_method",
     .input = "PURGE /cache HTTP/1.1\r\n\r\n",
     .method = "PURGE",
     .target = "/cache"},
    {.name = "lowercase_token_method",
     .input = "get / HTTP/1.1\r\n\r\n",
     .method = "get",
     .target = "/"},
    {.name = "asterisk_form",
     .input = "OPTIONS * HTTP/1.1\r\n\r\n",
     .method = "OPTIONS",
     .target = "*"},
    {.name = "authority_form",
     .input = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
     .method = "CONNECT",
     .target = "example.com:443",
     .host = "example.com:443"},
    {.name = "header_names_case_insensitive",
     .input = "POST / HTTP/1.1\r\nCONTENT-LENGTH: 3\r\nhOsT: h\r\n\r\n",
     .method = "POST",
     .target = "/",
     .content_length = 3,
     .host = "h"},
    // Known names are compared eight bytes at a time after a length switch:
    // capitals in every word, names one letter off at either end, names of a
    // known length that are not known, and options with non-ASCII bytes.
    {.name = "known_names_in_capitals_and_mixed_case",
     .input =
         "GET / HTTP/1.1\r\nTRACEPARENT: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
         "\r\nCoNnEcTiOn: KEEP-ALIVE, Close\r\nTraceState: k=v\r\nCONTENT-length: 0\r\n\r\n",
     .method = "GET",
     .target = "/",
     .content_length = 0,
     .close = true,
     .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
     .tracestate = "k=v"},
    {.name = "names_one_letter_off_are_other_fields",
     .input = "GET / HTTP/1.1\r\nContent-Lengti: 5\r\nDontent-Length: 5\r\nconnectioN_: close\r\n"
              "Xonnection: close\r\nconnectiom: close\r\ntraceparenT_: x\r\nHosu: h\r\n"
              "Transfer-Encodin9: chunked\r\nUser-Agent: close\r\nTracestat^: a=1\r\n\r\n",
     .method = "GET",
     .target = "/"},
    {.name = "connection_options_with_obs_text",
     .input = "GET / HTTP/1.1\r\nConnection: \xc3\xa9"
              "close, cl\xcf"
              "se, \x8b"
              "lose\r\n\r\n",
     .method = "GET",
     .target = "/"},
    {.name = "transfer_coding_in_capitals",
     .input = "POST / HTTP/1.1\r\nTRANSFER-ENCODING: GZIP, CHUNKED\r\n\r\n",
     .method = "POST",
     .target = "/",
     .chunked = true},
    {.name = "ows_trimmed_from_values",
     .input = "GET / HTTP/1.1\r\nHost: \t spaced.example \t\r\n\r\n",
     .method = "GET",
     .target = "/",
     .host = "spaced.example"},
    {.name = "first_host_wins",
     .input = "GET / HTTP/1.1\r\nHost: one\r\nHost: two\r\n\r\n",
     .method = "GET",
     .target = "/",
     .host = "one"},
    {.name = "chunked_wins_over_content_length",
     .input = "POST / HTTP/1.1\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n",
     .method = "POST",
     .target = "/",
     .chunked = true},
    {.name = "chunked_last_of_several_codings",
     .input = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n",
     .method = "POST",
     .target = "/",
     .chunked = true},
    {.name = "duplicate_equal_content_length",
     .input = "POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n",
     .method = "POST",
     .target = "/",
     .content_length = 7},
    {.name = "content_length_list_of_equal_values",
     .input = "POST / HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n",
     .method = "POST",
     .target = "/",
     .content_length = 7},
    {.name = "trace_context",
     .input = "GET / HTTP/1.1\r\n"
              "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
              "tracestate: a=1\r\nTraceState: b=2\r\n\r\n",
     .method = "GET",
     .target = "/",
     .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
     .tracestate = "a=1,b=2"},
    {.name = "obs_fold_joined_with_space",
     .input = "GET / HTTP/1.1\r\nHost: a\r\n  b\r\n\tc\r\nX: y\r\n\r\n",
     .method = "GET",
     .target = "/",
     .host = "a b c"},
    {.name = "obs_fold_on_content_length",
     .input = "POST / HTTP/1.1\r\nContent-Length:\r\n 12\r\n\r\n",
     .method = "POST",
     .target = "/",
     .content_length = 12},
    {.name = "empty_header_value",
     .input = "GET / HTTP/1.1\r\nX-Empty:\r\n\r\n",
     .method = "GET",
     .target = "/"},
    {.name = "obs_text_in_value",
     .input = "GET / HTTP/1.1\r\nX-Name: caf\xc3\xa9\r\n\r\n",
     .method = "GET",
     .target = "/"},
    {.name = "hundred_headers", .input = kHundredHeaders, .method = "GET", .target = "/"},
    {.name = "head_exactly_at_limit",
     .input = "GET / HTTP/1.1\r\n\r\n",
     .method = "GET",
     .target = "/",
     .max_head_bytes = 18},

    // Invalid requests.
    {.name = "too_many_headers", .input = kTooManyHeaders, .status = ParseStatus::Invalid},
    {.name = "header_limit_is_configurable",
     .input = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
     .status = ParseStatus::Invalid,
     .max_headers = 2},
    {.name = "head_one_byte_over_limit",
     .input = "GET / HTTP/1.1\r\n\r\n",
     .status = ParseStatus::Invalid,
     .max_head_bytes = 17},
    {.name = "oversized_head",
     .input = kBigHead,
     .status = ParseStatus::Invalid,
     .max_head_bytes = 64},
    {.name = "oversized_incomplete_head",
     .input = "GET / HTTP/1.1\r\nX-Long: "
              "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     .status = ParseStatus::Invalid,
     .max_head_bytes = 64},
    {.name = "http2_version", .input = "GET / HTTP/2.0\r\n\r\n", .status = ParseStatus::Invalid},
    {.name = "version_with_suffix",
     .input = "GET / HTTP/1.1x\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "lowercase_version",
     .input = "GET / http/1.1\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "http09_no_version", .input = "GET /\r\n\r\n", .status = ParseStatus::Invalid},
    {.name = "double_space", .input = "GET  / HTTP/1.1\r\n\r\n", .status = ParseStatus::Invalid},
    {.name = "method_not_token",
     .input = "GE(T / HTTP/1.1\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "control_char_in_target",
     .input = "GET /a\x01 HTTP/1.1\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "response_parsed_as_request",
     .input = "HTTP/1.1 200 OK\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "header_without_colon",
     .input = "GET / HTTP/1.1\r\nHost example.com\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "space_before_colon",
     .input = "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "empty_header_name",
     .input = "GET / HTTP/1.1\r\n: a\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "nul_in_value",
     .input = std::string_view(kNulInValue, sizeof(kNulInValue) - 1),
     .status = ParseStatus::Invalid},
    {.name = "bare_cr_in_value",
     .input = "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "obs_fold_before_any_header",
     .input = "GET / HTTP/1.1\r\n folded\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "conflicting_content_length",
     .input = "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "conflicting_content_length_list",
     .input = "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "conflicting_content_length_despite_chunked",
     .input = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n"
              "Content-Length: 2\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "non_numeric_content_length",
     .input = "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "negative_content_length",
     .input = "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "signed_content_length",
     .input = "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "empty_content_length",
     .input = "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "overflowing_content_length",
     .input = "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "request_coding_not_chunked",
     .input = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
     .status = ParseStatus::Invalid},
    {.name = "tls_record_is_not_http",
     .input = "\x16\x03\x01\x02\x00\x01",
     .status = ParseStatus::Invalid},

    // Truncated requests.
    {.name = "empty_input", .input = "", .status = ParseStatus::NeedMore},
    {.name = "partial_method", .input = "GE", .status = ParseStatus::NeedMore},
    {.name = "partial_request_line", .input = "GET /index HT", .status = ParseStatus::NeedMore},
    {.name = "no_final_empty_line",
     .input = "GET / HTTP/1.1\r\nHost: a\r\n",
     .status = ParseStatus::NeedMore},
    {.name = "final_cr_without_lf",
     .input = "GET / HTTP/1.1\r\nHost: a\r\n\r",
     .status = ParseStatus::NeedMore},
    {.name = "partial_header", .input = "GET / HTTP/1.1\r\nHos", .status = ParseStatus::NeedMore},

    // Responses.
    {.name = "response_ok",
     .input = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
     .is_request = false,
     .consumed = 38,
     .code = 200,
     .content_length = 2},
    {.name = "response_without_reason",
     .input = "HTTP/1.1 204\r\n\r\n",
     .is_request = false,
     .code = 204},
    {.name = "response_empty_reason",
     .input = "HTTP/1.1 500 \r\n\r\n",
     .is_request = false,
     .code = 500},
    {.name = "response_reason_with_spaces",
     .input = "HTTP/1.1 404 Not Found\r\n\r\n",
     .is_request = false,
     .code = 404},
    {.name = "response_http10_closes",
     .input = "HTTP/1.0 200 OK\r\n\r\n",
     .is_request = false,
     .code = 200,
     .minor = 0,
     .close = true},
    {.name = "response_switching_protocols",
     .input =
         "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
     .is_request = false,
     .code = 101,
     .upgrade = true},
    {.name = "response_coding_not_chunked_reads_until_close",
     .input = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 4\r\n\r\n",
     .is_request = false,
     .code = 200,
     .close = true},
    {.name = "response_chunked",
     .input = "HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED\r\n\r\n",
     .is_request = false,
     .code = 200,
     .chunked = true},
    {.name = "response_bare_lf",
     .input = "HTTP/1.1 201 Created\nContent-Length: 0\n\n",
     .is_request = false,
     .code = 201,
     .content_length = 0},

    // Invalid responses.
    {.name = "status_two_digits",
     .input = "HTTP/1.1 20 OK\r\n\r\n",
     .is_request = false,
     .status = ParseStatus::Invalid},
    {.name = "status_four_digits",
     .input = "HTTP/1.1 2000 OK\r\n\r\n",
     .is_request = false,
     .status = ParseStatus::Invalid},
    {.name = "status_not_numeric",
     .input = "HTTP/1.1 abc OK\r\n\r\n",
     .is_request = false,
     .status = ParseStatus::Invalid},
    {.name = "status_below_range",
     .input = "HTTP/1.1 099 X\r\n\r\n",
     .is_request = false,
     .status = ParseStatus::Invalid},
    {.name = "status_above_range",
     .input = "HTTP/1.1 600 X\r\n\r\n",
     .is_request = false,
     .status = ParseStatus::Invalid},
    {.name = "reason_glued_to_status",
     .input = "HTTP/1.1 200OK\r\n\r\n",
     .is_request = false,
     .status = ParseStatus::Invalid},
    {.name = "response_http2",
     .input = "HTTP/2 200\r\n\r\n",
     .is_request = false,
     .status = ParseStatus::Invalid},
    {.name = "request_parsed_as_response",
     .input = "GET / HTTP/1.1\r\n\r\n",
     .is_request = false,
     .status = ParseStatus::Invalid},
    {.name = "response_conflicting_length",
     .input = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
     .is_request = false,
     .status = ParseStatus::Invalid},

    // Truncated responses.
    {.name = "partial_status_line",
     .input = "HTTP/1.1 2",
     .is_request = false,
     .status = ParseStatus::NeedMore},
    {.name = "response_no_final_empty_line",
     .input = "HTTP/1.1 200 OK\r\nServer: x\r\n",
     .is_request = false,
     .status = ParseStatus::NeedMore},
    {.name = "partial_response_junk",
     .input = "HTTQ/1.1",
     .is_request = false,
     .status = ParseStatus::Invalid},
};

class Http1HeadParseTest : public ::testing::TestWithParam<HeadCase> {};

// A head that sets every field, parsed first into the result that the
// connection handler's way of parsing (one result per connection) reuses.
constexpr std::string_view kEveryFieldHead =
    "PUT /old?q HTTP/1.0\r\nHost: old.example\r\nContent-Length: 9\r\nConnection: close, "
    "upgrade\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
    "tracestate: a=1\r\n\r\n";

TEST_P(Http1HeadParseTest, Parses) {
    const HeadCase& c = GetParam();
    Limits limits;
    limits.max_head_bytes = c.max_head_bytes;
    limits.max_headers = c.max_headers;
    const HeadParseResult fresh = parse_head(bytes_of(c.input), c.is_request, limits);
    HeadParseResult reused;
    parse_head_into(bytes_of(kEveryFieldHead), true, Limits{}, reused);
    ASSERT_EQ(reused.status, ParseStatus::Complete);
    ASSERT_EQ(reused.head.tracestate, "a=1");
    parse_head_into(bytes_of(c.input), c.is_request, limits, reused);
    for (const HeadParseResult* result : {&fresh, static_cast<const HeadParseResult*>(&reused)}) {
        SCOPED_TRACE(result == &fresh ? "parse_head" : "parse_head_into a used result");
        const HeadParseResult& r = *result;
        ASSERT_EQ(r.status, c.status) << "error: " << r.error;
        if (c.status == ParseStatus::Invalid) {
            EXPECT_FALSE(r.error.empty());
            continue;
        }
        if (c.status != ParseStatus::Complete) continue;
        EXPECT_EQ(r.consumed, c.consumed ? c.consumed : c.input.size());
        const MessageHead& h = r.head;
        EXPECT_EQ(h.is_request, c.is_request);
        EXPECT_EQ(h.method, c.method);
        EXPECT_EQ(h.target, c.target);
        EXPECT_EQ(h.status, c.code);
        EXPECT_EQ(h.version_minor, c.minor);
        EXPECT_EQ(h.content_length, c.content_length);
        EXPECT_EQ(h.chunked, c.chunked);
        EXPECT_EQ(h.connection_close, c.close);
        EXPECT_EQ(h.upgrade, c.upgrade);
        EXPECT_EQ(h.host, c.host);
        EXPECT_EQ(h.traceparent, c.traceparent);
        EXPECT_EQ(h.tracestate, c.tracestate);
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, Http1HeadParseTest, ::testing::ValuesIn(kHeadCases),
                         [](const auto& info) { return std::string(info.param.name); });

// Every proper prefix of a valid head is NeedMore: a head is never accepted
// early and never rejected for being cut short.
TEST(Http1HeadParse, EveryPrefixOfValidHeadNeedsMore) {
    const std::string_view heads[] = {
        "POST /submit?a=b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
        "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
        "GET / HTTP/1.0\r\nX: a\r\n b\r\n\r\n",
    };
    for (std::string_view head : heads) {
        const bool is_request = head.substr(0, 5) != "HTTP/";
        for (size_t n = 0; n < head.size(); ++n) {
            const HeadParseResult r = parse_head(bytes_of(head.substr(0, n)), is_request);
            EXPECT_EQ(r.status, ParseStatus::NeedMore) << head << " cut at " << n;
        }
        EXPECT_EQ(parse_head(bytes_of(head), is_request).status, ParseStatus::Complete) << head;
    }
}

TEST(Http1HeadParse, ReadsOnlyTheGivenBytes) {
    // The view ends in the middle of a buffer that holds a complete head.
    const std::string full = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const auto view = bytes_of(full).first(full.size() - 1);
    EXPECT_EQ(parse_head(view, true).status, ParseStatus::NeedMore);
}

struct StartCase {
    std::string_view bytes;
    bool is_request;
    bool expected;
};

const StartCase kStartCases[] = {
    {"GET / HTTP/1.1\r\n", true, true},
    {"POST /api", true, true},
    {"OPTIONS * HTTP/1.1", true, true},
    {"CONNECT example.com:443 HTTP/1.1", true, true},
    {"GET http://h/p HTTP/1.1", true, true},
    {"M-SEARCH * HTTP/1.1", true, true},
    {"PROPFIND /d HTTP/1.1", true, true},
    {"GET ", true, false},             // too short to see the target
    {"GET  /", true, false},           // two spaces
    {"get / HTTP/1.1", true, false},   // valid token, but not trusted for detection
    {"HTTP/1.1 200 OK", true, false},  // a response never starts a request
    {"\r\nGET / HTTP/1.1", true, false},
    {"{\"json\":1}", true, false},
    {"\x16\x03\x01\x00\xa5", true, false},
    {"PRI * HTTP/2.0\r\n", true, false},  // the h2 preface belongs to HTTP/2 detection
    {"ABCDEFGHIJKLMNOP /", true, false},  // method longer than 16 bytes allow
    {"HTTP/1.1 200 OK\r\n", false, true},
    {"HTTP/1.0 404", false, true},
    {"HTTP/1.1 101 Switching", false, true},
    {"HTTP/1.1 20", false, false},  // cannot tell yet
    {"HTTP/1.1 600 X", false, false},
    {"HTTP/2 200", false, false},
    {"GET / HTTP/1.1", false, false},
    {"http/1.1 200 OK", false, false},
    {"", true, false},
    {"", false, false},
};

TEST(Http1LooksLikeMessageStart, Table) {
    for (const StartCase& c : kStartCases) {
        EXPECT_EQ(looks_like_message_start(bytes_of(c.bytes), c.is_request), c.expected)
            << "'" << c.bytes << "' as " << (c.is_request ? "request" : "response");
    }
}

MessageHead request_head(std::optional<uint64_t> length, bool chunked) {
    MessageHead h;
    h.is_request = true;
    h.method = "POST";
    h.content_length = length;
    h.chunked = chunked;
    return h;
}

MessageHead response_head(int status, std::optional<uint64_t> length, bool chunked) {
    MessageHead h;
    h.status = status;
    h.content_length = length;
    h.chunked = chunked;
    return h;
}

TEST(Http1BodyFraming, Requests) {
    EXPECT_EQ(body_framing(request_head(std::nullopt, false)), BodyFraming::None);
    EXPECT_EQ(body_framing(request_head(12, false)), BodyFraming::ContentLength);
    EXPECT_EQ(body_framing(request_head(0, false)), BodyFraming::ContentLength);
    EXPECT_EQ(body_framing(request_head(12, true)), BodyFraming::Chunked);
}

TEST(Http1BodyFraming, Responses) {
    EXPECT_EQ(body_framing(response_head(200, 5, false), "GET"), BodyFraming::ContentLength);
    EXPECT_EQ(body_framing(response_head(200, 5, true), "GET"), BodyFraming::Chunked);
    EXPECT_EQ(body_framing(response_head(200, std::nullopt, false), "GET"),
              BodyFraming::UntilClose);
    EXPECT_EQ(body_framing(response_head(200, std::nullopt, false)), BodyFraming::UntilClose);
    EXPECT_EQ(body_framing(response_head(100, std::nullopt, false), "POST"), BodyFraming::None);
    EXPECT_EQ(body_framing(response_head(103, 5, false), "GET"), BodyFraming::None);
    EXPECT_EQ(body_framing(response_head(204, 5, false), "GET"), BodyFraming::None);
    EXPECT_EQ(body_framing(response_head(304, 5, true), "GET"), BodyFraming::None);
    EXPECT_EQ(body_framing(response_head(200, 5, false), "HEAD"), BodyFraming::None);
    EXPECT_EQ(body_framing(response_head(404, std::nullopt, true), "HEAD"), BodyFraming::None);
    EXPECT_EQ(body_framing(response_head(200, std::nullopt, false), "CONNECT"), BodyFraming::None);
    EXPECT_EQ(body_framing(response_head(407, 3, false), "CONNECT"), BodyFraming::ContentLength);
}

// Every byte value at every offset of a line long enough for the wide scans
// (sixteen and eight bytes) and their byte-by-byte ends.
TEST(Http1FindControlByte, EveryByteAtEveryOffset) {
    for (int value = 0; value < 256; ++value) {
        const auto c = static_cast<uint8_t>(value);
        const bool control = c < 0x20 || c == 0x7f;
        for (size_t at = 0; at < 41; ++at) {
            std::string text(41, 'a');
            text[at] = static_cast<char>(c);
            for (size_t from : {size_t{0}, size_t{1}, size_t{7}, at}) {
                const size_t expected = control && at >= from ? at : text.size();
                ASSERT_EQ(internal::find_control_byte(text, from), expected)
                    << "byte " << value << " at " << at << " from " << from;
            }
        }
    }
    EXPECT_EQ(internal::find_control_byte("", 0), 0u);
    EXPECT_EQ(internal::find_control_byte("ab\x80\xff\tc", 0), 4u);
}

TEST(Http1PathOfTarget, Table) {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"/", "/"},
        {"/a/b", "/a/b"},
        {"/a/b?x=1&y=2", "/a/b"},
        {"/a#frag", "/a"},
        {"/a?q#frag", "/a"},
        {"/?q", "/"},
        {"*", "*"},
        {"http://example.com/p?q", "/p"},
        {"https://example.com:8443/a/b#f", "/a/b"},
        {"http://example.com", "/"},
        {"http://example.com?q", "/"},
        {"HTTP://Example.com/X", "/X"},
        {"example.com:443", "example.com:443"},
        {"/redirect?to=http://x/y", "/redirect"},
        {"/files/a://b", "/files/a://b"},
        {"/a#f?q", "/a"},
        {"", ""},
    };
    for (const auto& [target, path] : cases) {
        EXPECT_EQ(path_of_target(target), path) << target;
    }
}

}  // namespace
}  // namespace sonde::protocols::http1
