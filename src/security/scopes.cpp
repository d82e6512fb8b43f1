// SecurityScopes and FastAPI's OAuth2PasswordBearer.
#include "gatehouse/security.hpp"

#include "http/text.hpp"

#include <boost/json/array.hpp>

#include <algorithm>
#include <stdexcept>

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

void Binding::set_json_body(Model model, bool required) {
  if (json_body_ || has_form_body()) {
    throw std::logic_error("gatehouse: route " + route_path_ +
                           " declares a second request body (one JsonBody or one form per route)");
  }
  json_body_ = std::move(model);
  json_body_required_ = required;
}

namespace detail {
void merge_validation(std::optional<HttpException>& into, HttpException more) {
  if (!into) {
    into.emplace(std::move(more));
    return;
  }
  auto& dst = into->detail.as_array();
  for (auto& e : more.detail.as_array()) dst.push_back(std::move(e));
}
}  // namespace detail

// FastAPI quirk: get_authorization_scheme_param splits at the first space only, so
// "Bearer" alone yields an empty token and "Bearer  x" the token " x".
std::optional<std::string_view> OAuth2PasswordBearer::extract(
    std::optional<std::string_view> authorization) {
  if (!authorization || authorization->empty()) return std::nullopt;
  auto value = *authorization;
  auto space = value.find(' ');
  auto scheme = value.substr(0, space);
  if (!http::ascii_iequals(scheme, "bearer")) return std::nullopt;
  if (space == std::string_view::npos) return std::string_view{};
  return value.substr(space + 1);
}

OAuth2PasswordBearer::OAuth2PasswordBearer(Options options)
    : Dependency<std::string>([o = std::make_shared<const Options>(std::move(options))](
                                  const SecurityScopes& scopes, Binding& binding) {
        auto info = std::make_shared<SecuritySchemeInfo>();
        info->name = o->scheme_name;
        boost::json::object scope_map;
        for (const auto& [name, text] : o->scopes) scope_map[name] = text;
        boost::json::object password;
        password["scopes"] = std::move(scope_map);
        password["tokenUrl"] = o->token_url;
        boost::json::object flows;
        flows["password"] = std::move(password);
        info->openapi["type"] = "oauth2";
        if (!o->description.empty()) info->openapi["description"] = o->description;
        info->openapi["flows"] = std::move(flows);
        binding.add_security(std::move(info), scopes.scopes());
        return Resolver([auto_error = o->auto_error](RequestContext& ctx) -> Outcome<std::string> {
          auto token = extract(ctx.request().header("Authorization"));
          if (!token) {
            if (!auto_error) return std::string{};
            return Err{HttpException(401, "Not authenticated", {{"WWW-Authenticate", "Bearer"}})};
          }
          // Starlette decodes header values as latin-1; keep the same text (as UTF-8).
          return http::latin1_to_utf8(*token);
        });
      }) {}

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

Dependency<ClientAddress> ClientAddress::dependency() {
  return Dependency<ClientAddress>([](const SecurityScopes&, Binding&) {
    return Dependency<ClientAddress>::Resolver([](RequestContext& ctx) -> Outcome<ClientAddress> {
      return ClientAddress{std::string(ctx.request().client_host())};
    });
  });
}

}  // namespace gatehouse
