// append_json_string, which writes every string of a log line, copies runs of plain
// text at once; its output is checked here against the byte-at-a-time definition it
// replaced: printable ASCII as is, `"` and `\` escaped, other ASCII as \u00xx, valid
// UTF-8 sequences as they are, and each byte of an invalid one as \u00xx.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "gatehouse/log.hpp"

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 (overlongs, surrogates and code
// points past U+10FFFF are invalid).
std::size_t reference_utf8_length(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  unsigned cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0Fu;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07u;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (d & 0x3Fu);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return 0;
  }
  return n;
}

std::string reference(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (std::size_t n = reference_utf8_length(s, i); n != 0) {
        out.append(s.substr(i, n));
        i += n;
        continue;
      }
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7F) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  out += '"';
  return out;
}

std::string escaped(std::string_view s) {
  std::string out = "prefix";
  gatehouse::append_json_string(out, s);
  return out.substr(6);
}

TEST(LogEscape, Examples) {
  EXPECT_EQ(escaped(""), "\"\"");
  EXPECT_EQ(escaped("/users/me/"), "\"/users/me/\"");
  EXPECT_EQ(escaped("a\"b\\c\n\x7f"), R"("a\"b\\c\u000a\u007f")");
  EXPECT_EQ(escaped("j\xc3\xb6hn"), "\"j\xc3\xb6hn\"");
  EXPECT_EQ(escaped("x\xc3"), R"("x\u00c3")");                      // cut short
  EXPECT_EQ(escaped("\xed\xa0\x80z"), R"("\u00ed\u00a0\u0080z")");  // a surrogate
}

TEST(LogEscape, EveryByteAsTheReference) {
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    EXPECT_EQ(escaped(one), reference(one)) << c;
    const std::string framed = "ab" + one + "c" + one + one;
    EXPECT_EQ(escaped(framed), reference(framed)) << c;
  }
}

// Plain text is copied eight bytes at a time: a byte to escape, or a UTF-8 sequence,
// at any place in a long run is still found.
TEST(LogEscape, AnyByteAnywhereInALongRun) {
  for (int c = 0; c < 256; ++c) {
    for (std::size_t at = 0; at < 41; ++at) {
      std::string s(41, 'a');
      s[at] = static_cast<char>(c);
      ASSERT_EQ(escaped(s), reference(s)) << c << " at " << at;
      if (at + 1 < s.size()) {
        s[at + 1] = static_cast<char>(0xa9);  // with c = 0xc2: the valid "\xc2\xa9"
        ASSERT_EQ(escaped(s), reference(s)) << c << " at " << at;
      }
    }
  }
}

TEST(LogEscape, RandomTextAsTheReference) {
  std::mt19937 gen(777);
  std::uniform_int_distribution<int> len(0, 32);
  // Mostly bytes that make UTF-8 sequences, valid or not, and the escaped ones.
  const std::vector<unsigned char> pool = {'a',  'Z',  '/',  ' ',  '"',  '\\', 0x00, 0x1f, 0x7f,
                                           0x80, 0xbf, 0xc2, 0xc3, 0xdf, 0xe0, 0xed, 0xef, 0xf0,
                                           0xf4, 0xf5, 0xff, 0x9f, 0xa0, 0x90, 0x8f};
  std::uniform_int_distribution<std::size_t> pick(0, pool.size() - 1);
  for (int i = 0; i < 20000; ++i) {
    std::string s(static_cast<std::size_t>(len(gen)), '\0');
    for (auto& c : s) c = static_cast<char>(pool[pick(gen)]);
    ASSERT_EQ(escaped(s), reference(s));
  }
}

}  // namespace
