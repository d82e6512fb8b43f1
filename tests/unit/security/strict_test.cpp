// Strict verification (VerifierOptions::canonical_base64, strict_claims) and the
// revocation list a Verifier consults (VerifierOptions::revocations), through the
// public API: a library route declared with bearer_claims() refuses a token once it is
// on a DenyList, with FastAPI's 401.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json/parse.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "gatehouse/app.hpp"
#include "gatehouse/auth.hpp"
#include "gatehouse/keys.hpp"
#include "gatehouse/lifecycle.hpp"
#include "gatehouse/store.hpp"
#include "gatehouse/verifier.hpp"
#include "security/base64url.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using gatehouse::Failure;
using gatehouse::Verifier;
using gatehouse::VerifierOptions;

constexpr std::int64_t kNow = 1700000000;
const std::string kSecret = "strict-test-secret-0123456789abcdef0123456789";

std::string sign(std::string_view header, std::string_view payload) {
  auto key = gatehouse::Key::hs256(kSecret);
  std::string token =
      gatehouse::b64::encode_url(header) + "." + gatehouse::b64::encode_url(payload);
  return token + "." + gatehouse::b64::encode_url(key->sign(token));
}

constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";

Verifier make(bool strict) {
  VerifierOptions o;
  o.clock = [] { return kNow; };
  o.canonical_base64 = strict;
  o.strict_claims = strict;
  return Verifier(o, gatehouse::StaticKeys::hs256(kSecret));
}

TEST(Base64Canonical, AcceptsOnlyOneSpelling) {
  using gatehouse::b64::decode_url_canonical;
  EXPECT_EQ(decode_url_canonical("").value(), "");
  EXPECT_EQ(decode_url_canonical("YQ").value(), "a");
  EXPECT_EQ(decode_url_canonical("YWI").value(), "ab");
  EXPECT_EQ(decode_url_canonical("_-8").value(), "\xff\xef");
  EXPECT_FALSE(decode_url_canonical("YR"));     // unused bits set ("YQ" is the spelling)
  EXPECT_FALSE(decode_url_canonical("YWJ"));    // likewise for two bytes
  EXPECT_FALSE(decode_url_canonical("YQ=="));   // padding
  EXPECT_FALSE(decode_url_canonical("Y Q"));    // a stray character
  EXPECT_FALSE(decode_url_canonical("YQ+/"));   // the standard alphabet
  EXPECT_FALSE(decode_url_canonical("YWJjZ"));  // 1 modulo 4
  // python-jose's decoding takes all of those.
  EXPECT_EQ(gatehouse::b64::decode_jose("YR").value(), "a");
}

TEST(StrictVerifier, RefusesNonCanonicalSegments) {
  const auto token = sign(kHeader, R"({"sub":"a","exp":1800000000})");
  ASSERT_TRUE(make(true).verify(token));
  const auto dot = token.rfind('.');
  // The signature's other spellings (the signed part's bytes are what is signed).
  const std::string sig = token.substr(dot + 1);
  ASSERT_EQ(sig.size(), 43u);  // 32 bytes: the last character has 2 unused bits
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string flipped = token;  // the lowest (unused) bit of the last character set
  flipped.back() = kAlphabet[kAlphabet.find(flipped.back()) ^ 1];
  for (const std::string& other :
       {token + "=", token.substr(0, dot + 5) + "!!!!" + token.substr(dot + 5), flipped}) {
    EXPECT_TRUE(make(false).verify(other)) << other;
    auto r = make(true).verify(other);
    ASSERT_FALSE(r) << other;
    EXPECT_EQ(r.error(), Failure::malformed);
  }
}

TEST(StrictVerifier, RequiresExpAsANumberAndStringScopes) {
  for (std::string_view payload :
       {R"({"sub":"a"})", R"({"sub":"a","exp":"1800000000"})", R"({"sub":"a","exp":true})",
        R"({"sub":"a","exp":1800000000,"iat":"1"})", R"({"sub":"a","exp":1800000000,"nbf":"1"})",
        R"({"sub":"a","exp":1800000000,"scopes":[1]})"}) {
    const auto token = sign(kHeader, payload);
    auto r = make(true).verify(token);
    ASSERT_FALSE(r) << payload;
    EXPECT_EQ(r.error(), Failure::bad_claim) << payload;
  }
  // python-jose's reading takes each of these but `exp: true` (1 is long past).
  EXPECT_TRUE(make(false).verify(sign(kHeader, R"({"sub":"a"})")));
  EXPECT_TRUE(make(false).verify(sign(kHeader, R"({"sub":"a","exp":"1800000000"})")));
  EXPECT_TRUE(make(false).verify(sign(kHeader, R"({"sub":"a","exp":1800000000,"scopes":[1]})")));
  EXPECT_TRUE(make(true).verify(sign(kHeader, R"({"sub":"a","exp":1800000000.5,"iat":1})")));
}

class BearerWithDenyList : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "gatehouse-strict-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    std::shared_ptr<gatehouse::UserStore> store = gatehouse::open_sqlite_store(dir_ / "g.db");
    deny_ = std::make_shared<gatehouse::DenyList>(
        std::dynamic_pointer_cast<gatehouse::TokenStore>(store), [] { return kNow; });
    VerifierOptions o;
    o.clock = [] { return kNow; };
    o.revocations = deny_;
    verifier_ = std::make_shared<const Verifier>(o, gatehouse::StaticKeys::hs256(kSecret));
    gatehouse::OAuth2PasswordBearer scheme({.token_url = "token"});
    app_.get(
        "/claims", {.name = "claims"},
        [](const gatehouse::VerifiedToken& t) {
          return json::value{{"sub", t.subject}};
        },
        gatehouse::Security(gatehouse::bearer_claims(verifier_, scheme), {}));
  }
  void TearDown() override {
    deny_.reset();
    fs::remove_all(dir_);
  }
  gatehouse::Response get(const std::string& token) {
    testing_support::Call call{.method = "GET", .target = "/claims"};
    call.headers.emplace_back("Authorization", "Bearer " + token);
    return testing_support::handle(app_, call);
  }

  fs::path dir_;
  std::shared_ptr<gatehouse::DenyList> deny_;
  std::shared_ptr<const Verifier> verifier_;
  gatehouse::App app_;
};

TEST_F(BearerWithDenyList, ARevokedTokenIsRefusedByTheReadyDependency) {
  const auto token = sign(kHeader, R"({"sub":"carol","exp":1800000000})");
  const auto other = sign(kHeader, R"({"sub":"dave","exp":1800000000})");
  ASSERT_EQ(get(token).status, 200);
  auto verified = verifier_->verify(token);
  ASSERT_TRUE(verified);
  deny_->deny(*verified);
  const auto refused = get(token);
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(json::parse(refused.body),
            json::parse(R"({"detail":"Could not validate credentials"})"));
  EXPECT_EQ(testing_support::header_of(refused, "WWW-Authenticate").value_or(""), "Bearer");
  EXPECT_EQ(verifier_->verify(token).error(), Failure::revoked);
  EXPECT_EQ(get(other).status, 200);  // only that token
}

}  // namespace
