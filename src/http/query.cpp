// Query strings and cookies as Starlette 0.26 reads them (QueryParams, cookie_parser).
#include <string>
#include <string_view>

#include "gatehouse/http.hpp"
#include "http/form.hpp"
#include "http/text.hpp"

namespace gatehouse {

namespace {

// Python's str.strip() on a latin-1 decoded header value: ASCII whitespace, the
// separators 0x1c-0x1f, NEL and NBSP.
bool is_py_space(unsigned char c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0;
}

std::string_view py_strip(std::string_view s) {
  while (!s.empty() && is_py_space(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && is_py_space(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_octal(char c, char max) { return c >= '0' && c <= max; }

// http.cookies._unquote: a value in double quotes loses them, and its \ooo octal
// escapes and \x escapes are decoded. Works on latin-1 characters (bytes).
std::string cookie_unquote(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  v = v.substr(1, v.size() - 2);
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '\\') {
      out += v[i];
      continue;
    }
    if (i + 3 < v.size() && is_octal(v[i + 1], '3') && is_octal(v[i + 2], '7') &&
        is_octal(v[i + 3], '7')) {
      out +=
          static_cast<char>(((v[i + 1] - '0') << 6) | ((v[i + 2] - '0') << 3) | (v[i + 3] - '0'));
      i += 3;
    } else if (i + 1 < v.size() && v[i + 1] != '\n') {
      out += v[i + 1];
      i += 1;
    } else {
      out += '\\';
    }
  }
  return out;
}

}  // namespace

Params parse_query_string(std::string_view query) {
  Params out;
  while (true) {
    const auto amp = query.find('&');
    const auto field = query.substr(0, amp);
    if (!field.empty()) {
      const auto eq = field.find('=');
      auto name = field.substr(0, eq);
      auto value = eq == std::string_view::npos ? std::string_view{} : field.substr(eq + 1);
      out.emplace_back(http::unquote_plus(name), http::unquote_plus(value));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

Params parse_cookies(std::string_view header) {
  Params out;
  while (true) {
    const auto semi = header.find(';');
    const auto chunk = header.substr(0, semi);
    const auto eq = chunk.find('=');
    auto key = py_strip(eq == std::string_view::npos ? std::string_view{} : chunk.substr(0, eq));
    auto val = py_strip(eq == std::string_view::npos ? chunk : chunk.substr(eq + 1));
    if (!key.empty() || !val.empty()) {
      // A dict: a later cookie of the same name replaces the value in place.
      auto name = http::latin1_to_utf8(key);
      auto value = http::latin1_to_utf8(cookie_unquote(val));
      bool replaced = false;
      for (auto& [n, v] : out) {
        if (n == name) {
          v = value;
          replaced = true;
          break;
        }
      }
      if (!replaced) out.emplace_back(std::move(name), std::move(value));
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return out;
}

const std::string* find_param(const Params& params, std::string_view name) {
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (it->first == name) return &it->second;
  }
  return nullptr;
}

}  // namespace gatehouse
