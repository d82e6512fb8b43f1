// The tutorial app (src/tutorial/tutorial.cpp) through App::handle: the contract of SPEC
// part A, with tokens made by python-jose (token_fixtures.hpp) and an in-memory store.
// The users' hashes are cost-4 bcrypt here so that logins are fast.
#include "tutorial.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <memory>
#include <string>

#include "gatehouse/app.hpp"
#include "gatehouse/jwt.hpp"
#include "gatehouse/password.hpp"
#include "test_support.hpp"
#include "token_fixtures.hpp"

namespace {

namespace json = boost::json;
namespace jwt = gatehouse::jwt;
using testing_support::Call;
using testing_support::FakeUserStore;
using testing_support::header_of;

// bcrypt.hashpw(b"secret", bcrypt.gensalt(4)) and bcrypt.hashpw(b"secret2", bcrypt.gensalt(4))
constexpr const char* kSecretCost4 = "$2b$04$98vQvzwYuCGDlpa4Rcx1.u6yieFYSLAl5zYAjEkuoUWHKrRWBVJ5e";
constexpr const char* kSecret2Cost4 =
    "$2b$04$m/TBoqGz1y33ETYckmRfZ.cczzpy/wIOrOQAOcEA4QlAbzIeT9Fb2";

const gatehouse::Argon2Params kFastArgon2{1024, 1, 1};

struct Tutorial {
  std::shared_ptr<FakeUserStore> users;
  std::shared_ptr<const jwt::Hs256Key> key;
  gatehouse::App app;

  Tutorial() {
    auto demo = gatehouse::demo_users();
    demo[0].hashed_password = kSecretCost4;
    demo[1].hashed_password = kSecret2Cost4;
    users = std::make_shared<FakeUserStore>(demo);
    key = std::make_shared<const jwt::Hs256Key>(std::string(fixtures::kReferenceKey));
    tutorial::Config config;
    config.users = users;
    config.secret_key = key;
    auto hasher = std::make_shared<gatehouse::PasswordHasher>(kFastArgon2);
    hasher->set_dummy_hash(kSecretCost4);
    config.passwords = hasher;
    tutorial::install(app, config);
  }

  gatehouse::Response get(std::string target, std::string authorization = {}) {
    Call call{.method = "GET", .target = std::move(target)};
    if (!authorization.empty())
      call.headers.emplace_back("Authorization", std::move(authorization));
    return testing_support::handle(app, call);
  }
  gatehouse::Response login(std::string body) {
    return testing_support::handle(
        app, {.method = "POST",
              .target = "/token",
              .headers = {{"Content-Type", "application/x-www-form-urlencoded"}},
              .body = std::move(body)});
  }
};

std::string bearer(std::string_view token) { return "Bearer " + std::string(token); }

// ---- POST /token -------------------------------------------------------------------------

TEST(TutorialLogin, GivesTokenWithSubScopesAndExp) {
  Tutorial t;
  const auto before = jwt::now_seconds();
  auto r = t.login("username=johndoe&password=secret&scope=me+items");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto body = json::parse(r.body).as_object();
  ASSERT_EQ(body.size(), 2u);
  EXPECT_EQ(body.at("token_type"), json::value("bearer"));
  const std::string token(body.at("access_token").as_string());
  EXPECT_EQ(token.substr(0, token.find('.')), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
  auto claims = jwt::decode(*t.key, token, before);
  ASSERT_TRUE(claims.ok());
  auto it = claims->begin();
  ASSERT_EQ(claims->size(), 3u);
  EXPECT_EQ(it->key(), "sub");
  EXPECT_EQ(it->value(), json::value("johndoe"));
  ++it;
  EXPECT_EQ(it->key(), "scopes");
  EXPECT_EQ(it->value(), json::value(json::array{"me", "items"}));
  ++it;
  EXPECT_EQ(it->key(), "exp");
  EXPECT_GE(it->value().as_int64(), before + 1800);
  EXPECT_LE(it->value().as_int64(), jwt::now_seconds() + 1800);
}

TEST(TutorialLogin, IssuedTokenOpensUsersMe) {
  Tutorial t;
  auto r = t.login("username=johndoe&password=secret&scope=me");
  auto token = json::parse(r.body).at("access_token").as_string();
  auto me = t.get("/users/me/", bearer(token));
  EXPECT_EQ(me.status, 200u);
}

TEST(TutorialLogin, WrongPasswordGives401WithChallenge) {
  Tutorial t;
  auto r = t.login("username=johndoe&password=nope");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Incorrect username or password"})");
  EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer");
}

TEST(TutorialLogin, UnknownUserGives401) {
  Tutorial t;
  auto r = t.login("username=nobody&password=secret");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Incorrect username or password"})");
}

TEST(TutorialLogin, UsernamesAreCaseSensitive) {
  Tutorial t;
  EXPECT_EQ(t.login("username=JohnDoe&password=secret").status, 401u);
}

TEST(TutorialLogin, NulOrOverlongPasswordIsJustWrong) {
  Tutorial t;
  EXPECT_EQ(t.login("username=johndoe&password=secret%00").status, 401u);
  EXPECT_EQ(t.login("username=johndoe&password=" + std::string(5000, 's')).status, 401u);
}

TEST(TutorialLogin, FieldErrorsComeBeforeCredentials) {
  Tutorial t;
  auto r = t.login("grant_type=client_credentials&username=johndoe&password=wrong");
  EXPECT_EQ(r.status, 422u);
}

TEST(TutorialLogin, DisabledUserStillGetsToken) {
  Tutorial t;
  EXPECT_EQ(t.login("username=alice&password=secret2").status, 200u);
}

TEST(TutorialLogin, Argon2HashWithOtherParamsRehashedOnLogin) {
  Tutorial t;
  const auto old_hash = gatehouse::PasswordHasher(gatehouse::Argon2Params{2048, 1, 1}).hash("pw");
  t.users->add({"carol", std::nullopt, std::nullopt, false, old_hash});
  auto r = t.login("username=carol&password=pw");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(t.users->hash_updates, 1);
  auto stored = t.users->find("carol")->hashed_password;
  EXPECT_EQ(stored.rfind("$argon2id$v=19$m=1024,t=1,p=1$", 0), 0u) << stored;
  EXPECT_TRUE(gatehouse::PasswordHasher(kFastArgon2).verify("pw", stored));
}

TEST(TutorialLogin, BcryptHashKeptOnLogin) {
  Tutorial t;
  EXPECT_EQ(t.login("username=johndoe&password=secret").status, 200u);
  EXPECT_EQ(t.users->hash_updates, 0);
}

// ---- protected routes ----------------------------------------------------------------------

TEST(TutorialUsersMe, JoseTokenGivesUser) {
  Tutorial t;
  auto r = t.get("/users/me/", bearer(fixtures::kJohndoe));
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(
      r.body,
      R"({"username":"johndoe","email":"johndoe@example.com","full_name":"John Doe","disabled":false})");
}

TEST(TutorialUsersMe, MissingBearerGives401) {
  Tutorial t;
  auto r = t.get("/users/me/");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Not authenticated"})");
  EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer");
}

TEST(TutorialUsersMe, GarbageTokenGives401WithScopeChallenge) {
  Tutorial t;
  auto r = t.get("/users/me/", "Bearer garbage");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Could not validate credentials"})");
  EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer scope=\"me\"");
}

TEST(TutorialUsersMe, BearerAloneGives401CouldNotValidate) {
  Tutorial t;
  auto r = t.get("/users/me/", "Bearer");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Could not validate credentials"})");
}

TEST(TutorialUsersMe, RefusedTokensGive401CouldNotValidate) {
  Tutorial t;
  for (auto token : {fixtures::kExpired, fixtures::kUnknownUser, fixtures::kEmptySub,
                     fixtures::kNoSub, fixtures::kAlgNone, fixtures::kAlgHS512, fixtures::kOtherKey,
                     fixtures::kScopesString, fixtures::kAudString, fixtures::kExpNull}) {
    auto r = t.get("/users/me/", bearer(token));
    EXPECT_EQ(r.status, 401u) << token;
    EXPECT_EQ(r.body, R"({"detail":"Could not validate credentials"})") << token;
  }
}

TEST(TutorialUsersMe, TokenWithoutMeScopeGivesNotEnoughPermissions) {
  Tutorial t;
  auto r = t.get("/users/me/", bearer(fixtures::kJohndoeNoScopes));
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Not enough permissions"})");
  EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer scope=\"me\"");
}

TEST(TutorialUsersMe, DisabledUserWithoutScopeGetsNotEnoughPermissions) {
  Tutorial t;
  auto r = t.get("/users/me/", bearer(fixtures::kAliceNoScopes));
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Not enough permissions"})");
}

TEST(TutorialUsersMe, DisabledUserWithScopeGetsInactiveUser) {
  Tutorial t;
  auto r = t.get("/users/me/", bearer(fixtures::kAliceMe));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body, R"({"detail":"Inactive user"})");
  EXPECT_EQ(header_of(r, "WWW-Authenticate"), std::nullopt);
}

TEST(TutorialItems, OwnItemsNeedItemsAndMe) {
  Tutorial t;
  auto ok = t.get("/users/me/items/", bearer(fixtures::kJohndoe));
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.body, R"([{"item_id":"Foo","owner":"johndoe"}])");
  auto lacking = t.get("/users/me/items/", bearer(fixtures::kJohndoeMeOnly));
  EXPECT_EQ(lacking.status, 401u);
  EXPECT_EQ(lacking.body, R"({"detail":"Not enough permissions"})");
  EXPECT_EQ(header_of(lacking, "WWW-Authenticate"), "Bearer scope=\"items me\"");
}

TEST(TutorialItems, CoercedNumericScopesAccepted) {
  Tutorial t;
  EXPECT_EQ(t.get("/status/", bearer(fixtures::kScopesWithNumbers)).status, 200u);
}

TEST(TutorialStatus, AnyValidTokenEvenDisabledUser) {
  Tutorial t;
  auto r = t.get("/status/", bearer(fixtures::kAliceNoScopes));
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"status":"ok"})");
}

TEST(TutorialStatus, BadTokenChallengeIsPlainBearer) {
  Tutorial t;
  auto r = t.get("/status/", "Bearer garbage");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer");
}

TEST(TutorialReadItems, EchoesEverythingAfterFirstSpace) {
  Tutorial t;
  EXPECT_EQ(t.get("/items/", "Bearer  two").body, R"({"token":" two"})");
  EXPECT_EQ(t.get("/items/", "bearer x.y.z").body, R"({"token":"x.y.z"})");
  EXPECT_EQ(t.get("/items/").status, 401u);
}

}  // namespace
