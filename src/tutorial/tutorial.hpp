// FastAPI's OAuth2 security tutorial (password flow, JWT, scopes), as a gatehouse app.
#pragma once

#include <memory>

#include "gatehouse/app.hpp"
#include "gatehouse/clients.hpp"
#include "gatehouse/jwt.hpp"
#include "gatehouse/lifecycle.hpp"
#include "gatehouse/password.hpp"
#include "gatehouse/store.hpp"
#include "gatehouse/throttle.hpp"
#include "gatehouse/verifier.hpp"

namespace tutorial {

struct Config {
  std::shared_ptr<gatehouse::UserStore> users;
  std::shared_ptr<const gatehouse::PasswordHasher> passwords;
  // How tokens are checked and made. When unset, FastAPI's defaults are made from
  // secret_key (HS256, no kid, no issuer or audience, access_token_expire_minutes).
  std::shared_ptr<const gatehouse::Verifier> verifier;
  std::shared_ptr<const gatehouse::TokenIssuer> tokens;
  std::shared_ptr<const gatehouse::jwt::Hs256Key> secret_key;
  int access_token_expire_minutes = 30;
  // Set (--refresh-tokens): /token takes grant_type=password or refresh_token, answers
  // RFC 6749 errors, and hands out rotating refresh tokens.
  std::shared_ptr<gatehouse::RefreshTokens> refresh;
  // Set (--revocation, implied by --refresh-tokens): POST /revoke, and every bearer is
  // checked against this deny-list.
  std::shared_ptr<gatehouse::DenyList> deny_list;
  // Set (--clients): /token also takes grant_type=client_credentials from these
  // registered clients (with RFC 6749 error bodies), and POST /introspect answers them.
  std::shared_ptr<gatehouse::ClientRegistry> clients;
  // Strict mode (--strict): /token answers RFC 6749 errors (as with refresh tokens); a
  // requested scope that is unknown or not the user's (or the client's) is refused with
  // invalid_scope instead of being dropped; a disabled user gets no token, and their
  // tokens are refused by /status/ too (400 Inactive user). The verifier's own strict
  // options (canonical base64url, exp required...) are set by whoever builds it.
  bool strict = false;
  // Brute-force throttling of /token (per username and client); nullptr: none.
  std::shared_ptr<gatehouse::LoginThrottle> throttle;
};

// The scopes the tutorial's OAuth2PasswordBearer publishes, in order.
const std::vector<std::pair<std::string, std::string>>& scopes();

// Declares /token, /users/me/, /users/me/items/, /status/ and /items/ on `app`
// (and /revoke with a deny-list).
void install(gatehouse::App& app, const Config& config);

}  // namespace tutorial
