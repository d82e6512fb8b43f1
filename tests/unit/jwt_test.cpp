#include <gtest/gtest.h>

#include "gatehouse/jwt.hpp"

TEST(Jwt, RoundTrip) {
  gatehouse::jwt::Hs256Key key("k");
  auto t = gatehouse::jwt::encode(key, {{"sub", "johndoe"}});
  auto c = gatehouse::jwt::decode(key, t, 0);
  ASSERT_TRUE(c);
}
