// detail::write_json, which answers a route returning its response model's type
// without building a boost::json::value, writes exactly the bytes
// boost::json::serialize writes for that value: every byte value in a string, invalid
// UTF-8, the integer limits, empty and absent values.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gatehouse/models.hpp"

namespace json_writer_test {

struct Row {
  std::string name;
  std::optional<std::string> note;
  std::optional<bool> flag;
  bool on = false;
  std::int32_t small = 0;
  std::int64_t big = 0;
  std::uint16_t port = 0;
  std::uint64_t huge = 0;
  std::vector<std::string> tags;
  std::optional<std::vector<std::int64_t>> ids;
};
GATEHOUSE_MODEL(Row, name, note, flag, on, small, big, port, huge, tags, ids)

struct Empty {};
GATEHOUSE_MODEL(Empty)

struct WithFloat {
  double x = 0;
};
GATEHOUSE_MODEL(WithFloat, x)

}  // namespace json_writer_test

namespace {

using json_writer_test::Empty;
using json_writer_test::Row;
using json_writer_test::WithFloat;

std::string direct_text(std::string_view s) {
  std::string out;
  gatehouse::detail::append_json_text(out, s);
  return out;
}

std::string boost_text(std::string_view s) {
  return boost::json::serialize(boost::json::string(s));
}

template <class T>
std::string direct(const T& v) {
  std::string out;
  gatehouse::detail::write_json(out, v);
  return out;
}

template <class T>
std::string via_value(const T& v) {
  return boost::json::serialize(gatehouse::to_json(v));
}

TEST(JsonWriter, EveryByteAsBoostJsonWritesIt) {
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    EXPECT_EQ(direct_text(one), boost_text(one)) << "byte " << c;
    const std::string framed = "a" + one + "bc" + one;
    EXPECT_EQ(direct_text(framed), boost_text(framed)) << "byte " << c;
  }
}

// Plain text is copied eight bytes at a time: a byte to escape at any place in a long
// run is still found.
TEST(JsonWriter, AnyByteAnywhereInALongRun) {
  for (int c = 0; c < 256; ++c) {
    for (std::size_t at = 0; at < 41; ++at) {
      std::string s(41, 'a');
      s[at] = static_cast<char>(c);
      ASSERT_EQ(direct_text(s), boost_text(s)) << "byte " << c << " at " << at;
    }
  }
}

TEST(JsonWriter, EscapesAsBoostJson) {
  EXPECT_EQ(direct_text("a\"b\\c\n\x01\x1f\x7f"), R"("a\"b\\c\n\u0001\u001f)"
                                                  "\x7f\"");
  EXPECT_EQ(direct_text(""), "\"\"");
  EXPECT_EQ(direct_text("j\xc3\xb6hn"), "\"j\xc3\xb6hn\"");
}

TEST(JsonWriter, RandomBytesAsBoostJson) {
  std::mt19937 gen(12345);
  std::uniform_int_distribution<int> len(0, 40);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 5000; ++i) {
    std::string s(static_cast<std::size_t>(len(gen)), '\0');
    for (auto& c : s) c = static_cast<char>(byte(gen));
    ASSERT_EQ(direct_text(s), boost_text(s));
  }
}

TEST(JsonWriter, ModelsAsBoostJson) {
  static_assert(gatehouse::detail::writes_directly<Row>());
  static_assert(gatehouse::detail::writes_directly<Empty>());
  static_assert(!gatehouse::detail::writes_directly<WithFloat>());
  static_assert(!gatehouse::detail::writes_directly<char>());
  const std::vector<Row> rows = {
      Row{},
      Row{"j\xc3\xb6hn \"d\"\n\x01\xff",
          "note\\",
          true,
          true,
          std::numeric_limits<std::int32_t>::min(),
          std::numeric_limits<std::int64_t>::min(),
          std::numeric_limits<std::uint16_t>::max(),
          std::numeric_limits<std::uint64_t>::max(),
          {"me", "", "items"},
          std::vector<std::int64_t>{-1, 0, 7, std::numeric_limits<std::int64_t>::max()}},
      Row{"x", std::nullopt, false, false, -7, 0, 0, 0, {}, std::vector<std::int64_t>{}},
  };
  for (const auto& row : rows) EXPECT_EQ(direct(row), via_value(row));
  EXPECT_EQ(direct(Row{}),
            R"({"name":"","note":null,"flag":null,"on":false,"small":0,"big":0,"port":0,)"
            R"("huge":0,"tags":[],"ids":null})");
  EXPECT_EQ(direct(Empty{}), "{}");
  EXPECT_EQ(direct(Empty{}), via_value(Empty{}));
}

}  // namespace
