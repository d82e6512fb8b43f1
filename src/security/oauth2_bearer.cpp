// FastAPI's OAuth2PasswordBearer: the OpenAPI security scheme and the dependency that
// takes the bearer token from the Authorization header.
#include <boost/json/object.hpp>

#include "gatehouse/oauth2.hpp"
#include "http/text.hpp"

namespace gatehouse {

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

}  // namespace gatehouse
