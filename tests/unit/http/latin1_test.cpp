// latin1_to_utf8 tests eight bytes at a time for ASCII and returns it as it is; a
// byte of 0x80 or more anywhere (in a word or in the tail) is still converted.
#include <gtest/gtest.h>

#include <string>

#include "http/text.hpp"

namespace {

std::string reference(std::string_view bytes) {
  std::string out;
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

TEST(Latin1ToUtf8, AsciiAsItIs) {
  EXPECT_EQ(gatehouse::http::latin1_to_utf8(""), "");
  EXPECT_EQ(gatehouse::http::latin1_to_utf8("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"),
            "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x");
}

TEST(Latin1ToUtf8, AHighByteAnywhereIsConverted) {
  EXPECT_EQ(gatehouse::http::latin1_to_utf8("caf\xe9"), "caf\xc3\xa9");
  for (int c = 0x7f; c < 256; ++c) {
    for (std::size_t at = 0; at < 27; ++at) {
      std::string s(27, 'a');
      s[at] = static_cast<char>(c);
      ASSERT_EQ(gatehouse::http::latin1_to_utf8(s), reference(s)) << c << " at " << at;
    }
  }
}

}  // namespace
