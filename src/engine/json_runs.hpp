// Where a JSON string writer has to stop copying: the first byte at or after `i` that
// it escapes. Eight bytes are tested at once (no byte of a word below 0x20, equal to
// '"' or '\\', and for ASCII-only text none of 0x7F and above), so plain text is
// copied in runs.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace gatehouse::detail {

template <bool kAsciiOnly>
inline bool plain_json_byte(unsigned char c) {
  if (c < 0x20 || c == '"' || c == '\\') return false;
  return !kAsciiOnly || c < 0x7F;
}

template <bool kAsciiOnly>
inline std::size_t plain_json_run_end(std::string_view s, std::size_t i) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  // Nonzero exactly when some byte of x is zero / below n (n <= 0x80).
  auto has_zero = [](std::uint64_t x) { return (x - kOnes) & ~x & kHigh; };
  while (i + 8 <= s.size()) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + i, 8);
    std::uint64_t stop = ((w - kOnes * 0x20) & ~w & kHigh) | has_zero(w ^ (kOnes * '"')) |
                         has_zero(w ^ (kOnes * '\\'));
    if constexpr (kAsciiOnly) stop |= (w & kHigh) | has_zero(w ^ (kOnes * 0x7F));
    if (stop != 0) break;
    i += 8;
  }
  while (i < s.size() && plain_json_byte<kAsciiOnly>(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

}  // namespace gatehouse::detail
