// FastAPI's security tutorial (advanced/security/oauth2-scopes, with the oauth2-jwt
// page's 401 for a failed login), written only with gatehouse's public API. Read it
// beside ../shared/reference/app.py: the same dependencies, in the same order.
#include "tutorial.hpp"

#include <algorithm>
#include <chrono>

#include "gatehouse/auth.hpp"
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

const std::vector<std::pair<std::string, std::string>>& scopes() {
  static const std::vector<std::pair<std::string, std::string>> kScopes{
      {"me", "Read information about the current user."}, {"items", "Read items."}};
  return kScopes;
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

  // ---- models (their names show up in /openapi.json) ----
  const gatehouse::Model Token{"Token",
                               {{"access_token", "string", true}, {"token_type", "string", true}}};
  const gatehouse::Model User{"User",
                              {{"username", "string", true},
                               {"email", "string"},
                               {"full_name", "string"},
                               {"disabled", "boolean"}}};

  // ---- helpers ----
  auto authenticate_user = [users, passwords](const std::string& username,
                                              const std::string& password) -> UserPtr {
    const auto started = std::chrono::steady_clock::now();
    UserPtr user = users->find(username);
    if (!user) {
      passwords->dummy_verify(password);  // as slow as a wrong password
      return nullptr;
    }
    if (!passwords->verify(password, user->hashed_password)) {
      passwords->equalize_failure(started);  // and a wrong password as slow as that
      return nullptr;
    }
    if (passwords->needs_rehash(user->hashed_password)) {
      users->replace_password_hash(user->username, user->hashed_password,
                                   passwords->hash(password));
    }
    return user;
  };

  // data + exp (and, with an issuer or audience, the RFC 9068 claims), signed.
  auto create_access_token = [tokens](json::object data,
                                      const std::optional<std::string>& client_id) {
    return tokens->issue(std::move(data), client_id);
  };

  auto user_json = [](const gatehouse::User& u) {
    json::object o;
    o["username"] = u.username;
    o["email"] = u.email ? json::value(*u.email) : json::value(nullptr);
    o["full_name"] = u.full_name ? json::value(*u.full_name) : json::value(nullptr);
    o["disabled"] = u.disabled;
    return json::value(std::move(o));
  };

  // ---- security dependencies ----
  gatehouse::OAuth2PasswordBearer oauth2_scheme({.token_url = "token", .scopes = scopes()});

  // Decode the token, find its user, check the scopes the route asks for: the
  // library's ready dependency, with the store as the user loader.
  auto get_current_user = gatehouse::current_user<gatehouse::User>(
      verifier, oauth2_scheme,
      [users](const gatehouse::VerifiedToken& token) { return users->find(token.subject); });

  auto get_current_active_user = gatehouse::active_user<gatehouse::User>(
      Security(get_current_user, {"me"}),
      [](const gatehouse::User& current_user) { return !current_user.disabled; });

  // ---- routes ----
  app.post(
      "/token", {.name = "login_for_access_token", .response_model = Token, .offload = true},
      [=](const gatehouse::OAuth2PasswordRequestForm& form_data) -> Outcome<json::value> {
        UserPtr user = authenticate_user(form_data.username, form_data.password);
        if (!user) {
          return Err{HttpException(401, "Incorrect username or password",
                                   {{"WWW-Authenticate", "Bearer"}})};
        }
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
        auto access_token = create_access_token(
            {{"sub", user->username}, {"scopes", std::move(granted)}}, form_data.client_id);
        return json::value{{"access_token", access_token}, {"token_type", "bearer"}};
      },
      Depends(gatehouse::OAuth2PasswordRequestForm::dependency()));

  app.get(
      "/users/me/", {.name = "read_users_me", .response_model = User},
      [user_json](const UserPtr& current_user) { return user_json(*current_user); },
      Depends(get_current_active_user));

  app.get(
      "/users/me/items/", {.name = "read_own_items"},
      [](const UserPtr& current_user) {
        return json::value(
            json::array{json::object{{"item_id", "Foo"}, {"owner", current_user->username}}});
      },
      Security(get_current_active_user, {"items"}));

  app.get(
      "/status/", {.name = "read_system_status"},
      [](const UserPtr&) {
        return json::value{{"status", "ok"}};
      },
      Depends(get_current_user));

  // First-steps page: the raw bearer string is echoed, nothing is verified.
  app.get(
      "/items/", {.name = "read_items"},
      [](const std::string& token) {
        return json::value{{"token", token}};
      },
      Depends(oauth2_scheme));
}

}  // namespace tutorial
