// /.well-known/jwks.json and /.well-known/oauth-authorization-server, declared with
// the public App API like any other route.
#include "gatehouse/wellknown.hpp"

#include <stdexcept>

#include "gatehouse/jwt.hpp"

namespace gatehouse {

namespace {

boost::json::array strings(const std::vector<std::string>& v) {
  boost::json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

}  // namespace

Route& install_jwks(App& app, std::shared_ptr<KeySource> keys, JwksOptions options) {
  if (!keys) throw std::invalid_argument("install_jwks needs a key source");
  auto clock = options.clock ? options.clock : std::function<std::int64_t()>(jwt::now_seconds);
  const std::string cache = "public, max-age=" + std::to_string(options.max_age_seconds);
  return app.get(
      options.path, {.name = "jwks", .summary = "JSON Web Key Set"},
      [keys = std::move(keys), clock, cache]() {
        return Response::json(200, keys->keys()->jwks(clock()), {{"Cache-Control", cache}});
      });
}

boost::json::object AuthorizationServerMetadata::to_json() const {
  boost::json::object o;
  o["issuer"] = issuer;
  o["token_endpoint"] = token_endpoint;
  if (jwks_uri) o["jwks_uri"] = *jwks_uri;
  if (!scopes_supported.empty()) o["scopes_supported"] = strings(scopes_supported);
  o["response_types_supported"] = strings(response_types_supported);
  if (!grant_types_supported.empty()) o["grant_types_supported"] = strings(grant_types_supported);
  if (!token_endpoint_auth_methods_supported.empty()) {
    o["token_endpoint_auth_methods_supported"] = strings(token_endpoint_auth_methods_supported);
  }
  if (!access_token_signing_alg_values_supported.empty()) {
    o["access_token_signing_alg_values_supported"] =
        strings(access_token_signing_alg_values_supported);
  }
  for (const auto& kv : extra) o[kv.key()] = kv.value();
  return o;
}

std::string metadata_path(const std::string& issuer) {
  std::string path = "/.well-known/oauth-authorization-server";
  const auto scheme = issuer.find("://");
  if (scheme == std::string::npos) return path;
  const auto slash = issuer.find('/', scheme + 3);
  if (slash == std::string::npos) return path;
  std::string rest = issuer.substr(slash);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  return path + rest;
}

Route& install_metadata(App& app, AuthorizationServerMetadata metadata) {
  const auto path = metadata_path(metadata.issuer);
  auto body = std::make_shared<const boost::json::value>(metadata.to_json());
  return app.get(path,
                 {.name = "authorization_server_metadata",
                  .summary = "OAuth 2.0 Authorization Server Metadata"},
                 [body]() { return Response::json(200, *body); });
}

}  // namespace gatehouse
