// PostgreSQL URLs without their password (see postgres_url.hpp), and libpq's verdict on
// a URL for --config-check (store.hpp).
#include "store/postgres_url.hpp"

#include <string>
#include <string_view>

#include "gatehouse/store.hpp"
#include "store/libpq.hpp"

namespace gatehouse::pg {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

Redactor::Redactor(std::string_view url) {
  for (std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (url.substr(0, scheme.size()) == scheme) {
      safe_ = redact_uri(url, scheme.size());
      return;
    }
  }
  safe_ = redact_keywords(url);
}

void Redactor::add_secret(const std::string& password) {
  if (!password.empty()) secrets_.push_back(password);
}

std::string Redactor::scrub(std::string text) const {
  for (const auto& secret : secrets_) {
    if (secret.empty()) continue;
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3)) {
      text.replace(pos, secret.size(), "***");
    }
  }
  return text;
}

void Redactor::keep_secret(std::string_view raw) {
  if (raw.empty()) return;
  secrets_.emplace_back(raw);
  secrets_.push_back(percent_decode(raw));
}

std::string Redactor::redact_uri(std::string_view url, std::size_t start) {
  std::string out(url.substr(0, start));
  std::size_t rest = start;
  const std::size_t stop = url.find_first_of("@/", start);
  if (stop != std::string_view::npos && url[stop] == '@') {
    std::string_view userinfo = url.substr(start, stop - start);
    const std::size_t colon = userinfo.find(':');
    if (colon != std::string_view::npos) {
      keep_secret(userinfo.substr(colon + 1));
      userinfo = userinfo.substr(0, colon);
    }
    out.append(userinfo).push_back('@');
    rest = stop + 1;
  }
  const std::size_t query = url.find('?', rest);
  out.append(url.substr(rest, query == std::string_view::npos ? url.npos : query - rest));
  if (query == std::string_view::npos) return out;
  char sep = '?';
  std::string_view params = url.substr(query + 1);
  while (true) {
    const std::size_t amp = params.find('&');
    const std::string_view param = params.substr(0, amp);
    const std::size_t eq = param.find('=');
    if (percent_decode(param.substr(0, eq)) == "password") {
      if (eq != std::string_view::npos) keep_secret(param.substr(eq + 1));
    } else if (!param.empty()) {
      out.push_back(sep);
      out.append(param);
      sep = '&';
    }
    if (amp == std::string_view::npos) break;
    params = params.substr(amp + 1);
  }
  return out;
}

std::string Redactor::redact_keywords(std::string_view s) {
  std::string out;
  std::size_t i = 0;
  auto space = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  };
  while (true) {
    space();
    if (i >= s.size()) break;
    const std::size_t key_start = i;
    while (i < s.size() && s[i] != '=' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n') ++i;
    const std::string_view key = s.substr(key_start, i - key_start);
    space();
    if (i < s.size() && s[i] == '=') ++i;
    space();
    const std::size_t value_start = i;
    std::string value;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      while (i < s.size() && s[i] != '\'') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        value.push_back(s[i++]);
      }
      if (i < s.size()) ++i;
    } else {
      while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        value.push_back(s[i++]);
      }
    }
    if (key == "password") {
      keep_secret(s.substr(value_start, i - value_start));
      secrets_.push_back(value);
      continue;
    }
    if (!out.empty()) out.push_back(' ');
    out.append(key).push_back('=');
    out.append(s.substr(value_start, i - value_start));
  }
  return out;
}

}  // namespace gatehouse::pg

namespace gatehouse {

std::string redact_postgres_url(std::string_view url) { return pg::Redactor(url).safe_url(); }

std::string postgres_url_problem(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = pg::pq().PQconninfoParse(url.c_str(), &error);
  if (options != nullptr) {
    pg::pq().PQconninfoFree(options);
    return {};
  }
  std::string text = error != nullptr ? pg::trimmed(error) : "out of memory";
  if (error != nullptr) pg::pq().PQfreemem(error);
  return pg::Redactor(url).scrub(text);
}

}  // namespace gatehouse
