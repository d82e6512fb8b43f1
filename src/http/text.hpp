// Text conversions the HTTP layer needs to read bytes as Starlette reads them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace gatehouse::http {

// Bytes read as latin-1 (how Starlette decodes header values and raw form bytes),
// returned as UTF-8. ASCII comes back unchanged.
inline std::string latin1_to_utf8(std::string_view bytes) {
  // ASCII (no byte with its high bit set), tested eight bytes at a time.
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, bytes.data() + i, 8);
    if ((w & 0x8080808080808080ull) != 0) break;
  }
  if (std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(i), bytes.end(),
                  [](char ch) { return static_cast<unsigned char>(ch) < 0x80; })) {
    return std::string(bytes);
  }
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

// ASCII case-insensitive equality (HTTP schemes, tokens and codings). Not Beast's
// iequals: in Boost 1.81 it reads one byte past the end of its first argument after
// a case difference (found by fuzz/fuzz_bearer.cpp).
inline bool ascii_iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

}  // namespace gatehouse::http
