// SecurityScopes, and scope strings split as Python's str.split() does.
#include "gatehouse/scopes.hpp"

#include <cstdint>

namespace gatehouse {

namespace {

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += ' ';
    out += p;
  }
  return out;
}

}  // namespace

SecurityScopes::SecurityScopes(std::vector<std::string> scopes)
    : scopes_(std::move(scopes)), scope_str_(join(scopes_)) {}

SecurityScopes SecurityScopes::plus(const std::vector<std::string>& more) const {
  if (more.empty()) return *this;
  auto all = scopes_;
  all.insert(all.end(), more.begin(), more.end());
  return SecurityScopes(std::move(all));
}

// Python's str.split() with no separator: runs of whitespace separate, and empty
// parts are dropped. Whitespace is Python's str.isspace() set, decoded from UTF-8.
std::vector<std::string> split_scopes(std::string_view s) {
  std::vector<std::string> out;
  std::string current;
  std::size_t i = 0;
  auto flush = [&] {
    if (!current.empty()) out.push_back(std::move(current));
    current.clear();
  };
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 1;
    bool space = false;
    if (c < 0x80) {
      space = (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20);
    } else {
      // Decode one UTF-8 sequence (invalid bytes count as one non-space character).
      // A lead byte takes only continuation bytes (10xxxxxx) with it, so that an ASCII
      // space after a stray lead byte still separates.
      auto continues = [&](std::size_t n) {
        if (i + n >= s.size()) return false;
        for (std::size_t k = 1; k <= n; ++k) {
          if ((static_cast<unsigned char>(s[i + k]) & 0xc0u) != 0x80u) return false;
        }
        return true;
      };
      std::uint32_t cp = 0;
      if ((c & 0xe0) == 0xc0 && continues(1)) {
        len = 2;
        cp = ((c & 0x1fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3fu);
      } else if ((c & 0xf0) == 0xe0 && continues(2)) {
        len = 3;
        cp = ((c & 0x0fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3fu) << 6) |
             (static_cast<unsigned char>(s[i + 2]) & 0x3fu);
      } else if ((c & 0xf8) == 0xf0 && continues(3)) {
        len = 4;
      }
      space = cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
              cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
    }
    if (space) {
      flush();
    } else {
      current.append(s.substr(i, len));
    }
    i += len;
  }
  flush();
  return out;
}

}  // namespace gatehouse
