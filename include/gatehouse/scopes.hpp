// OAuth2 scopes: the scopes a route's Security() edges require (SecurityScopes), and
// the splitting of a `scope` string into them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gatehouse {

// The scopes required by every Security() edge from the route down to a dependency.
class SecurityScopes {
 public:
  SecurityScopes() = default;
  explicit SecurityScopes(std::vector<std::string> scopes);

  [[nodiscard]] const std::vector<std::string>& scopes() const noexcept { return scopes_; }
  // The scopes joined by single spaces, as in `WWW-Authenticate: Bearer scope="..."`.
  [[nodiscard]] const std::string& scope_str() const noexcept { return scope_str_; }
  [[nodiscard]] bool empty() const noexcept { return scopes_.empty(); }
  // These scopes followed by `more` (the inner edge's scopes come after the outer ones).
  [[nodiscard]] SecurityScopes plus(const std::vector<std::string>& more) const;

 private:
  std::vector<std::string> scopes_;
  std::string scope_str_;
};

// Splits on whitespace as Python's str.split() does (ASCII and Unicode spaces),
// dropping empty parts.
std::vector<std::string> split_scopes(std::string_view scope);

}  // namespace gatehouse
