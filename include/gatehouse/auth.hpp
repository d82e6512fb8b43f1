// Ready dependencies on the Verifier: the bearer's verified claims, and the current
// user through a user loader. With them a protected route is one declaration:
//
//   OAuth2PasswordBearer scheme({.token_url = "token", .scopes = {{"me", "Read me."}}});
//   auto claims = bearer_claims(verifier, scheme);
//   app.get("/me", {.name = "me"}, [](const VerifiedToken& t) { ... }, Security(claims, {"me"}));
//
// Every failure is answered through to_http_exception(), so the answers are FastAPI's:
// 401 "Not authenticated" without a bearer, 401 "Could not validate credentials" for a
// bad token or an unknown user, 401 "Not enough permissions" for a missing scope (both
// with `WWW-Authenticate: Bearer scope="<the scopes the chain requires>"`), 400
// "Inactive user" from active_user().
//
// Revoked tokens: give the verifier a revocation list once (VerifierOptions::revocations,
// e.g. the DenyList of lifecycle.hpp that /revoke fills) and every dependency here refuses
// a revoked token with the same 401 "Could not validate credentials".
#pragma once

#include <functional>
#include <memory>
#include <string_view>
#include <utility>

#include "gatehouse/security.hpp"
#include "gatehouse/verifier.hpp"

namespace gatehouse {

// The verified token of the request's bearer, holding every scope that the chain of
// requirements from the route down to here asks for.
inline Dependency<VerifiedToken> bearer_claims(std::shared_ptr<const Verifier> verifier,
                                               const OAuth2PasswordBearer& scheme) {
  return dependency<VerifiedToken>(
      [verifier = std::move(verifier)](const SecurityScopes& scopes,
                                       const std::string& token) -> Outcome<VerifiedToken> {
        auto verified = verifier->verify(token);
        if (!verified) return Err{to_http_exception(verified.error(), scopes)};
        if (auto missing = Verifier::check_scopes(*verified, scopes)) {
          return Err{to_http_exception(*missing, scopes)};
        }
        return std::move(*verified);
      },
      Depends(scheme));
}

// Finds the user a verified token's `sub` names; nullptr when there is none. Called
// once per request that needs the user, on the request's thread.
template <class U>
using UserLoader = std::function<std::shared_ptr<const U>(const VerifiedToken&)>;

// The current user, in FastAPI's tutorial order: verify the token, load its user
// (unknown: 401 "Could not validate credentials"), then check the scopes the chain
// requires (401 "Not enough permissions").
template <class U>
Dependency<std::shared_ptr<const U>> current_user(std::shared_ptr<const Verifier> verifier,
                                                  const OAuth2PasswordBearer& scheme,
                                                  UserLoader<U> load) {
  using Ptr = std::shared_ptr<const U>;
  return dependency<Ptr>(
      [verifier = std::move(verifier), load = std::move(load)](
          const SecurityScopes& scopes, RequestContext& ctx,
          const std::string& token) -> Outcome<Ptr> {
        auto verified = verifier->verify_shared(token);
        if (!verified) return Err{to_http_exception(verified.error(), scopes)};
        const VerifiedToken& claims = **verified;
        Ptr user = load(claims);
        if (!user) return Err{to_http_exception(Failure::unknown_user, scopes)};
        ctx.request().set_log_user(claims.subject);  // the access log's "user"
        if (auto missing = Verifier::check_scopes(claims, scopes)) {
          return Err{to_http_exception(*missing, scopes)};
        }
        return user;
      },
      Depends(scheme));
}

// The user of `requirement` (e.g. Security(current_user_dep, {"me"})) if `is_active`
// says so; otherwise 400 "Inactive user".
template <class U>
Dependency<std::shared_ptr<const U>> active_user(Requirement<std::shared_ptr<const U>> requirement,
                                                 std::function<bool(const U&)> is_active) {
  using Ptr = std::shared_ptr<const U>;
  return dependency<Ptr>(
      [is_active = std::move(is_active)](const Ptr& user) -> Outcome<Ptr> {
        if (!is_active(*user)) return Err{to_http_exception(Failure::inactive_user, {})};
        return user;
      },
      std::move(requirement));
}

}  // namespace gatehouse
