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

namespace {

// decode_jose's common case: every character in the alphabet, so no padding and
// nothing skipped. Whole quads become 3 bytes, a tail of 2 or 3 characters 1 or 2
// (its unused low bits ignored, as binascii does), a tail of 1 is "Incorrect padding".
bool decode_plain(std::string_view segment, std::string& out) {
  const std::size_t n = segment.size();
  const std::size_t rem = n % 4;
  if (rem == 1) return false;
  out.resize(n / 4 * 3 + (rem == 0 ? 0 : rem - 1));
  auto at = [&](std::size_t k) {
    return static_cast<std::uint32_t>(kTable[static_cast<unsigned char>(segment[k])]);
  };
  char* o = out.data();
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const std::uint32_t v = (at(i) << 18) | (at(i + 1) << 12) | (at(i + 2) << 6) | at(i + 3);
    *o++ = static_cast<char>(v >> 16);
    *o++ = static_cast<char>((v >> 8) & 0xffu);
    *o++ = static_cast<char>(v & 0xffu);
  }
  if (rem >= 2) {
    const std::uint32_t v = (at(i) << 18) | (at(i + 1) << 12) | (rem == 3 ? at(i + 2) << 6 : 0u);
    *o++ = static_cast<char>(v >> 16);
    if (rem == 3) *o++ = static_cast<char>((v >> 8) & 0xffu);
  }
  return true;
}

}  // namespace

std::optional<std::string> decode_jose(std::string_view segment) {
  std::string out;
  if (!decode_jose(segment, out)) return std::nullopt;
  return out;
}

bool decode_jose(std::string_view segment, std::string& out) {
  out.clear();
  bool plain = true;
  for (const char c : segment) plain = plain && kTable[static_cast<unsigned char>(c)] != 0xff;
  if (plain) return decode_plain(segment, out);
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
      if (quad >= 2 && quad + ++pads >= 4) return true;  // a complete pad sequence ends it
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
  return quad == 0;  // else "Incorrect padding"
}

std::optional<std::string> decode_url_canonical(std::string_view segment) {
  std::string out;
  if (!decode_url_canonical(segment, out)) return std::nullopt;
  return out;
}

bool decode_url_canonical(std::string_view segment, std::string& out) {
  if (segment.size() % 4 == 1) return false;
  for (const char c : segment) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  if (!segment.empty()) {
    // 2 characters carry 1 byte (4 bits unused), 3 carry 2 (2 bits unused).
    const std::uint8_t last = kTable[static_cast<unsigned char>(segment.back())];
    const std::size_t rem = segment.size() % 4;
    if ((rem == 2 && (last & 0x0fu) != 0) || (rem == 3 && (last & 0x03u) != 0)) {
      return false;
    }
  }
  return decode_jose(segment, out);
}

}  // namespace gatehouse::b64
