#include "config/value_parsers.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

namespace sonde::config::detail {
namespace {

using namespace std::chrono_literals;

TEST(ValueParsers, DurationsInGoSyntax) {
    const std::pair<const char*, std::chrono::nanoseconds> good[] = {
        {"5s", 5s},          {"100ms", 100ms},  {"1m30s", 90s},  {"1.5h", 90min},
        {"250us", 250us},    {"3ns", 3ns},      {"0", 0ns},      {"+2s", 2s},
        {" 60s ", 60s},      {"1h1m1s", 3661s}, {"0.5s", 500ms}, {"2\xc2\xb5s", 2us},
        {"1m0.5s", 60500ms},
    };
    for (const auto& [text, expected] : good) {
        const auto parsed = parse_duration(text);
        ASSERT_TRUE(std::holds_alternative<std::chrono::nanoseconds>(parsed)) << text;
        EXPECT_EQ(std::get<std::chrono::nanoseconds>(parsed), expected) << text;
    }
    const std::pair<const char*, const char*> bad[] = {
        {"", "empty"},
        {"5", "missing unit"},
        {"-5s", "negative"},
        {"5 s", "unknown unit"},
        {"s", "expected a number"},
        {"5d", "unknown unit"},
        {".s", "expected a number"},
        {"99999999999h", "too large"},
        {"5s3", "missing unit"},
    };
    for (const auto& [text, reason] : bad) {
        const auto parsed = parse_duration(text);
        ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << text;
        EXPECT_NE(std::get<std::string>(parsed).find(reason), std::string::npos)
            << text << ": " << std::get<std::string>(parsed);
    }
}

TEST(ValueParsers, DurationsFormatWithTheLargestExactUnit) {
    EXPECT_EQ(format_duration(60s), "1m");
    EXPECT_EQ(format_duration(90s), "90s");
    EXPECT_EQ(format_duration(1500ms), "1500ms");
    EXPECT_EQ(format_duration(2h), "2h");
    EXPECT_EQ(format_duration(7ns), "7ns");
    EXPECT_EQ(format_duration(0ns), "0s");
    for (const std::chrono::nanoseconds d :
         std::initializer_list<std::chrono::nanoseconds>{1ns, 999us, 61s, 3601s, 123456789ns}) {
        const auto back = parse_duration(format_duration(d));
        EXPECT_EQ(std::get<std::chrono::nanoseconds>(back), d);
    }
}

TEST(ValueParsers, UnsignedNumbers) {
    EXPECT_EQ(std::get<uint64_t>(parse_unsigned("9400", 0, 65535)), 9400u);
    EXPECT_EQ(std::get<uint64_t>(parse_unsigned("+7", 0, 10)), 7u);
    EXPECT_EQ(std::get<std::string>(parse_unsigned("-1", 0, 10)), "'-1' is negative (0-10)");
    EXPECT_EQ(std::get<std::string>(parse_unsigned("11", 0, 10)), "'11' is out of range (0-10)");
    EXPECT_EQ(std::get<std::string>(parse_unsigned("99999999999999999999999", 0, 10)),
              "'99999999999999999999999' is out of range (0-10)");
    EXPECT_EQ(std::get<std::string>(parse_unsigned("0x10", 0, 100)),
              "'0x10' is not a whole number (0-100)");
    EXPECT_EQ(std::get<std::string>(parse_unsigned("1.0", 0, 100)),
              "'1.0' is not a whole number (0-100)");
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_unsigned("", 0, 1)));
}

TEST(ValueParsers, Booleans) {
    for (const char* yes : {"true", "TRUE", "yes", "On", "1"}) {
        EXPECT_EQ(parse_bool(yes), true) << yes;
    }
    for (const char* no : {"false", "No", "off", "0"}) {
        EXPECT_EQ(parse_bool(no), false) << no;
    }
    EXPECT_EQ(parse_bool("maybe"), std::nullopt);
    EXPECT_EQ(parse_bool(""), std::nullopt);
}

TEST(ValueParsers, Doubles) {
    EXPECT_EQ(parse_finite_double("0.005"), 0.005);
    EXPECT_EQ(parse_finite_double("1e3"), 1000.0);
    EXPECT_EQ(parse_finite_double("nan"), std::nullopt);
    EXPECT_EQ(parse_finite_double("inf"), std::nullopt);
    EXPECT_EQ(parse_finite_double("1,5"), std::nullopt);
}

TEST(ValueParsers, Lists) {
    EXPECT_EQ(split_list(" a, b ,c"), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(split_list("a,,b"), (std::vector<std::string>{"a", "", "b"}));
    EXPECT_TRUE(split_list("  ").empty());
}

TEST(ValueParsers, Regexes) {
    EXPECT_EQ(check_regex("checkout|api-gateway"), std::nullopt);
    EXPECT_EQ(check_regex(""), std::nullopt);
    ASSERT_TRUE(check_regex("(a").has_value());
    EXPECT_NE(check_regex("(a")->find("missing )"), std::string::npos);
    // Backreferences would need backtracking: RE2 refuses them.
    EXPECT_TRUE(check_regex("(a)\\1").has_value());
    EXPECT_TRUE(check_regex(std::string(5000, 'a')).has_value());
}

TEST(ValueParsers, EndpointUrls) {
    for (const char* ok : {"http://otel-collector.observability:4317", "https://c",
                           "HTTP://c:4318/v1/traces", "http://[::1]:4317", "http://u:p@h:1/"}) {
        EXPECT_EQ(check_endpoint_url(ok), std::nullopt) << ok;
    }
    for (const char* bad :
         {"otel-collector:4317", "grpc://c:4317", "http://", "http://:4317", "http://c:0",
          "http://c:99999", "http://c:port", "http://a b", "http://[::1"}) {
        EXPECT_TRUE(check_endpoint_url(bad).has_value()) << bad;
    }
    EXPECT_EQ(url_port("http://c:4317"), 4317);
    EXPECT_EQ(url_port("http://[::1]:14318/x"), 14318);
    EXPECT_EQ(url_port("http://c/x:1"), std::nullopt);
    EXPECT_EQ(url_port("c:4317"), std::nullopt);
}

TEST(ValueParsers, RoutePatterns) {
    for (const char* ok : {"/orders/{id}", "/users/{id}/cart", "/", "/files/*", "/basic/:rnd",
                           "/a/{user_id}/{v.2}"}) {
        EXPECT_EQ(check_route_pattern(ok), std::nullopt) << ok;
    }
    for (const char* bad :
         {"", "orders/{id}", "/a/{}", "/a/{id", "/a/id}", "/a/{{id}}", "/a b", "/a/{i d}"}) {
        EXPECT_TRUE(check_route_pattern(bad).has_value()) << bad;
    }
}

TEST(ValueParsers, VariableExpansion) {
    const std::map<std::string, std::string> env = {{"A", "alpha"}, {"EMPTY", ""}};
    const EnvLookup getenv = [&](const char* name) -> const char* {
        const auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    const auto expand = [&](const char* text) { return expand_variables(text, getenv); };
    EXPECT_EQ(expand("${A}").text, "alpha");
    EXPECT_EQ(expand("x-${A}-${A}").text, "x-alpha-alpha");
    EXPECT_EQ(expand("${B:-beta}").text, "beta");
    EXPECT_EQ(expand("${EMPTY:-fallback}").text, "fallback");
    EXPECT_EQ(expand("${B:-}").text, "");
    EXPECT_TRUE(expand("${B:-}").unset.empty());
    EXPECT_EQ(expand("$${A}").text, "${A}");
    EXPECT_EQ(expand("$A and ^end$").text, "$A and ^end$");
    const Expansion unset = expand("<${NOPE}>");
    EXPECT_EQ(unset.text, "<>");
    EXPECT_EQ(unset.unset, std::vector<std::string>{"NOPE"});
    EXPECT_FALSE(expand("${A").error.empty());
    EXPECT_FALSE(expand("${}").error.empty());
    EXPECT_FALSE(expand("${1A}").error.empty());
    EXPECT_FALSE(expand("${A B}").error.empty());
}

TEST(ValueParsers, ResourceAttributes) {
    const char* attributes = "service.name=checkout, service.namespace=pay%2Fments,k=v=w";
    EXPECT_EQ(resource_attribute(attributes, "service.name"), "checkout");
    EXPECT_EQ(resource_attribute(attributes, "service.namespace"), "pay/ments");
    EXPECT_EQ(resource_attribute(attributes, "k"), "v=w");
    EXPECT_EQ(resource_attribute(attributes, "service"), std::nullopt);
    EXPECT_EQ(resource_attribute("", "service.name"), std::nullopt);
}

TEST(ValueParsers, OtlpHeaders) {
    using Headers = std::map<std::string, std::string>;
    struct Case {
        const char* text;
        std::optional<Headers> expected;  // nullopt: an error
    };
    for (const Case& c : {
             Case{"", Headers{}},
             Case{"a=1", Headers{{"a", "1"}}},
             Case{" api-key = s%3Dcret , X-Org=7 ", Headers{{"api-key", "s=cret"}, {"X-Org", "7"}}},
             Case{"a=", Headers{{"a", ""}}},
             Case{"a=1,,b=2", Headers{{"a", "1"}, {"b", "2"}}},
             Case{"a=1,a=2", Headers{{"a", "2"}}},
             Case{"auth=Basic%20dXNlcjpwYXNz", Headers{{"auth", "Basic dXNlcjpwYXNz"}}},
             Case{"novalue", std::nullopt},
             Case{"=1", std::nullopt},
             Case{"bad name=1", std::nullopt},
             Case{"a:b=1", std::nullopt},
             Case{"a=x%0D%0AInjected: 1", std::nullopt},
             Case{"a=x%00", std::nullopt},
         }) {
        const auto parsed = parse_otlp_headers(c.text);
        if (c.expected) {
            ASSERT_TRUE(std::holds_alternative<Headers>(parsed)) << c.text;
            EXPECT_EQ(std::get<Headers>(parsed), *c.expected) << c.text;
        } else {
            EXPECT_TRUE(std::holds_alternative<std::string>(parsed)) << c.text;
        }
    }
    std::string many;
    for (int i = 0; i < 65; ++i) many += "h" + std::to_string(i) + "=v,";
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_otlp_headers(many)));
}

TEST(ValueParsers, EditDistanceAndQuoting) {
    EXPECT_EQ(edit_distance("prot", "port"), 2u);
    EXPECT_EQ(edit_distance("", "abc"), 3u);
    EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
    EXPECT_EQ(quote("a\nb"), "'a\\x0ab'");
    EXPECT_EQ(quote(std::string(50, 'x')), "'" + std::string(40, 'x') + "...'");
    EXPECT_EQ(quote("\xff"), "'\\xff'");
}

}  // namespace
}  // namespace sonde::config::detail
