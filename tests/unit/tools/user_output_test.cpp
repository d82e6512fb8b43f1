// What the user commands print and their exit codes (tools/user_output.cpp).
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <string>

#include "settings.hpp"
#include "user_output.hpp"

namespace {

using gatehouse::cli::ExitError;

int exit_code(gatehouse::StoreStatus status, std::string* message) {
  try {
    gatehouse::cli::check_status(status, "alice");
  } catch (const ExitError& e) {
    *message = e.what();
    return e.code;
  }
  return 0;
}

TEST(UserOutput, StoreStatusesAreExitCodes) {
  std::string msg;
  EXPECT_EQ(exit_code(gatehouse::StoreStatus::ok, &msg), 0);
  EXPECT_EQ(exit_code(gatehouse::StoreStatus::not_found, &msg), gatehouse::cli::kExitNoUser);
  EXPECT_EQ(msg, "no such user: alice");
  EXPECT_EQ(exit_code(gatehouse::StoreStatus::exists, &msg), gatehouse::cli::kExitExists);
  EXPECT_EQ(msg, "user already exists: alice");
}

TEST(UserOutput, UserJsonShowsTheHashSchemeNeverTheHash) {
  gatehouse::User u;
  u.username = "alice";
  u.email = "alice@example.com";
  u.disabled = true;
  u.hashed_password = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
  u.scopes = {"me", "items"};
  const auto text = boost::json::serialize(gatehouse::cli::user_json(u));
  EXPECT_EQ(text,
            R"({"username":"alice","email":"alice@example.com","full_name":null,"disabled":true,)"
            R"("hash_scheme":"$argon2id$","scopes":["me","items"]})");
  u.hashed_password = "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
  EXPECT_EQ(gatehouse::cli::user_json(u).at("hash_scheme"), "$2b$");
}

}  // namespace
