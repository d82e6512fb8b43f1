#include "security/base64url.hpp"

#include <array>
#include <cstdint>

namespace gatehouse::b64 {

namespace {

constexpr char kUrlAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Standard alphabet values; '-' and '_' are mapped to '+' and '/' before lookup.
constexpr std::array<std::uint8_t, 256> make_table() {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t) v = 0xff;
  for (int i = 0; i < 26; ++i) {
    t[static_cast<std::size_t>('A' + i)] = static_cast<std::uint8_t>(i);
    t[static_cast<std::size_t>('a' + i)] = static_cast<std::uint8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i)
    t[static_cast<std::size_t>('0' + i)] = static_cast<std::uint8_t>(52 + i);
  t['+'] = 62;
  t['/'] = 63;
  t['-'] = 62;
  t['_'] = 63;
  return t;
}
constexpr auto kTable = make_table();

}  // namespace

void encode_url(std::string_view data, std::string& out) {
  std::size_t i = 0;
  const auto n = data.size();
  auto at = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(data[k]));
  };
  while (i + 3 <= n) {
    std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += kUrlAlphabet[(v >> 18) & 63];
    out += kUrlAlphabet[(v >> 12) & 63];
    out += kUrlAlphabet[(v >> 6) & 63];
    out += kUrlAlphabet[v & 63];
    i += 3;
  }
  if (n - i == 1) {
    std::uint32_t v = at(i) << 16;
    out += kUrlAlphabet[(v >> 18) & 63];
    out += kUrlAlphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    out += kUrlAlphabet[(v >> 18) & 63];
    out += kUrlAlphabet[(v >> 12) & 63];
    out += kUrlAlphabet[(v >> 6) & 63];
  }
}

std::string encode_url(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  encode_url(data, out);
  return out;
}

std::optional<std::string> decode_jose(std::string_view segment) {
  std::string out;
  out.reserve(segment.size() * 3 / 4 + 3);
  // jose pads with '=' up to a multiple of 4 (counting every byte of the segment).
  const std::size_t rem = segment.size() % 4;
  const std::size_t padded = segment.size() + (rem > 0 ? 4 - rem : 0);
  int quad = 0;
  int pads = 0;
  std::uint32_t left = 0;
  for (std::size_t i = 0; i < padded; ++i) {
    const auto ch = i < segment.size() ? static_cast<unsigned char>(segment[i])
                                       : static_cast<unsigned char>('=');
    if (ch == '=') {
      if (quad >= 2 && quad + ++pads >= 4) return out;  // a complete pad sequence ends it
      continue;
    }
    const std::uint8_t v = kTable[ch];
    if (v == 0xff) continue;  // not in the alphabet: skipped, as binascii does
    pads = 0;
    switch (quad) {
      case 0:
        left = v;
        quad = 1;
        break;
      case 1:
        out += static_cast<char>((left << 2) | (v >> 4));
        left = v & 0x0fu;
        quad = 2;
        break;
      case 2:
        out += static_cast<char>((left << 4) | (v >> 2));
        left = v & 0x03u;
        quad = 3;
        break;
      default:
        out += static_cast<char>((left << 6) | v);
        left = 0;
        quad = 0;
        break;
    }
  }
  if (quad != 0) return std::nullopt;  // "Incorrect padding"
  return out;
}

std::optional<std::string> decode_url_canonical(std::string_view segment) {
  if (segment.size() % 4 == 1) return std::nullopt;
  for (const char c : segment) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return std::nullopt;
  }
  if (!segment.empty()) {
    // 2 characters carry 1 byte (4 bits unused), 3 carry 2 (2 bits unused).
    const std::uint8_t last = kTable[static_cast<unsigned char>(segment.back())];
    const std::size_t rem = segment.size() % 4;
    if ((rem == 2 && (last & 0x0fu) != 0) || (rem == 3 && (last & 0x03u) != 0)) {
      return std::nullopt;
    }
  }
  return decode_jose(segment);
}

}  // namespace gatehouse::b64
