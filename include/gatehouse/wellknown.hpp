// The discovery documents other programs read: the JWK Set (RFC 7517 §5) with the
// public halves of the keys that verify, and the authorization server metadata
// (RFC 8414). Both are ordinary routes of an App, so they appear in /openapi.json and
// Swagger UI when (and only when) they are installed.
#pragma once

#include <boost/json/object.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gatehouse/app.hpp"
#include "gatehouse/keys.hpp"

namespace gatehouse {

struct JwksOptions {
  std::string path = "/.well-known/jwks.json";
  // Cache-Control max-age, seconds. A client that meets an unknown kid fetches again
  // (PyJWT's PyJWKClient and jose's createRemoteJWKSet do), so a new key is found at
  // once; a retired key stays in caches at most this long.
  int max_age_seconds = 300;
  std::function<std::int64_t()> clock;  // default: the system clock
};

// GET /.well-known/jwks.json: {"keys":[...]} with the public JWK of every key that
// verifies now (never a private part, never an HS256 secret), and Cache-Control.
Route& install_jwks(App& app, std::shared_ptr<KeySource> keys, JwksOptions options = {});

// RFC 8414 §2 authorization server metadata. Fill in what is enabled; empty lists and
// unset values are left out of the document (except response_types_supported, which
// RFC 8414 requires: empty when there is no authorization endpoint).
struct AuthorizationServerMetadata {
  std::string issuer;  // an https URL (http for local testing); no query or fragment
  std::string token_endpoint;
  std::optional<std::string> jwks_uri;
  std::vector<std::string> scopes_supported;
  std::vector<std::string> response_types_supported;
  std::vector<std::string> grant_types_supported;
  std::vector<std::string> token_endpoint_auth_methods_supported;
  // Not registered by RFC 8414 (§2 allows more members): the JWS algorithms access
  // tokens are signed with.
  std::vector<std::string> access_token_signing_alg_values_supported;
  // Further members (revocation_endpoint, introspection_endpoint, ...), added as they are.
  boost::json::object extra;

  [[nodiscard]] boost::json::object to_json() const;
};

// Where RFC 8414 §3.1 puts the metadata of `issuer`: /.well-known/oauth-authorization-server
// followed by the issuer's path, if it has one.
std::string metadata_path(const std::string& issuer);

// GET <metadata_path(issuer)>: the metadata as JSON.
Route& install_metadata(App& app, AuthorizationServerMetadata metadata);

}  // namespace gatehouse
