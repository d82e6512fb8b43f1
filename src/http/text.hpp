// Text conversions the HTTP layer needs to read bytes as Starlette reads them.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace gatehouse::http {

// Bytes read as latin-1 (how Starlette decodes header values and raw form bytes),
// returned as UTF-8. ASCII comes back unchanged.
inline std::string latin1_to_utf8(std::string_view bytes) {
  if (std::all_of(bytes.begin(), bytes.end(),
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

}  // namespace gatehouse::http
