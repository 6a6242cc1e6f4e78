// docs/configuration.md is generated from the option table and must not drift.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "config/config.h"
#include "config/options.h"

namespace sonde::config {
namespace {

const std::string kDocPath = std::string(SONDE_SOURCE_DIR) + "/docs/configuration.md";

TEST(ConfigDocs, ReferenceFileMatchesTheOptionTable) {
    const std::string generated = render_reference_markdown();
    if (std::getenv("SONDE_REGENERATE_DOCS") != nullptr) {
        std::ofstream(kDocPath, std::ios::binary | std::ios::trunc) << generated;
    }
    std::ifstream in(kDocPath, std::ios::binary);
    ASSERT_TRUE(in) << kDocPath;
    std::stringstream file;
    file << in.rdbuf();
    EXPECT_TRUE(file.str() == generated)
        << kDocPath << " is out of date; regenerate it with\n"
        << "  SONDE_REGENERATE_DOCS=1 build/sonde_unit_tests --gtest_filter='ConfigDocs.*'";
}

TEST(ConfigDocs, EveryKeyAndVariableIsDocumented) {
    const std::string doc = render_reference_markdown();
    for (const auto& spec : detail::option_table()) {
        if (!spec.key.empty()) {
            EXPECT_NE(doc.find("`" + spec.key + "`"), std::string::npos) << spec.key;
        }
        for (const auto& var : spec.env) {
            EXPECT_NE(doc.find("`" + var.name + "`"), std::string::npos) << var.name;
        }
        EXPECT_FALSE(spec.help.empty()) << spec.key;
    }
    for (const auto& field : detail::selector_fields()) {
        EXPECT_NE(doc.find("`" + field.key + "`"), std::string::npos) << field.key;
    }
}

TEST(ConfigDocs, TableDeclaresEachKeyAndVariableOnce) {
    std::set<std::string> keys;
    std::set<std::string> vars;
    for (const auto& spec : detail::option_table()) {
        if (!spec.key.empty()) {
            EXPECT_TRUE(keys.insert(spec.key).second) << spec.key;
        } else {
            EXPECT_FALSE(spec.env.empty()) << "an option with neither key nor variable";
        }
        EXPECT_TRUE(spec.apply && spec.dump) << spec.key;
        for (const auto& var : spec.env) {
            // A variable read whole belongs to one option; one that holds several
            // settings (OTEL_RESOURCE_ATTRIBUTES) has an extractor per option.
            EXPECT_TRUE(vars.insert(var.name).second || var.extract != nullptr) << var.name;
        }
    }
    // Every SONDE_X has its BEYLA_X alias.
    for (const auto& var : vars) {
        if (var.rfind("SONDE_", 0) == 0) {
            EXPECT_EQ(vars.count("BEYLA_" + var.substr(6)), 1u) << var;
        }
    }
    // Sections and options do not collide: no option is also a section.
    for (const auto& section : detail::section_paths()) {
        EXPECT_EQ(keys.count(section), 0u) << section;
    }
}

}  // namespace
}  // namespace sonde::config
