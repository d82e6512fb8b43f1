// Users exported from a FastAPI app, from JSON or CSV text.
#include "importer.hpp"

#include <boost/json.hpp>

#include <cctype>
#include <fstream>
#include <optional>
#include <sstream>

namespace gatehouse::tools {

std::vector<User> parse_import(std::string_view text_view, const std::string& source) {
  const std::string text(text_view);
  std::vector<User> users;
  auto first = text.find_first_not_of(" \t\r\n");
  auto truthy = [](std::string v) {
    for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v == "1" || v == "true" || v == "yes";
  };
  if (first != std::string::npos && (text[first] == '[' || text[first] == '{')) {
    boost::system::error_code ec;
    auto doc = boost::json::parse(text, ec);
    if (ec) throw ImportError(source + ": not valid JSON: " + ec.message());
    // Either a list of users or the tutorial's dict {username: {...}}.
    std::vector<boost::json::value> items;
    if (doc.is_array()) {
      for (auto& v : doc.as_array()) items.push_back(v);
    } else {
      for (auto& kv : doc.as_object()) items.push_back(kv.value());
    }
    for (auto& v : items) {
      if (!v.is_object()) throw ImportError(source + ": each user must be a JSON object");
      const auto& o = v.as_object();
      auto str = [&](const char* k) -> std::optional<std::string> {
        auto* p = o.if_contains(k);
        if (p == nullptr || p->is_null()) return std::nullopt;
        if (!p->is_string()) throw ImportError(source + ": " + k + " must be a string");
        return std::string(p->as_string());
      };
      User u;
      u.username = str("username").value_or("");
      u.hashed_password = str("hashed_password").value_or("");
      u.email = str("email");
      u.full_name = str("full_name");
      if (auto* d = o.if_contains("disabled"); d != nullptr && d->is_bool())
        u.disabled = d->as_bool();
      users.push_back(std::move(u));
    }
  } else {
    std::istringstream lines(text);
    std::string line;
    std::vector<std::string> header;
    auto split = [](const std::string& l) {
      std::vector<std::string> out;
      std::string cur;
      bool quoted = false;
      for (std::size_t i = 0; i < l.size(); ++i) {
        char c = l[i];
        if (quoted) {
          if (c == '"' && i + 1 < l.size() && l[i + 1] == '"') {
            cur += '"';
            ++i;
          } else if (c == '"') {
            quoted = false;
          } else {
            cur += c;
          }
        } else if (c == '"') {
          quoted = true;
        } else if (c == ',') {
          out.push_back(cur);
          cur.clear();
        } else if (c != '\r') {
          cur += c;
        }
      }
      out.push_back(cur);
      return out;
    };
    while (std::getline(lines, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto cells = split(line);
      if (header.empty()) {
        header = cells;
        continue;
      }
      User u;
      for (std::size_t i = 0; i < header.size() && i < cells.size(); ++i) {
        const auto& h = header[i];
        if (h == "username") u.username = cells[i];
        if (h == "hashed_password") u.hashed_password = cells[i];
        if (h == "email" && !cells[i].empty()) u.email = cells[i];
        if (h == "full_name" && !cells[i].empty()) u.full_name = cells[i];
        if (h == "disabled") u.disabled = truthy(cells[i]);
      }
      users.push_back(std::move(u));
    }
  }
  for (const auto& u : users) {
    if (u.username.empty() || u.hashed_password.empty()) {
      throw ImportError(source + ": every user needs username and hashed_password");
    }
    const auto& h = u.hashed_password;
    if (h.rfind("$2a$", 0) != 0 && h.rfind("$2b$", 0) != 0 && h.rfind("$2y$", 0) != 0 &&
        h.rfind("$argon2id$", 0) != 0 && h.rfind("$argon2i$", 0) != 0) {
      throw ImportError(source + ": " + u.username +
                        ": unsupported hash (bcrypt or argon2 expected)");
    }
  }
  return users;
}

std::vector<User> read_import_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ImportError("cannot read " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_import(buf.str(), path);
}

}  // namespace gatehouse::tools
