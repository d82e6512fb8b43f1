// FastAPI's OAuth2 password flow as dependencies: the bearer-token security scheme
// (OAuth2PasswordBearer) and the token request's form (OAuth2PasswordRequestForm).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gatehouse/dependency.hpp"

namespace gatehouse {

// FastAPI's OAuth2PasswordBearer: one object that is both the OpenAPI security
// scheme (password flow, tokenUrl, scopes) and the dependency that takes the bearer
// token from the Authorization header. Missing header, empty value or another scheme
// answers 401 "Not authenticated" with `WWW-Authenticate: Bearer` (with auto_error),
// or resolves to an empty string (without).
class OAuth2PasswordBearer : public Dependency<std::string> {
 public:
  struct Options {
    std::string token_url;
    // scope name -> description, in the order they are published.
    std::vector<std::pair<std::string, std::string>> scopes;
    std::string scheme_name = "OAuth2PasswordBearer";
    std::string description;
    bool auto_error = true;
  };
  explicit OAuth2PasswordBearer(Options options);

  // The credentials after "<scheme> " when the scheme is bearer (any case), else nullopt.
  static std::optional<std::string_view> extract(std::optional<std::string_view> authorization);
};

// FastAPI's OAuth2PasswordRequestForm: the form body of a password-grant token request.
struct OAuth2PasswordRequestForm {
  std::optional<std::string> grant_type;
  std::string username;
  std::string password;
  std::vector<std::string> scopes;  // the `scope` field split on whitespace
  std::optional<std::string> client_id;
  std::optional<std::string> client_secret;

  // The dependency that validates the form (422 with FastAPI's error objects) and
  // declares it in OpenAPI as an application/x-www-form-urlencoded body.
  static Dependency<OAuth2PasswordRequestForm> dependency();
};

}  // namespace gatehouse
