// FastAPI's security tutorial (advanced/security/oauth2-scopes, with the oauth2-jwt
// page's 401 for a failed login), written only with gatehouse's public API. Read it
// beside ../shared/reference/app.py: the same dependencies, in the same order.
#include "tutorial.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gatehouse/auth.hpp"
#include "gatehouse/models.hpp"
#include "gatehouse/security.hpp"

namespace tutorial {

using gatehouse::Depends;
using gatehouse::Err;
using gatehouse::HttpException;
using gatehouse::Outcome;
using gatehouse::Security;
using gatehouse::SecurityScopes;
using gatehouse::UserPtr;
namespace json = boost::json;

// FastAPI's User model, declared once: /users/me/'s answer (its JSON encoding) and its
// schema in /openapi.json both come from this.
struct User {
  std::string username;
  std::optional<std::string> email;
  std::optional<std::string> full_name;
  std::optional<bool> disabled;
};
GATEHOUSE_MODEL(User, username, email, full_name, disabled)

const std::vector<std::pair<std::string, std::string>>& scopes() {
  static const std::vector<std::pair<std::string, std::string>> kScopes{
      {"me", "Read information about the current user."}, {"items", "Read items."}};
  return kScopes;
}

// /token with refresh tokens (RFC 6749 §4.3 and §6): the password grant as the
// tutorial's, plus grant_type=refresh_token; errors as RFC 6749 §5.2 says.
template <class Authenticate, class Precheck, class Deadline>
void install_refresh_token_endpoint(gatehouse::App& app, const Config& config,
                                    std::shared_ptr<const gatehouse::TokenIssuer> tokens,
                                    Authenticate authenticate_user, Precheck throttled,
                                    Deadline failure_deadline) {
  using gatehouse::oauth_error;
  auto users = config.users;
  auto throttle = config.throttle;
  auto refresh = config.refresh;
  auto clients = config.clients;
  // Tokens by grant and client in /metrics; the fixed series are looked up once.
  std::shared_ptr<gatehouse::Metrics> metrics = app.metrics();
  gatehouse::Counter* password_tokens = &metrics->tokens_issued("password");
  gatehouse::Counter* refresh_tokens = &metrics->tokens_issued("refresh_token");
  gatehouse::Counter* rotated = &metrics->tokens_refreshed("rotated");
  gatehouse::Counter* replayed = &metrics->tokens_refreshed("replayed");
  gatehouse::Counter* reused = &metrics->tokens_refreshed("reused");
  const bool strict = config.strict;
  // Strict mode: every requested scope must be one the server knows.
  auto known_scope = [](const std::string& s) {
    const auto& all = scopes();
    return std::any_of(all.begin(), all.end(), [&](const auto& kv) { return kv.first == s; });
  };
  const gatehouse::Model Token{"Token",
                               {{"access_token", "string", true},
                                {"token_type", "string", true},
                                {"expires_in", "integer"},
                                {"refresh_token", "string"},
                                {"scope", "string"}}};
  auto join = [](const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
      if (!out.empty()) out += ' ';
      out += w;
    }
    return out;
  };
  const gatehouse::App* owner = &app;  // outlives every request; its logger may change
  // Only what needs a worker thread goes to the pool: the password grant (a hash) and a
  // refresh whose store round trips block (PostgreSQL). client_credentials (one HMAC,
  // one signature) and a refresh on a store that commits in batches (one short SQLite
  // read here, the commit on the committer's thread) are answered from the I/O thread,
  // so they never queue behind logins. RS256 signs slowly (~1 ms): those stay pooled.
  auto offload_if = [refresh, tokens](gatehouse::RequestContext& ctx) {
    const auto* grant = ctx.form().get("grant_type");
    if (grant == nullptr || grant->is_file) return true;
    const bool light =
        grant->value == "client_credentials" ||
        (grant->value == "refresh_token" && refresh && refresh->commits_in_batches());
    if (!light) return true;
    const auto alg = tokens->signing_alg();
    return !alg || *alg == gatehouse::Alg::RS256;
  };
  app.post(
      "/token",
      {.name = "login_for_access_token",
       .response_model = Token,
       .offload = true,
       .precheck = throttled,
       .offload_if = offload_if},
      [=](gatehouse::RequestContext& ctx, const gatehouse::TokenRequest& req,
          const gatehouse::ClientAddress& client) -> gatehouse::Response {
        auto sign_access = [tokens](const std::string& username,
                                    const std::vector<std::string>& scopes) {
          json::array granted;
          for (const auto& s : scopes) granted.emplace_back(s);
          // No client authenticated on these grants, so the token names none: a client_id
          // sent in the form is the caller's word only.
          return tokens->issue({{"sub", username}, {"scopes", std::move(granted)}});
        };
        // By value: a rotation's answer is completed on the committing thread (with an
        // access token signed before, so no signature runs there).
        auto answer_with = [tokens, join](const std::string& access_token,
                                          const std::vector<std::string>& scopes,
                                          const std::optional<std::string>& refresh_token) {
          json::object body{{"access_token", access_token},
                            {"token_type", "bearer"},
                            {"expires_in", tokens->options().lifetime_seconds}};
          if (refresh_token) body["refresh_token"] = *refresh_token;
          if (!scopes.empty()) body["scope"] = join(scopes);
          return gatehouse::Response::json(200, body,
                                           {{"Cache-Control", "no-store"}, {"Pragma", "no-cache"}});
        };
        auto answer = [&](const std::string& username, const std::vector<std::string>& scopes,
                          const std::optional<std::string>& refresh_token) {
          return answer_with(sign_access(username, scopes), scopes, refresh_token);
        };
        if (!req.grant_type) return oauth_error("invalid_request", "grant_type is required");
        if (*req.grant_type == "client_credentials" && clients) {
          // RFC 6749 §4.4: the client authenticates (§2.3.1), no user, no refresh token.
          auto auth = gatehouse::authenticate_client(ctx, *clients);
          if (!auth.client) return gatehouse::invalid_client(auth);
          const auto& registered = *auth.client;
          if (!registered.allows_grant("client_credentials")) {
            return oauth_error("unauthorized_client",
                               "This client may not use the client_credentials grant");
          }
          // Narrowed to the client's scopes; none requested: all of them.
          std::vector<std::string> granted;
          if (!req.scopes) {
            granted = registered.scopes;
          } else {
            for (const auto& s : *req.scopes) {
              const bool allowed = std::find(registered.scopes.begin(), registered.scopes.end(),
                                             s) != registered.scopes.end();
              if (!allowed && strict) {
                return oauth_error("invalid_scope",
                                   "A requested scope is not allowed for this client");
              }
              if (allowed && std::find(granted.begin(), granted.end(), s) == granted.end()) {
                granted.push_back(s);
              }
            }
            if (granted.empty() && !req.scopes->empty()) {
              return oauth_error("invalid_scope", "None of the requested scopes is allowed");
            }
          }
          json::array scopes_claim;
          for (const auto& s : granted) scopes_claim.emplace_back(s);
          auto access_token = tokens->issue({{"sub", registered.id},
                                             {"scopes", std::move(scopes_claim)},
                                             {"client_id", registered.id},
                                             {"gty", "client_credentials"}},
                                            registered.id);
          metrics->tokens_issued("client_credentials", registered.id).inc();
          json::object body{{"access_token", access_token},
                            {"token_type", "bearer"},
                            {"expires_in", tokens->options().lifetime_seconds}};
          if (!granted.empty()) body["scope"] = join(granted);
          return gatehouse::Response::json(200, body,
                                           {{"Cache-Control", "no-store"}, {"Pragma", "no-cache"}});
        }
        if (*req.grant_type == "password") {
          if (!req.username || !req.password) {
            return oauth_error("invalid_request", "username and password are required");
          }
          const auto started = std::chrono::steady_clock::now();
          UserPtr user = authenticate_user(*req.username, *req.password);
          if (!user) {
            if (throttle) throttle->failed(*req.username, client.host);
            ctx.respond_not_before(failure_deadline(started));
            return oauth_error("invalid_grant", "Incorrect username or password");
          }
          if (throttle) throttle->succeeded(*req.username);
          // Strict mode: a disabled user gets no token (the tutorial hands one out).
          if (strict && user->disabled) {
            return oauth_error("invalid_grant", "The user is disabled");
          }
          std::vector<std::string> granted;
          for (const auto& s : req.scopes.value_or(std::vector<std::string>{})) {
            const bool held =
                user->scopes.empty() ||
                std::find(user->scopes.begin(), user->scopes.end(), s) != user->scopes.end();
            // Strict mode: refused (RFC 6749 §5.2), not silently dropped or granted.
            if (strict && (!held || !known_scope(s))) {
              return oauth_error("invalid_scope",
                                 "A requested scope is unknown or not granted to this user");
            }
            if (held) granted.push_back(s);
          }
          std::optional<std::string> refresh_token;
          if (refresh) refresh_token = refresh->issue(user->username, join(granted));
          password_tokens->inc();
          return answer(user->username, granted, refresh_token);
        }
        if (*req.grant_type == "refresh_token" && refresh) {
          if (!req.refresh_token) {
            return oauth_error("invalid_request", "refresh_token is required");
          }
          auto record = refresh->find(*req.refresh_token);
          if (!record) {
            return oauth_error("invalid_grant", "The refresh token is invalid, expired or revoked");
          }
          const auto held = gatehouse::split_scopes(record->scope);
          std::vector<std::string> scopes = held;
          if (req.scopes) {  // may narrow, never widen (RFC 6749 §6)
            scopes = *req.scopes;
            for (const auto& s : scopes) {
              if (std::find(held.begin(), held.end(), s) == held.end()) {
                return oauth_error("invalid_scope",
                                   "The requested scope exceeds the scope granted at login");
              }
            }
          }
          UserPtr user = users->find(record->username);
          if (!user || user->disabled) {
            return oauth_error("invalid_grant", "The user is disabled or no longer exists");
          }
          // Answered once the rotation is committed (on SQLite, together with the
          // rotations that arrived meanwhile: one disk flush for all; see
          // RefreshTokens::rotate_later). This thread goes back to the pool.
          auto later = std::make_shared<gatehouse::Later>();
          refresh->rotate_later(
              *req.refresh_token, join(scopes),
              [later, answer_with, access_token = sign_access(user->username, scopes), owner,
               scopes, rotated, replayed, reused, refresh_tokens, username = user->username,
               request_id = std::string(ctx.request().request_id())](
                  gatehouse::RefreshTokens::Rotation rotation, std::exception_ptr error) {
                auto fail = [&](std::string_view what) {
                  owner->logger()->event(gatehouse::LogLevel::error, "handler_error",
                                         {{"request_id", request_id},
                                          {"method", "POST"},
                                          {"route", "/token"},
                                          {"error", what}});
                  later->complete(HttpException(500, "Internal Server Error").to_response());
                };
                try {
                  if (error) std::rethrow_exception(error);
                  switch (rotation.status) {
                    case gatehouse::RotateStatus::rotated:
                    case gatehouse::RotateStatus::replayed:
                      (rotation.status == gatehouse::RotateStatus::rotated ? rotated : replayed)
                          ->inc();
                      refresh_tokens->inc();
                      return later->complete(answer_with(access_token, scopes, rotation.token));
                    case gatehouse::RotateStatus::reused:
                      reused->inc();
                      return later->complete(
                          oauth_error("invalid_grant",
                                      "The refresh token was used already; its login is revoked"));
                    case gatehouse::RotateStatus::unknown:
                      break;
                  }
                  later->complete(oauth_error("invalid_grant",
                                              "The refresh token is invalid, expired or revoked"));
                } catch (const std::exception& e) {
                  fail(e.what());
                } catch (...) {
                  fail("unknown error");
                }
              });
          return gatehouse::Response::deferred(std::move(later));
        }
        std::string supported = "grant_type must be password";
        if (refresh) supported += refresh && clients ? ", refresh_token" : " or refresh_token";
        if (clients) supported += " or client_credentials";
        return oauth_error("unsupported_grant_type", supported);
      },
      Depends(gatehouse::TokenRequest::dependency()),
      Depends(gatehouse::ClientAddress::dependency()));
}

void install(gatehouse::App& app, const Config& config) {
  auto users = config.users;
  auto passwords = config.passwords;
  // SECRET_KEY, ALGORITHM and ACCESS_TOKEN_EXPIRE_MINUTES, as one verifier and one issuer.
  auto verifier = config.verifier;
  auto tokens = config.tokens;
  if (!verifier || !tokens) {
    auto keys = gatehouse::StaticKeys::hs256(config.secret_key);
    if (!verifier)
      verifier = std::make_shared<const gatehouse::Verifier>(gatehouse::VerifierOptions{}, keys);
    if (!tokens) {
      tokens = std::make_shared<const gatehouse::TokenIssuer>(
          gatehouse::TokenIssuerOptions{.lifetime_seconds =
                                            std::int64_t{config.access_token_expire_minutes} * 60},
          keys);
    }
  }

  // Logins by outcome and tokens issued, in /metrics (cheap: one atomic add each).
  std::shared_ptr<gatehouse::Metrics> metrics = app.metrics();
  gatehouse::Counter& password_tokens = metrics->tokens_issued("password");

  // ---- models (their names show up in /openapi.json) ----
  const gatehouse::Model Token{"Token",
                               {{"access_token", "string", true}, {"token_type", "string", true}}};
  // ---- helpers ----
  // A name longer than this is never looked up (no store has one; a 60 KiB name must
  // not cost a query or a cache entry): it fails like any unknown name.
  constexpr std::size_t kMaxUsernameBytes = 1024;
  auto authenticate_user = [users, passwords, metrics](const std::string& username,
                                                       const std::string& password) -> UserPtr {
    UserPtr user = username.size() <= kMaxUsernameBytes ? users->find(username) : nullptr;
    if (!user) {
      passwords->dummy_verify(password);  // the same work as for a known user
      metrics->login(gatehouse::LoginOutcome::unknown_user);
      return nullptr;
    }
    const auto verify_started = std::chrono::steady_clock::now();
    const bool ok = passwords->verify(password, user->hashed_password);
    // A hash with parameters not timed yet (made since start-up) raises the floor.
    passwords->note_verify(password, user->hashed_password,
                           std::chrono::steady_clock::now() - verify_started);
    if (!ok) {
      metrics->login(gatehouse::LoginOutcome::wrong_password);
      return nullptr;
    }
    metrics->login(user->disabled ? gatehouse::LoginOutcome::inactive
                                  : gatehouse::LoginOutcome::ok);
    if (passwords->needs_rehash(user->hashed_password)) {
      users->replace_password_hash(user->username, user->hashed_password,
                                   passwords->hash(password));
    }
    return user;
  };
  // Every failed login is answered failure_floor() after it started: at least the
  // costliest verification the store's hashes can need. The floor is measured once,
  // at the first failure, over the hash parameters in the store, read a page at a
  // time (a store of millions of users is never held in memory at once).
  auto calibrated = std::make_shared<std::once_flag>();
  auto failure_deadline = [users, passwords, calibrated](std::chrono::steady_clock::time_point t) {
    std::call_once(*calibrated, [&] {
      constexpr std::size_t kPage = 1000;
      std::string after;
      for (;;) {
        auto page = users->list_page(after, kPage);
        if (page.empty()) break;
        after = page.back().username;
        std::vector<std::string> hashes;
        hashes.reserve(page.size());
        for (auto& u : page) hashes.push_back(std::move(u.hashed_password));
        passwords->calibrate(hashes);
        if (page.size() < kPage) break;
      }
      if (after.empty()) passwords->calibrate({});
    });
    return passwords->failure_deadline(t);
  };
  auto throttle = config.throttle;

  // data + exp (and, with an issuer or audience, the RFC 9068 claims), signed.
  auto create_access_token = [tokens](json::object data,
                                      const std::optional<std::string>& client_id) {
    return tokens->issue(std::move(data), client_id);
  };

  // ---- security dependencies ----
  gatehouse::OAuth2PasswordBearer oauth2_scheme({.token_url = "token", .scopes = scopes()});

  // Decode the token, find its user, check the scopes the route asks for: the
  // library's ready dependency, with the store as the user loader.
  auto get_current_user = gatehouse::current_user<gatehouse::User>(
      verifier, oauth2_scheme,
      [users, deny_list = config.deny_list, checked = verifier->options().revocations](
          const gatehouse::VerifiedToken& token) -> UserPtr {
        // A revoked token is refused as an unknown one is: "Could not validate credentials"
        // (by the verifier itself when the deny-list is its revocation list).
        if (deny_list && deny_list != checked && deny_list->denied(token)) return nullptr;
        // A client_credentials token names a client, never a user, even when a user
        // has the same name as the client.
        if (token.claims.contains("gty")) return nullptr;
        return users->find(token.subject);
      });

  auto get_current_active_user = gatehouse::active_user<gatehouse::User>(
      Security(get_current_user, {"me"}),
      [](const gatehouse::User& current_user) { return !current_user.disabled; });

  // ---- routes ----
  // A throttled login is refused before it reaches the hashing pool: at once, and
  // without computing any hash.
  std::function<std::optional<gatehouse::Response>(gatehouse::RequestContext&)> throttled;
  if (throttle) {
    throttled = [throttle,
                 metrics](gatehouse::RequestContext& ctx) -> std::optional<gatehouse::Response> {
      const auto* username = ctx.form().get("username");
      if (username == nullptr || username->is_file || username->value.empty()) {
        return std::nullopt;  // the handler answers 422
      }
      const auto wait = throttle->retry_after(username->value, ctx.request().client_host());
      if (wait.count() == 0) return std::nullopt;
      metrics->login(gatehouse::LoginOutcome::throttled);
      return HttpException(429, "Too many failed login attempts, try again later",
                           {{"Retry-After", std::to_string(wait.count())}})
          .to_response();
    };
  }
  if (config.refresh || config.clients || config.strict) {
    install_refresh_token_endpoint(app, config, tokens, authenticate_user, throttled,
                                   failure_deadline);
  }
  if (config.deny_list) {
    gatehouse::install_revoke(app, verifier, config.deny_list, config.refresh, config.clients);
  }
  if (config.clients) {
    gatehouse::install_introspect(app, config.clients, verifier, config.deny_list, config.refresh,
                                  users);
  }
  if (!config.refresh && !config.clients && !config.strict)
    app.post(
        "/token",
        {.name = "login_for_access_token",
         .response_model = Token,
         .offload = true,
         .precheck = throttled},
        [=, &password_tokens](gatehouse::RequestContext& ctx,
                              const gatehouse::OAuth2PasswordRequestForm& form_data,
                              const gatehouse::ClientAddress& client) -> Outcome<json::value> {
          const auto started = std::chrono::steady_clock::now();
          UserPtr user = authenticate_user(form_data.username, form_data.password);
          if (!user) {
            if (throttle) throttle->failed(form_data.username, client.host);
            // Held on a timer, not in this hashing thread: see docs/DECISIONS.md.
            ctx.respond_not_before(failure_deadline(started));
            return Err{HttpException(401, "Incorrect username or password",
                                     {{"WWW-Authenticate", "Bearer"}})};
          }
          if (throttle) throttle->succeeded(form_data.username);
          ctx.request().set_log_user(user->username);  // the access log's "user"
          // A user with a list of allowed scopes gets only those of the requested ones;
          // one without (the demo users, imported users) gets what it asks for, as in
          // FastAPI's tutorial.
          json::array granted;
          for (const auto& s : form_data.scopes) {
            if (user->scopes.empty() ||
                std::find(user->scopes.begin(), user->scopes.end(), s) != user->scopes.end()) {
              granted.emplace_back(s);
            }
          }
          // The form's client_id is unauthenticated here: it never reaches the token.
          auto access_token =
              create_access_token({{"sub", user->username}, {"scopes", std::move(granted)}}, {});
          password_tokens.inc();
          return json::value{{"access_token", access_token}, {"token_type", "bearer"}};
        },
        Depends(gatehouse::OAuth2PasswordRequestForm::dependency()),
        Depends(gatehouse::ClientAddress::dependency()));

  app.get(
      "/users/me/", {.name = "read_users_me", .response_model = gatehouse::model_of<User>()},
      [](const UserPtr& current_user) {
        const gatehouse::User& u = *current_user;
        return User{u.username, u.email, u.full_name, u.disabled};
      },
      Depends(get_current_active_user));

  app.get(
      "/users/me/items/", {.name = "read_own_items"},
      [](const UserPtr& current_user) {
        return json::value(
            json::array{json::object{{"item_id", "Foo"}, {"owner", current_user->username}}});
      },
      Security(get_current_active_user, {"items"}));

  if (config.strict) {
    // Strict mode: a disabled user's tokens stop working here too.
    app.get(
        "/status/", {.name = "read_system_status"},
        [](const UserPtr&) {
          return json::value{{"status", "ok"}};
        },
        Depends(gatehouse::active_user<gatehouse::User>(
            Depends(get_current_user),
            [](const gatehouse::User& current_user) { return !current_user.disabled; })));
  } else {
    app.get(
        "/status/", {.name = "read_system_status"},
        [](const UserPtr&) {
          return json::value{{"status", "ok"}};
        },
        Depends(get_current_user));
  }

  // First-steps page: the raw bearer string is echoed, nothing is verified.
  app.get(
      "/items/", {.name = "read_items"},
      [](const std::string& token) {
        return json::value{{"token", token}};
      },
      Depends(oauth2_scheme));
}

}  // namespace tutorial
