// b64::decode_jose decodes a segment made only of alphabet characters a quad at a
// time; every other segment character by character. Both must answer exactly as the
// character-by-character decoder (binascii's lenient rules) always has: checked here
// against a copy of it for every string of up to 6 characters over an alphabet that
// has letters, digits, both alphabets' 62 and 63, '=', and characters jose skips.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "security/base64url.hpp"

namespace {

// The decoder as it was before the quad-at-a-time path (python-jose's rules).
std::optional<std::string> reference_decode(std::string_view segment) {
  auto value = [](unsigned char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  const std::size_t rem = segment.size() % 4;
  const std::size_t padded = segment.size() + (rem > 0 ? 4 - rem : 0);
  int quad = 0;
  int pads = 0;
  std::uint32_t left = 0;
  for (std::size_t i = 0; i < padded; ++i) {
    const auto ch = i < segment.size() ? static_cast<unsigned char>(segment[i])
                                       : static_cast<unsigned char>('=');
    if (ch == '=') {
      if (quad >= 2 && quad + ++pads >= 4) return out;
      continue;
    }
    const int vi = value(ch);
    if (vi < 0) continue;
    const auto v = static_cast<std::uint32_t>(vi);
    pads = 0;
    if (quad == 0) {
      left = v;
      quad = 1;
    } else if (quad == 1) {
      out += static_cast<char>((left << 2) | (v >> 4));
      left = v & 0x0fu;
      quad = 2;
    } else if (quad == 2) {
      out += static_cast<char>((left << 4) | (v >> 2));
      left = v & 0x03u;
      quad = 3;
    } else {
      out += static_cast<char>((left << 6) | v);
      left = 0;
      quad = 0;
    }
  }
  if (quad != 0) return std::nullopt;
  return out;
}

TEST(Base64urlPlain, AnswersAsTheCharacterByCharacterDecoder) {
  constexpr std::array<char, 11> kChars{'A', 'z', '9', '-', '_', '+', '/', '=', '.', '\n', 'Q'};
  std::size_t checked = 0;
  std::string s;
  std::string reused = "left over from an earlier call";
  for (std::size_t len = 0; len <= 6; ++len) {
    std::size_t combos = 1;
    for (std::size_t i = 0; i < len; ++i) combos *= kChars.size();
    for (std::size_t n = 0; n < combos; ++n) {
      s.clear();
      for (std::size_t i = 0, k = n; i < len; ++i, k /= kChars.size())
        s += kChars[k % kChars.size()];
      const auto want = reference_decode(s);
      const auto got = gatehouse::b64::decode_jose(s);
      ASSERT_EQ(got, want) << "'" << s << "'";
      ASSERT_EQ(gatehouse::b64::decode_jose(s, reused), want.has_value()) << "'" << s << "'";
      if (want) {
        ASSERT_EQ(reused, *want) << "'" << s << "'";
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000000u);
}

TEST(Base64urlPlain, LongSegmentsAndEveryTailLength) {
  const std::string bytes = "\x00\x01\xfe\xff gatehouse \x7f\x80 {\"sub\":\"johndoe\"}";
  for (std::size_t n = 0; n <= bytes.size(); ++n) {
    const auto encoded = gatehouse::b64::encode_url(std::string_view(bytes).substr(0, n));
    const auto decoded = gatehouse::b64::decode_jose(encoded);
    ASSERT_TRUE(decoded.has_value()) << n;
    EXPECT_EQ(*decoded, bytes.substr(0, n));
    EXPECT_EQ(decoded, reference_decode(encoded)) << n;
    // Canonical decoding agrees on canonical input.
    EXPECT_EQ(gatehouse::b64::decode_url_canonical(encoded), decoded) << n;
  }
}

}  // namespace
