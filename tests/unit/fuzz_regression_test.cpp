// Inputs the fuzz targets (fuzz/) found wrong, each checked against the fixed code.
// The crashing input is kept as it was found; docs/SECURITY.md ("Fuzzing") lists them.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gatehouse/jwt.hpp"
#include "gatehouse/security.hpp"
#include "http/text.hpp"
#include "security/base64url.hpp"

namespace {

using Strings = std::vector<std::string>;

// fuzz_bearer, crash-78fd397f: a stray UTF-8 lead byte swallowed the ASCII space after
// it, so "\xe9\xff token" was one scope holding a space (reachable from
// `gatehouse user add --scope` with bytes that are not UTF-8).
TEST(FuzzRegression, SplitScopesStrayLeadByteKeepsTheSpace) {
  EXPECT_EQ(gatehouse::split_scopes("Bearer \xe9\xff token"),
            (Strings{"Bearer", "\xe9\xff", "token"}));
  EXPECT_EQ(gatehouse::split_scopes("\xc3 me"), (Strings{"\xc3", "me"}));
  EXPECT_EQ(gatehouse::split_scopes("\xf0\x9f me"), (Strings{"\xf0\x9f", "me"}));
  // A complete sequence is still one character.
  EXPECT_EQ(gatehouse::split_scopes("\xc3\xa9 me"), (Strings{"\xc3\xa9", "me"}));
}

// fuzz_bearer, crash-ec995bec: "BEARER" (a case difference with "bearer") made Beast's
// iequals (Boost 1.81) read one byte past the end of the header value. The value is
// copied into a heap block of exactly its size so that AddressSanitizer (the
// asan-ubsan run of scripts/test) sees any read past it.
TEST(FuzzRegression, BearerSchemeCompareStaysInsideTheValue) {
  for (std::string_view text : {"BEARER", "bEaReR", "Bearer", "BEARER x", "Basic"}) {
    auto exact = std::make_unique<char[]>(text.size());
    std::copy(text.begin(), text.end(), exact.get());
    const std::string_view value(exact.get(), text.size());
    const auto token = gatehouse::OAuth2PasswordBearer::extract(value);
    EXPECT_EQ(token.has_value(), text != "Basic") << text;
  }
  EXPECT_EQ(gatehouse::OAuth2PasswordBearer::extract("BEARER x"), std::string_view("x"));
  EXPECT_TRUE(gatehouse::http::ascii_iequals("ChUnKeD", "chunked"));
  EXPECT_FALSE(gatehouse::http::ascii_iequals("chunke", "chunked"));
  EXPECT_FALSE(gatehouse::http::ascii_iequals("chunkee", "chunked"));
}

// fuzz_jwt, crash-f4c661d1: a claim too large for a double (1.3e500 reads as
// infinity) made encode() throw std::invalid_argument (std::stoi on "inf"); a scope
// like that made TokenData::from_claims throw, which the tutorial answered with 500.
TEST(FuzzRegression, InfiniteNumbersInClaims) {
  const double inf = std::numeric_limits<double>::infinity();
  std::string out;
  gatehouse::jwt::dump_python_json(boost::json::array{inf, -inf}, out);
  EXPECT_EQ(out, "[Infinity,-Infinity]");  // json.dumps, allow_nan=True
  const gatehouse::jwt::Hs256Key key("k");
  EXPECT_NO_THROW((void)gatehouse::jwt::encode(key, boost::json::object{{"x", inf}}));

  // A correctly signed token whose scopes hold 1e500: pydantic's str(inf) is "inf".
  std::string token = gatehouse::b64::encode_url(R"({"alg":"HS256","typ":"JWT"})") + "." +
                      gatehouse::b64::encode_url(R"({"sub":"johndoe","scopes":[1e500,-1e500]})");
  unsigned char mac[32];
  key.sign(token, mac);
  token.append(".").append(
      gatehouse::b64::encode_url(std::string_view(reinterpret_cast<char*>(mac), 32)));
  auto claims = gatehouse::jwt::decode(key, token, 1'700'000'000);
  ASSERT_TRUE(claims);
  auto data = gatehouse::jwt::TokenData::from_claims(*claims);
  ASSERT_TRUE(data);
  EXPECT_EQ(data->scopes, (Strings{"inf", "-inf"}));
}

}  // namespace
