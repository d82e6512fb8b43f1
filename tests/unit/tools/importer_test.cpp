// Importing users exported from a FastAPI app (tools/importer.cpp): JSON list, the
// tutorial's dict, CSV, and the refusals the command answers with exit code 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "importer.hpp"

namespace {

using gatehouse::tools::ImportError;
using gatehouse::tools::parse_import;

constexpr const char* kBcrypt = "$2b$12$EixZaYVK1fsbw1ZfbX3OXePaWxn96p36WQoeG6Lruj3vjPGga31lW";

std::string refusal(const std::string& text) {
  try {
    (void)parse_import(text, "users.json");
  } catch (const ImportError& e) {
    return e.what();
  }
  return "";
}

TEST(Importer, JsonListAndTutorialDict) {
  const auto list = parse_import(std::string(R"([{"username":"a","hashed_password":")") + kBcrypt +
                                     R"(","email":"a@example.com","disabled":true}])",
                                 "list.json");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].username, "a");
  EXPECT_EQ(list[0].email, "a@example.com");
  EXPECT_EQ(list[0].full_name, std::nullopt);
  EXPECT_TRUE(list[0].disabled);
  const auto dict =
      parse_import(std::string(R"({"johndoe":{"username":"johndoe","full_name":"John",)") +
                       R"("hashed_password":")" + kBcrypt + R"("}})",
                   "dict.json");
  ASSERT_EQ(dict.size(), 1u);
  EXPECT_EQ(dict[0].username, "johndoe");
  EXPECT_EQ(dict[0].full_name, "John");
  EXPECT_FALSE(dict[0].disabled);
}

TEST(Importer, CsvWithQuotesAndTruthyDisabled) {
  const auto users =
      parse_import(std::string("username,hashed_password,full_name,disabled\r\n") + "jd," +
                       kBcrypt + ",\"Doe, \"\"John\"\"\",Yes\r\n\n" + "al," + kBcrypt + ",,0\n",
                   "users.csv");
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0].full_name, "Doe, \"John\"");
  EXPECT_TRUE(users[0].disabled);
  EXPECT_EQ(users[1].full_name, std::nullopt);
  EXPECT_FALSE(users[1].disabled);
}

TEST(Importer, Refusals) {
  EXPECT_EQ(refusal("[1]"), "users.json: each user must be a JSON object");
  EXPECT_EQ(refusal(R"([{"username":"a"}])"),
            "users.json: every user needs username and hashed_password");
  EXPECT_EQ(refusal(R"([{"username":"a","hashed_password":"plain"}])"),
            "users.json: a: unsupported hash (bcrypt or argon2 expected)");
  EXPECT_EQ(refusal(R"([{"username":5,"hashed_password":"x"}])"),
            "users.json: username must be a string");
  EXPECT_EQ(refusal("[{").rfind("users.json: not valid JSON: ", 0), 0u);
}

TEST(Importer, ReadsAFileOrSaysItCannot) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("gatehouse-importer-test-" + std::to_string(::getpid()) + ".csv");
  std::ofstream(path) << "username,hashed_password\nbob," << kBcrypt << "\n";
  const auto users = gatehouse::tools::read_import_file(path.string());
  std::filesystem::remove(path);
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].username, "bob");
  try {
    (void)gatehouse::tools::read_import_file(path.string());
    ADD_FAILURE() << "a missing file was read";
  } catch (const ImportError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot read " + path.string());
  }
}

}  // namespace
