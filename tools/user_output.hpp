// What the user commands print and how a store's answer becomes an exit code.
#pragma once

#include <boost/json/object.hpp>

#include <string>

#include "gatehouse/store.hpp"

namespace gatehouse::cli {

// not_found is exit code 3 ("no such user: NAME"), exists exit code 4 ("user already
// exists: NAME"); ok returns.
void check_status(gatehouse::StoreStatus status, const std::string& username);

// A user as `user show` and `user list --json` print it: never the hash, only its scheme.
boost::json::object user_json(const gatehouse::User& u);

}  // namespace gatehouse::cli
