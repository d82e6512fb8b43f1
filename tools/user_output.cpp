// What the user commands print (see user_output.hpp).
#include "user_output.hpp"

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include <utility>

#include "settings.hpp"

namespace gatehouse::cli {

void check_status(gatehouse::StoreStatus status, const std::string& username) {
  if (status == gatehouse::StoreStatus::not_found)
    throw ExitError(kExitNoUser, "no such user: " + username);
  if (status == gatehouse::StoreStatus::exists)
    throw ExitError(kExitExists, "user already exists: " + username);
}

boost::json::object user_json(const gatehouse::User& u) {
  boost::json::object o;
  o["username"] = u.username;
  o["email"] = u.email ? boost::json::value(*u.email) : nullptr;
  o["full_name"] = u.full_name ? boost::json::value(*u.full_name) : nullptr;
  o["disabled"] = u.disabled;
  std::string scheme = u.hashed_password.substr(0, u.hashed_password.find('$', 1) + 1);
  o["hash_scheme"] = scheme;
  boost::json::array scopes;
  for (const auto& sc : u.scopes) scopes.emplace_back(sc);
  o["scopes"] = std::move(scopes);
  return o;
}

}  // namespace gatehouse::cli
