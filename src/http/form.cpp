#include "http/form.hpp"

#include "http/text.hpp"

#include <algorithm>
#include <cctype>

namespace gatehouse {

const FormField* FormData::get(std::string_view name) const {
  for (auto it = fields_.rbegin(); it != fields_.rend(); ++it) {
    if (it->name == name) return &*it;
  }
  return nullptr;
}

}  // namespace gatehouse

namespace gatehouse::http {

namespace {

constexpr std::string_view kParseError = "There was an error parsing the body";

std::string too_many(const char* what) {
  return std::string("Too many ") + what + ". Maximum number of " + what + " is " +
         std::to_string(kMaxFormFields) + ".";
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view strip(std::string_view s) {
  // Python's bytes.strip(): ASCII whitespace.
  auto is_ws = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Decodes bytes as UTF-8, replacing each maximal invalid subpart with U+FFFD, as
// Python's bytes.decode("utf-8", "replace") does.
void decode_utf8_replace(std::string_view in, std::string& out) {
  std::size_t i = 0;
  const auto n = in.size();
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
  while (i < n) {
    unsigned char c = byte(i);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    std::size_t need = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    std::size_t got = 0;
    bool ok = true;
    while (got < need) {
      if (j >= n) {
        ok = false;
        break;
      }
      unsigned char d = byte(j);
      unsigned char l = got == 0 ? lo : 0x80;
      unsigned char h = got == 0 ? hi : 0xbf;
      if (d < l || d > h) {
        ok = false;
        break;
      }
      ++j;
      ++got;
    }
    if (ok) {
      out.append(in.substr(i, j - i));
    } else {
      out += "\xef\xbf\xbd";
    }
    i = j;
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string unquote_impl(std::string_view raw, bool plus) {
  // ASCII without '%' (nor '+' when it means a space) decodes to itself.
  if (std::all_of(raw.begin(), raw.end(), [plus](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c < 0x80 && c != '%' && (c != '+' || !plus);
      })) {
    return std::string(raw);
  }
  std::string out;
  out.reserve(raw.size());
  std::string run;  // bytes of the current ASCII run, percent-decoded
  auto flush = [&] {
    decode_utf8_replace(run, out);
    run.clear();
  };
  for (std::size_t i = 0; i < raw.size(); ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (c >= 0x80) {
      flush();
      append_utf8(out, c);  // a latin-1 character
      continue;
    }
    if (c == '+' && plus) {
      run += ' ';
    } else if (c == '%' && i + 2 < raw.size() && hex_value(raw[i + 1]) >= 0 &&
               hex_value(raw[i + 2]) >= 0) {
      run += static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2]));
      i += 2;
    } else {
      run += static_cast<char>(c);
    }
  }
  flush();
  return out;
}

// Python's names for UTF-8 ("utf-8", "UTF8", "utf_8", "u8", ...).
bool is_utf8_codec(std::string_view name) {
  std::string n;
  for (char c : name) {
    if (c == '-' || c == '_' || c == ' ') continue;
    n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return n == "utf8" || n == "u8" || n == "utf" || n == "cp65001";
}

// bytes.decode(charset) falling back to latin-1, as Starlette's _user_safe_decode.
std::string user_safe_decode(std::string_view data) {
  std::string utf8;
  decode_utf8_replace(data, utf8);
  if (utf8 == data) return utf8;  // valid UTF-8 decodes to itself
  return latin1_to_utf8(data);
}

}  // namespace

const std::string* OptionsHeader::param(std::string_view key) const {
  const std::string* found = nullptr;
  for (const auto& [k, v] : params) {
    if (k == key) found = &v;  // the last one wins, as in a dict
  }
  return found;
}

OptionsHeader parse_options_header(std::string_view header) {
  OptionsHeader out;
  if (header.empty()) return out;
  auto semi = header.find(';');
  if (semi == std::string_view::npos) {
    out.value = lower(strip(header));
    return out;
  }
  // python-multipart quirk: with parameters, the value is neither lower-cased nor
  // stripped, so "Multipart/Form-Data; boundary=x" is not a form.
  out.value = std::string(header.substr(0, semi));
  // python-multipart's OPTION_RE, (?:;|^)\s*(token)\s*=\s*(token|"(?:\\.|[^"])*"),
  // applied with re.finditer, as a scanner: no recursion, whatever the length.
  const std::string_view rest = header.substr(semi + 1);
  const std::size_t n = rest.size();
  auto is_space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  auto is_token = [](char c) {
    return std::string_view("()<>@,;:\\\"/[]?={} \t").find(c) == std::string_view::npos;
  };
  std::size_t pos = 0;
  while (pos < n) {
    std::size_t i = pos;
    if (rest[i] == ';') {
      ++i;
    } else if (pos != 0) {
      ++pos;
      continue;
    }
    while (i < n && is_space(rest[i])) ++i;
    const std::size_t key_start = i;
    while (i < n && is_token(rest[i])) ++i;
    const std::size_t key_end = i;
    while (i < n && is_space(rest[i])) ++i;
    if (key_end == key_start || i >= n || rest[i] != '=') {
      ++pos;
      continue;
    }
    ++i;
    while (i < n && is_space(rest[i])) ++i;
    std::string value;
    if (i < n && is_token(rest[i])) {
      const std::size_t v = i;
      while (i < n && is_token(rest[i])) ++i;
      value = std::string(rest.substr(v, i - v));
    } else if (i < n && rest[i] == '"') {
      // The closing quote, honouring backslash escapes; failing that (as the regex
      // would backtrack), the last quote there is.
      std::size_t j = i + 1;
      std::size_t close = std::string_view::npos;
      while (j < n) {
        if (rest[j] == '\\' && j + 1 < n && rest[j + 1] != '\n') {
          j += 2;
        } else if (rest[j] == '"') {
          close = j;
          break;
        } else {
          ++j;
        }
      }
      if (close == std::string_view::npos) {
        auto last = rest.rfind('"');
        if (last != std::string_view::npos && last > i) close = last;
      }
      if (close == std::string_view::npos) {
        ++pos;
        continue;
      }
      std::string_view quoted = rest.substr(i + 1, close - i - 1);
      i = close + 1;
      // As python-multipart: every \\ becomes \, then every \" becomes ".
      auto replace_all = [](std::string text, std::string_view from, std::string_view to) {
        std::string result;
        for (std::size_t k = 0; k < text.size();) {
          if (text.compare(k, from.size(), from) == 0) {
            result += to;
            k += from.size();
          } else {
            result += text[k++];
          }
        }
        return result;
      };
      value = replace_all(replace_all(std::string(quoted), "\\\\", "\\"), "\\\"", "\"");
    } else {
      ++pos;
      continue;
    }
    out.params.emplace_back(lower(rest.substr(key_start, key_end - key_start)), std::move(value));
    pos = i;
  }
  return out;
}

std::string unquote_plus(std::string_view raw) { return unquote_impl(raw, true); }
std::string unquote(std::string_view raw) { return unquote_impl(raw, false); }

Result<std::vector<FormField>, std::string> parse_urlencoded(std::string_view data) {
  enum class State { before_field, field_name, field_data };
  std::vector<FormField> fields;
  State state = State::before_field;
  bool found_sep = false;
  std::string_view name;
  std::string_view value;
  auto end_field = [&] {
    fields.push_back(FormField{unquote_plus(name), unquote_plus(value), false});
  };
  // The next separator: '&' if any remains, else ';' (python-multipart's order).
  auto next_sep = [&](std::size_t from) {
    auto p = data.find('&', from);
    return p != std::string_view::npos ? p : data.find(';', from);
  };
  const std::size_t n = data.size();
  std::size_t i = 0;
  while (i < n) {
    char ch = data[i];
    switch (state) {
      case State::before_field:
        if (ch == '&' || ch == ';') {
          found_sep = true;  // repeated separators are skipped
          ++i;
        } else {
          name = {};
          value = {};
          state = State::field_name;
          found_sep = false;
        }
        break;
      case State::field_name: {
        auto sep = next_sep(i);
        auto eq =
            sep != std::string_view::npos ? data.substr(0, sep).find('=', i) : data.find('=', i);
        if (eq != std::string_view::npos) {
          name = data.substr(i, eq - i);
          i = eq + 1;
          state = State::field_data;
        } else if (sep != std::string_view::npos) {
          name = data.substr(i, sep - i);
          end_field();
          i = sep;
          state = State::before_field;
        } else {
          // A trailing name without '=' never ends its field: it is dropped.
          name = data.substr(i);
          i = n;
        }
        break;
      }
      case State::field_data: {
        auto sep = next_sep(i);
        if (sep != std::string_view::npos) {
          value = data.substr(i, sep - i);
          end_field();
          i = sep;
          state = State::before_field;
        } else {
          value = data.substr(i);
          i = n;
        }
        break;
      }
    }
  }
  if (state == State::field_data) end_field();
  (void)found_sep;
  if (fields.size() > kMaxFormFields) return Err{too_many("fields")};
  return fields;
}

Result<std::vector<FormField>, std::string> parse_multipart(const OptionsHeader& content_type,
                                                            std::string_view body) {
  const std::string* boundary = content_type.param("boundary");
  if (boundary == nullptr) return Err{std::string("Missing boundary in multipart.")};
  if (boundary->empty()) return Err{std::string(kParseError)};
  const std::string* charset = content_type.param("charset");
  const bool utf8 = charset == nullptr || is_utf8_codec(*charset);
  auto decode = [utf8](std::string_view data) {
    return utf8 ? user_safe_decode(data) : latin1_to_utf8(data);
  };
  const std::string delimiter = "--" + *boundary;
  const std::string next_delimiter = "\r\n" + delimiter;

  std::vector<FormField> fields;
  std::size_t files = 0;
  std::size_t non_files = 0;
  if (body.empty()) return fields;  // python-multipart: no data, no parts, no error
  // The body opens with the delimiter and a CRLF (not the closing "--").
  if (body.substr(0, delimiter.size()) != delimiter || body.substr(delimiter.size(), 2) != "\r\n") {
    if (body.size() <= delimiter.size() + 1 &&
        delimiter.substr(0, body.size()) == body.substr(0, delimiter.size())) {
      return fields;  // nothing but (part of) the first delimiter
    }
    return Err{std::string(kParseError)};
  }
  std::size_t pos = delimiter.size() + 2;
  while (true) {
    // A header block, ended by an empty line (immediately, when there are no headers).
    std::size_t headers_end = body.substr(pos, 2) == "\r\n" ? pos : body.find("\r\n\r\n", pos);
    if (headers_end == std::string_view::npos) break;  // truncated: the part is dropped
    std::string disposition;
    bool has_disposition = false;
    std::string_view headers = body.substr(pos, headers_end - pos);
    while (!headers.empty()) {
      auto eol = headers.find("\r\n");
      auto line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view{} : headers.substr(eol + 2);
      auto colon = line.find(':');
      if (colon == std::string_view::npos) return Err{std::string(kParseError)};
      if (lower(line.substr(0, colon)) == "content-disposition") {
        disposition = std::string(strip(line.substr(colon + 1)));
        has_disposition = true;
      }
    }
    pos = headers_end + (headers_end == pos ? 2 : 4);
    auto options = parse_options_header(has_disposition ? disposition : std::string{});
    const std::string* field_name = options.param("name");
    if (field_name == nullptr) {
      return Err{std::string("The Content-Disposition header field \"name\" must be provided.")};
    }
    // Counted when a part's headers end, as Starlette does, whether or not it ends.
    const bool is_file = options.param("filename") != nullptr;
    if (++(is_file ? files : non_files) > kMaxFormFields)
      return Err{too_many(is_file ? "files" : "fields")};
    // The part ends at a delimiter followed by CRLF (another part) or "--" (the end);
    // a delimiter followed by anything else is data, one cut off by the end of the
    // body leaves the part unfinished (dropped).
    std::size_t data_end = pos;
    std::string_view after;
    while (true) {
      data_end = body.find(next_delimiter, data_end);
      if (data_end == std::string_view::npos) break;
      after = body.substr(data_end + next_delimiter.size(), 2);
      if (after == "\r\n" || after == "--" || after.size() < 2) break;
      ++data_end;
    }
    if (data_end == std::string_view::npos || after.size() < 2) break;
    fields.push_back(
        FormField{decode(*field_name), decode(body.substr(pos, data_end - pos)), is_file});
    if (after == "--") break;
    pos = data_end + next_delimiter.size() + 2;
  }
  return fields;
}

Result<FormData, std::string> parse_form(std::string_view content_type, std::string_view body) {
  auto ct = parse_options_header(content_type);
  if (ct.value == "multipart/form-data") {
    auto parts = parse_multipart(ct, body);
    if (!parts) return Err{std::move(parts).error()};
    return FormData(std::move(*parts));
  }
  if (ct.value == "application/x-www-form-urlencoded") {
    auto fields = parse_urlencoded(body);
    if (!fields) return Err{std::move(fields).error()};
    return FormData(std::move(*fields));
  }
  return FormData{};
}

}  // namespace gatehouse::http
