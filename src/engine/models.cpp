// Typed models: the parts that need no template (JSON body reading, dict coercion).
#include "gatehouse/models.hpp"

#include "engine/json_runs.hpp"

#include <boost/json/stream_parser.hpp>

#include <algorithm>
#include <charconv>
#include <string>

namespace gatehouse::detail {

boost::json::array loc_plus(const boost::json::array& loc, boost::json::value more) {
  boost::json::array out = loc;
  out.push_back(std::move(more));
  return out;
}

ValueError dict_error() { return {"value is not a valid dict", "type_error.dict", {}}; }
ValueError list_error() { return {"value is not a valid list", "type_error.list", {}}; }

std::optional<boost::json::object> as_dict(const boost::json::value& v) {
  if (v.is_object()) return v.as_object();
  if (!v.is_array()) return std::nullopt;
  // Python's dict(list): every item a pair; a key that is not a string can match no
  // field, so it is dropped. Later pairs win.
  boost::json::object out;
  for (const auto& item : v.as_array()) {
    if (item.is_array() && item.as_array().size() == 2) {
      const auto& pair = item.as_array();
      if (pair[0].is_string()) out[pair[0].as_string()] = pair[1];
    } else if (item.is_string() && item.as_string().size() == 2) {
      const auto& two = item.as_string();
      out[std::string_view(two.data(), 1)] = std::string_view(two.data() + 1, 1);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

void append_json_text(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet appended, all written as they are
  for (std::size_t i = plain_json_run_end<false>(s, 0); i < s.size();
       i = plain_json_run_end<false>(s, i + 1)) {
    const auto c = static_cast<unsigned char>(s[i]);
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default: {
        const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out.append(u, sizeof u);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void append_json_integer(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

void append_json_integer(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

void schema_into_field(const boost::json::object& schema, Field& field) {
  if (const auto* t = schema.if_contains("type")) field.type = std::string(t->as_string());
  if (const auto* items = schema.if_contains("items")) field.items = *items;
}

namespace {

// Media type of a Content-Type as email.message's get_content_type: lower-cased,
// parameters dropped, text/plain when it is not type/subtype.
std::string content_type_of(std::string_view header) {
  auto semi = header.find(';');
  auto v = header.substr(0, semi);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  std::string out;
  for (char c : v) out += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  if (std::count(out.begin(), out.end(), '/') != 1) return "text/plain";
  return out;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

std::optional<boost::json::value> read_json_body(const Request& request, bool required,
                                                 boost::json::array& errors, bool& absent,
                                                 std::optional<HttpException>& stop) {
  const auto body = request.body();
  auto missing = [&]() -> std::optional<boost::json::value> {
    absent = true;
    if (required) errors.push_back(error_object({"body"}, missing_error()));
    return std::nullopt;
  };
  if (body.empty()) return missing();
  const auto ct = request.header("Content-Type");
  bool json = !ct || ct->empty();
  if (!json) {
    const auto media = content_type_of(*ct);
    const auto slash = media.find('/');
    const auto subtype = std::string_view(media).substr(slash + 1);
    json = media.substr(0, slash) == "application" &&
           (subtype == "json" ||
            (subtype.size() >= 5 && subtype.substr(subtype.size() - 5) == "+json"));
  }
  if (!json) {
    // The raw bytes: no model validates from them.
    errors.push_back(error_object({"body"}, dict_error()));
    return std::nullopt;
  }
  if (!valid_utf8(body)) {
    // FastAPI answers 400 for a body json.loads cannot decode at all.
    stop.emplace(400, "There was an error parsing the body");
    return std::nullopt;
  }
  boost::json::stream_parser parser;
  boost::system::error_code ec;
  std::size_t used = parser.write_some(body.data(), body.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    // Where json.loads would stop; the message is Boost.JSON's, not Python's.
    const auto pos = static_cast<std::int64_t>(std::min(used, body.size()));
    std::int64_t line = 1;
    std::int64_t col = 1;
    for (std::size_t k = 0; k < static_cast<std::size_t>(pos); ++k) {
      if (body[k] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    const std::string what = ec.message();
    ValueError e{what + ": line " + std::to_string(line) + " column " + std::to_string(col) +
                     " (char " + std::to_string(pos) + ")",
                 "value_error.jsondecode",
                 {{"msg", what}, {"doc", body}, {"pos", pos}, {"lineno", line}, {"colno", col}}};
    errors.push_back(error_object({"body", pos}, e));
    return std::nullopt;
  }
  auto value = parser.release();
  if (value.is_null()) return missing();
  return value;
}

}  // namespace gatehouse::detail
