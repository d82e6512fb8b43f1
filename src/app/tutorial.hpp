// FastAPI's OAuth2 security tutorial (password flow, JWT, scopes), as a gatehouse app.
#pragma once

#include <memory>

#include "gatehouse/app.hpp"
#include "gatehouse/jwt.hpp"
#include "gatehouse/password.hpp"
#include "gatehouse/store.hpp"
#include "gatehouse/throttle.hpp"

namespace tutorial {

struct Config {
  std::shared_ptr<gatehouse::UserStore> users;
  std::shared_ptr<const gatehouse::jwt::Hs256Key> secret_key;
  std::shared_ptr<const gatehouse::PasswordHasher> passwords;
  int access_token_expire_minutes = 30;
  // Brute-force throttling of /token (per username and client); nullptr: none.
  std::shared_ptr<gatehouse::LoginThrottle> throttle;
};

// Declares /token, /users/me/, /users/me/items/, /status/ and /items/ on `app`.
void install(gatehouse::App& app, const Config& config);

}  // namespace tutorial
