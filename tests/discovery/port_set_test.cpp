#include "discovery/port_set.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace sonde::discovery {
namespace {

struct ValidCase {
    std::string text;
    std::string canonical;
};

class PortSetValid : public testing::TestWithParam<ValidCase> {};

TEST_P(PortSetValid, ParsesToCanonicalForm) {
    const auto parsed = PortSet::parse(GetParam().text);
    ASSERT_TRUE(std::holds_alternative<PortSet>(parsed))
        << "'" << GetParam().text << "': " << std::get<std::string>(parsed);
    const PortSet& set = std::get<PortSet>(parsed);
    EXPECT_EQ(set.to_string(), GetParam().canonical);
    EXPECT_EQ(set.empty(), GetParam().canonical.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Table, PortSetValid,
    testing::Values(ValidCase{"80", "80"}, ValidCase{"80,443", "80,443"},
                    ValidCase{"8000-8999", "8000-8999"}, ValidCase{" 80 , 443 ", "80,443"},
                    ValidCase{"\t80\t,\t443", "80,443"}, ValidCase{"443,80", "80,443"},
                    ValidCase{"80,80", "80"}, ValidCase{"1", "1"}, ValidCase{"65535", "65535"},
                    ValidCase{"1-65535", "1-65535"}, ValidCase{"80-80", "80"},
                    ValidCase{"8080,8081", "8080-8081"}, ValidCase{"100-200,150-250", "100-250"},
                    ValidCase{"8000 - 8001", "8000-8001"}, ValidCase{"00080", "80"},
                    ValidCase{"80,443,8000-8999,9090", "80,443,8000-8999,9090"}, ValidCase{"", ""},
                    ValidCase{"   ", ""}));

struct InvalidCase {
    std::string text;
    std::string mentions;  // the message must name the offending item
};

class PortSetInvalid : public testing::TestWithParam<InvalidCase> {};

TEST_P(PortSetInvalid, RejectsWithAMessageNamingTheItem) {
    const auto parsed = PortSet::parse(GetParam().text);
    ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << "'" << GetParam().text << "'";
    const std::string& message = std::get<std::string>(parsed);
    EXPECT_NE(message.find(GetParam().mentions), std::string::npos)
        << "message: " << message << " / wanted: " << GetParam().mentions;
}

INSTANTIATE_TEST_SUITE_P(
    Table, PortSetInvalid,
    testing::Values(InvalidCase{"80,", "empty item #2"}, InvalidCase{",80", "empty item #1"},
                    InvalidCase{"80,,443", "empty item #2"}, InvalidCase{" , ", "empty item #1"},
                    InvalidCase{"0", "'0'"}, InvalidCase{"65536", "'65536'"},
                    InvalidCase{"99999999999999999999", "'9999999999"},
                    InvalidCase{"0-10", "'0-10'"},
                    InvalidCase{"9000-8000", "'9000-8000': reversed"},
                    InvalidCase{"80,http", "'http': not a number"}, InvalidCase{"80a", "'80a'"},
                    InvalidCase{"-80", "'-80'"}, InvalidCase{"80-", "'80-'"},
                    InvalidCase{"1-2-3", "'1-2-3'"}, InvalidCase{"+80", "'+80'"},
                    InvalidCase{"80 443", "'80 443'"}, InvalidCase{"0x50", "'0x50'"},
                    InvalidCase{"80;443", "'80;443'"},
                    InvalidCase{"443,70000-80000", "'70000-80000'"}));

TEST(PortSet, LongItemsAreCutInTheMessage) {
    const std::string junk(10000, 'x');
    const auto parsed = PortSet::parse(junk);
    ASSERT_TRUE(std::holds_alternative<std::string>(parsed));
    EXPECT_LT(std::get<std::string>(parsed).size(), 200u);
}

TEST(PortSet, Contains) {
    const auto parsed = PortSet::parse("80,8000-8999");
    ASSERT_TRUE(std::holds_alternative<PortSet>(parsed));
    const PortSet& set = std::get<PortSet>(parsed);
    EXPECT_TRUE(set.contains(80));
    EXPECT_TRUE(set.contains(8000));
    EXPECT_TRUE(set.contains(8500));
    EXPECT_TRUE(set.contains(8999));
    EXPECT_FALSE(set.contains(79));
    EXPECT_FALSE(set.contains(81));
    EXPECT_FALSE(set.contains(7999));
    EXPECT_FALSE(set.contains(9000));
    EXPECT_FALSE(set.contains(0));
}

TEST(PortSet, DefaultIsEmpty) {
    const PortSet set;
    EXPECT_TRUE(set.empty());
    EXPECT_EQ(set.to_string(), "");
    EXPECT_FALSE(set.contains(80));
}

// to_string() output parses back to the same set, for random sets.
TEST(PortSet, CanonicalFormRoundTrips) {
    std::mt19937 rng(2024);
    for (int round = 0; round < 200; ++round) {
        std::string text;
        const int items = 1 + static_cast<int>(rng() % 8);
        for (int i = 0; i < items; ++i) {
            const uint32_t low = 1 + rng() % 65535;
            const uint32_t high = std::min<uint32_t>(65535, low + rng() % 3 * (rng() % 50));
            text += (i ? "," : "") + std::to_string(low);
            if (high != low) {
                text += "-" + std::to_string(high);
            }
        }
        const auto first = PortSet::parse(text);
        ASSERT_TRUE(std::holds_alternative<PortSet>(first)) << text;
        const std::string canonical = std::get<PortSet>(first).to_string();
        const auto second = PortSet::parse(canonical);
        ASSERT_TRUE(std::holds_alternative<PortSet>(second)) << canonical;
        EXPECT_EQ(std::get<PortSet>(second).to_string(), canonical);
        for (uint32_t port = 1; port <= 65535; port += 97) {
            EXPECT_EQ(std::get<PortSet>(first).contains(static_cast<uint16_t>(port)),
                      std::get<PortSet>(second).contains(static_cast<uint16_t>(port)));
        }
    }
}

TEST(PortSet, InsertUnionAndLowest) {
    PortSet set;
    set.insert(0);  // not a port: ignored
    EXPECT_TRUE(set.empty());
    set.insert(443);
    set.insert(80);
    set.insert(80);
    EXPECT_EQ(set.size(), 2u);
    set |= std::get<PortSet>(PortSet::parse("8000-8002,443"));
    EXPECT_EQ(set.to_string(), "80,443,8000-8002");
    EXPECT_EQ(set.size(), 5u);
    EXPECT_EQ(set.lowest(100), (std::vector<uint16_t>{80, 443, 8000, 8001, 8002}));
    EXPECT_EQ(set.lowest(2), (std::vector<uint16_t>{80, 443}));
    EXPECT_TRUE(set.lowest(0).empty());
    EXPECT_TRUE(PortSet().lowest(10).empty());
    const auto all = std::get<PortSet>(PortSet::parse("1-65535"));
    EXPECT_EQ(all.size(), 65535u);
    EXPECT_EQ(all.lowest(70000).back(), 65535);
}

}  // namespace
}  // namespace sonde::discovery
