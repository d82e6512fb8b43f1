// gatehouse::Verifier, TokenIssuer and the ready dependencies (src/security/verifier.cpp,
// include/gatehouse/auth.hpp), with an injected clock: every Failure a token can end
// in, the mapping of each to FastAPI's answer, algorithm confusion, and the issuer's
// bytes (the FastAPI default must stay python-jose's).
#include "gatehouse/verifier.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <memory>
#include <string>

#include "gatehouse/app.hpp"
#include "gatehouse/auth.hpp"
#include "gatehouse/jwt.hpp"
#include "gatehouse/keys.hpp"
#include "security/base64url.hpp"
#include "test_support.hpp"
#include "token_fixtures.hpp"

namespace {

namespace json = boost::json;
using gatehouse::Alg;
using gatehouse::Failure;
using gatehouse::Key;
using gatehouse::KeyEntry;
using gatehouse::KeySet;
using gatehouse::SecurityScopes;
using gatehouse::StaticKeys;
using gatehouse::TokenIssuer;
using gatehouse::Verifier;
using gatehouse::VerifierOptions;

constexpr std::int64_t kNow = 1700000000;

std::function<std::int64_t()> clock_at(std::int64_t t) {
  return [t] { return t; };
}

// A compact JWS from exactly these header and payload bytes, signed by `key` (or with
// `signature` verbatim).
std::string forge(std::string_view header, std::string_view payload, const Key* key,
                  std::optional<std::string> signature = std::nullopt) {
  std::string token =
      gatehouse::b64::encode_url(header) + "." + gatehouse::b64::encode_url(payload);
  std::string sig = signature ? *signature : key->sign(token);
  return token + "." + gatehouse::b64::encode_url(sig);
}

std::shared_ptr<StaticKeys> hs256_keys() {
  return StaticKeys::hs256(std::string(fixtures::kReferenceKey));
}

Verifier default_verifier(std::int64_t now = kNow) {
  VerifierOptions o;
  o.clock = clock_at(now);
  return Verifier(o, hs256_keys());
}

Failure failure_of(const Verifier& v, std::string_view token) {
  auto r = v.verify(token);
  EXPECT_FALSE(r.ok()) << "accepted: " << token;
  return r.ok() ? Failure::malformed : r.error();
}

const std::string kHs = R"({"alg":"HS256","typ":"JWT"})";
const std::string kJohn = R"({"sub":"johndoe","scopes":["me","items"],"exp":4102444800})";

// ---- the token's failures, one by one ----------------------------------------------------

TEST(Verifier, AcceptsTheReferenceTokenAndReadsSubAndScopes) {
  auto r = default_verifier().verify(fixtures::kJohndoe);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->subject, "johndoe");
  EXPECT_EQ(r->scopes, (std::vector<std::string>{"me", "items"}));
  EXPECT_EQ(r->alg, Alg::HS256);
  EXPECT_TRUE(r->has_scope("items"));
  EXPECT_FALSE(r->has_scope("admin"));
  const std::string_view token = fixtures::kJohndoe;
  EXPECT_EQ(r->signing_input, token.substr(0, token.rfind('.')));
}

TEST(Verifier, Malformed) {
  auto v = default_verifier();
  EXPECT_EQ(failure_of(v, "no-dots"), Failure::malformed);
  EXPECT_EQ(failure_of(v, "one.dot"), Failure::malformed);
  EXPECT_EQ(failure_of(v, "a$.b.c"), Failure::malformed);
}

TEST(Verifier, BadHeader) {
  auto key = Key::hs256(std::string(fixtures::kReferenceKey));
  EXPECT_EQ(failure_of(default_verifier(), forge("[1]", kJohn, key.get())), Failure::bad_header);
  EXPECT_EQ(failure_of(default_verifier(), forge("{", kJohn, key.get())), Failure::bad_header);
}

TEST(Verifier, CritIsIgnoredByDefaultAsJoseDoesAndRefusedWhenAsked) {
  auto key = Key::hs256(std::string(fixtures::kReferenceKey));
  const auto token = forge(R"({"alg":"HS256","crit":["exp"],"exp":1})", kJohn, key.get());
  EXPECT_TRUE(default_verifier().verify(token).ok());
  VerifierOptions o;
  o.clock = clock_at(kNow);
  o.reject_crit = true;
  EXPECT_EQ(failure_of(Verifier(o, hs256_keys()), token), Failure::bad_header);
  EXPECT_TRUE(Verifier(o, hs256_keys()).verify(forge(kHs, kJohn, key.get())).ok());
}

TEST(Verifier, AlgNotAllowedBeforeAnyCryptography) {
  auto key = Key::hs256(std::string(fixtures::kReferenceKey));
  auto v = default_verifier();
  for (const char* header :
       {R"({"alg":"none"})", R"({"alg":"None"})", R"({"alg":"HS512"})", R"({"alg":"hs256"})",
        R"({"alg":["HS256"]})", R"({"typ":"JWT"})", R"({"alg":"RS256"})", R"({"alg":"EdDSA"})"}) {
    // The signature is garbage: the verdict must come before it is looked at.
    EXPECT_EQ(failure_of(v, forge(header, kJohn, nullptr, std::string("x"))),
              Failure::alg_not_allowed)
        << header;
  }
  // "none" with an empty signature, the classic.
  const std::string none = gatehouse::b64::encode_url(R"({"alg":"none","typ":"JWT"})") + "." +
                           gatehouse::b64::encode_url(kJohn) + ".";
  EXPECT_EQ(failure_of(v, none), Failure::alg_not_allowed);
}

TEST(Verifier, BadSignature) {
  auto other = Key::hs256("another secret");
  EXPECT_EQ(failure_of(default_verifier(), forge(kHs, kJohn, other.get())), Failure::bad_signature);
}

TEST(Verifier, BadPayload) {
  auto key = Key::hs256(std::string(fixtures::kReferenceKey));
  EXPECT_EQ(failure_of(default_verifier(), forge(kHs, "[]", key.get())), Failure::bad_payload);
  EXPECT_EQ(failure_of(default_verifier(), forge(kHs, "nope", key.get())), Failure::bad_payload);
}

TEST(Verifier, ExpiredAndNotYetValidWithLeeway) {
  auto key = Key::hs256(std::string(fixtures::kReferenceKey));
  const auto token =
      forge(kHs, R"({"sub":"johndoe","exp":1699999990,"nbf":1699999000})", key.get());
  EXPECT_EQ(failure_of(default_verifier(kNow), token), Failure::expired);
  EXPECT_TRUE(default_verifier(1699999990).verify(token).ok());  // exp == now is still valid
  EXPECT_EQ(failure_of(default_verifier(1699998999), token), Failure::not_yet_valid);
  VerifierOptions lenient;
  lenient.clock = clock_at(kNow);
  lenient.leeway_seconds = 10;
  EXPECT_TRUE(Verifier(lenient, hs256_keys()).verify(token).ok());
  lenient.leeway_seconds = 9;
  EXPECT_EQ(failure_of(Verifier(lenient, hs256_keys()), token), Failure::expired);
}

TEST(Verifier, BadClaim) {
  auto key = Key::hs256(std::string(fixtures::kReferenceKey));
  auto v = default_verifier();
  for (const char* payload :
       {R"({"sub":"johndoe","exp":"soon"})", R"({"sub":"johndoe","iat":null})", R"({"sub":7})",
        R"({"scopes":["me"]})", R"({"sub":"johndoe","scopes":"me"})",
        R"({"sub":"johndoe","jti":1})", R"({"sub":"johndoe","at_hash":"x"})"}) {
    EXPECT_EQ(failure_of(v, forge(kHs, payload, key.get())), Failure::bad_claim) << payload;
  }
}

TEST(Verifier, AudienceRefusedUnlessConfiguredThenRequired) {
  auto key = Key::hs256(std::string(fixtures::kReferenceKey));
  const auto with_aud = forge(kHs, R"({"sub":"johndoe","aud":"api"})", key.get());
  const auto with_list = forge(kHs, R"({"sub":"johndoe","aud":["other","api"]})", key.get());
  const auto without = forge(kHs, R"({"sub":"johndoe"})", key.get());
  EXPECT_EQ(failure_of(default_verifier(), with_aud), Failure::audience_present);
  VerifierOptions o;
  o.clock = clock_at(kNow);
  o.audience = "api";
  Verifier v(o, hs256_keys());
  EXPECT_TRUE(v.verify(with_aud).ok());
  EXPECT_TRUE(v.verify(with_list).ok());
  EXPECT_EQ(failure_of(v, without), Failure::wrong_audience);
  EXPECT_EQ(failure_of(v, forge(kHs, R"({"sub":"johndoe","aud":"apis"})", key.get())),
            Failure::wrong_audience);
}

TEST(Verifier, WrongIssuer) {
  auto key = Key::hs256(std::string(fixtures::kReferenceKey));
  VerifierOptions o;
  o.clock = clock_at(kNow);
  o.issuer = "https://auth.example";
  Verifier v(o, hs256_keys());
  EXPECT_TRUE(v.verify(forge(kHs, R"({"sub":"a","iss":"https://auth.example"})", key.get())).ok());
  EXPECT_EQ(failure_of(v, forge(kHs, R"({"sub":"a","iss":"https://evil.example"})", key.get())),
            Failure::wrong_issuer);
  EXPECT_EQ(failure_of(v, forge(kHs, R"({"sub":"a"})", key.get())), Failure::wrong_issuer);
}

TEST(Verifier, Rfc9068RequiresAtJwtAndReadsTheScopeString) {
  auto key = Key::hs256(std::string(fixtures::kReferenceKey));
  VerifierOptions o;
  o.clock = clock_at(kNow);
  o.rfc9068 = true;
  Verifier v(o, hs256_keys());
  EXPECT_EQ(failure_of(v, forge(kHs, kJohn, key.get())), Failure::wrong_type);
  auto r = v.verify(forge(R"({"alg":"HS256","typ":"application/AT+JWT"})",
                          R"({"sub":"a","scope":"me  items"})", key.get()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->scopes, (std::vector<std::string>{"me", "items"}));
  // Without the profile the `scope` string is not read (FastAPI's TokenData).
  auto plain = default_verifier().verify(forge(kHs, R"({"sub":"a","scope":"me"})", key.get()));
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->scopes.empty());
}

// ---- keys and kids ----------------------------------------------------------------------

TEST(Verifier, UnknownKidIsRefusedWhenEveryKeyHasOne) {
  auto es = Key::generate(Alg::ES256);
  VerifierOptions o;
  o.clock = clock_at(kNow);
  o.algorithms = {Alg::ES256};
  Verifier v(o, std::make_shared<StaticKeys>(KeySet({{es, std::nullopt}}, es)));
  const std::string payload = R"({"sub":"a"})";
  EXPECT_TRUE(
      v.verify(forge(R"({"alg":"ES256","kid":")" + es->kid() + "\"}", payload, es.get())).ok());
  EXPECT_EQ(failure_of(v, forge(R"({"alg":"ES256","kid":"nope"})", payload, es.get())),
            Failure::unknown_key);
  EXPECT_EQ(failure_of(v, forge(R"({"alg":"ES256"})", payload, es.get())), Failure::unknown_key);
}

TEST(Verifier, AKidlessHs256KeyIgnoresTheKidAsJoseDoes) {
  auto key = Key::hs256(std::string(fixtures::kReferenceKey));
  EXPECT_TRUE(default_verifier()
                  .verify(forge(R"({"alg":"HS256","kid":"k1","crit":["x"]})", kJohn, key.get()))
                  .ok());
}

TEST(Verifier, AlgConfusionHs256SignedWithTheRsaPublicKeyIsRefused) {
  auto rsa = Key::generate(Alg::RS256);
  const std::string pem = rsa->public_pem();
  ASSERT_NE(pem.find("BEGIN PUBLIC KEY"), std::string::npos);
  auto as_hmac = Key::hs256(pem);
  const std::string payload = R"({"sub":"johndoe"})";
  VerifierOptions o;
  o.clock = clock_at(kNow);
  o.algorithms = {Alg::RS256};
  auto keys = std::make_shared<StaticKeys>(KeySet({{rsa, std::nullopt}}, rsa));
  // Whitelist: HS256 is not allowed at all.
  EXPECT_EQ(failure_of(Verifier(o, keys), forge(R"({"alg":"HS256","kid":")" + rsa->kid() + "\"}",
                                                payload, as_hmac.get())),
            Failure::alg_not_allowed);
  // Even with HS256 allowed, the RSA key is bound to RS256.
  o.algorithms = {Alg::HS256, Alg::RS256};
  EXPECT_EQ(failure_of(Verifier(o, keys), forge(R"({"alg":"HS256","kid":")" + rsa->kid() + "\"}",
                                                payload, as_hmac.get())),
            Failure::alg_not_allowed);
  // And the genuine RS256 token passes.
  EXPECT_TRUE(
      Verifier(o, keys)
          .verify(forge(R"({"alg":"RS256","kid":")" + rsa->kid() + "\"}", payload, rsa.get()))
          .ok());
}

TEST(Verifier, AnEs256KeyDoesNotVerifyAnEdDsaClaim) {
  auto es = Key::generate(Alg::ES256);
  VerifierOptions o;
  o.clock = clock_at(kNow);
  o.algorithms = {Alg::ES256, Alg::EdDSA};
  Verifier v(o, std::make_shared<StaticKeys>(KeySet({{es, std::nullopt}}, es)));
  EXPECT_EQ(failure_of(v, forge(R"({"alg":"EdDSA","kid":")" + es->kid() + "\"}", R"({"sub":"a"})",
                                es.get())),
            Failure::alg_not_allowed);
}

// ---- mapping to FastAPI's answers -------------------------------------------------------

std::string www_authenticate(const gatehouse::HttpException& e) {
  for (const auto& [k, v] : e.headers) {
    if (k == "WWW-Authenticate") return v;
  }
  return "<none>";
}

TEST(FailureMapping, EveryTokenFailureIsCouldNotValidateCredentials) {
  const SecurityScopes scopes({"me", "items"});
  for (Failure f :
       {Failure::malformed, Failure::bad_header, Failure::alg_not_allowed, Failure::unknown_key,
        Failure::wrong_type, Failure::bad_signature, Failure::bad_payload, Failure::expired,
        Failure::not_yet_valid, Failure::bad_claim, Failure::audience_present,
        Failure::wrong_audience, Failure::wrong_issuer, Failure::unknown_user}) {
    auto e = gatehouse::to_http_exception(f, scopes);
    EXPECT_EQ(e.status, 401u) << gatehouse::to_string(f);
    EXPECT_EQ(e.detail, json::value("Could not validate credentials")) << gatehouse::to_string(f);
    EXPECT_EQ(www_authenticate(e), "Bearer scope=\"me items\"") << gatehouse::to_string(f);
  }
  EXPECT_EQ(www_authenticate(gatehouse::to_http_exception(Failure::expired, {})), "Bearer");
}

TEST(FailureMapping, MissingScopeInactiveUserAndNotAuthenticated) {
  auto scope = gatehouse::to_http_exception(Failure::missing_scope, SecurityScopes({"me"}));
  EXPECT_EQ(scope.status, 401u);
  EXPECT_EQ(scope.detail, json::value("Not enough permissions"));
  EXPECT_EQ(www_authenticate(scope), "Bearer scope=\"me\"");
  auto inactive = gatehouse::to_http_exception(Failure::inactive_user, SecurityScopes({"me"}));
  EXPECT_EQ(inactive.status, 400u);
  EXPECT_EQ(inactive.detail, json::value("Inactive user"));
  EXPECT_TRUE(inactive.headers.empty());
  auto none = gatehouse::to_http_exception(Failure::not_authenticated, SecurityScopes({"me"}));
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(none.detail, json::value("Not authenticated"));
  EXPECT_EQ(www_authenticate(none), "Bearer");
}

// ---- the issuer -------------------------------------------------------------------------

TEST(TokenIssuer, DefaultTokensAreByteForBytePythonJoses) {
  TokenIssuer issuer({.lifetime_seconds = 1800, .clock = clock_at(kNow)}, hs256_keys());
  const auto token = issuer.issue({{"sub", "johndoe"}, {"scopes", json::array{"me", "items"}}});
  gatehouse::jwt::Hs256Key key{std::string(fixtures::kReferenceKey)};
  EXPECT_EQ(token, gatehouse::jwt::encode(key, {{"sub", "johndoe"},
                                                {"scopes", json::array{"me", "items"}},
                                                {"exp", kNow + 1800}}));
  EXPECT_EQ(token.substr(0, token.find('.')), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
  EXPECT_FALSE(issuer.rfc9068());
}

TEST(TokenIssuer, Rfc9068ProfileAddsTypKidAndClaimsAndVerifies) {
  auto ed = Key::generate(Alg::EdDSA);
  auto keys = std::make_shared<StaticKeys>(KeySet({{ed, std::nullopt}}, ed));
  TokenIssuer issuer({.lifetime_seconds = 600,
                      .issuer = "https://auth.example",
                      .audience = "api",
                      .clock = clock_at(kNow)},
                     keys);
  const auto token =
      issuer.issue({{"sub", "johndoe"}, {"scopes", json::array{"me", "items"}}}, "cli-1");
  auto header = json::parse(*gatehouse::b64::decode_jose(token.substr(0, token.find('.'))));
  EXPECT_EQ(json::serialize(header),
            R"({"alg":"EdDSA","kid":")" + ed->kid() + R"(","typ":"at+jwt"})");
  VerifierOptions o;
  o.algorithms = {Alg::EdDSA};
  o.issuer = "https://auth.example";
  o.audience = "api";
  o.rfc9068 = true;
  o.clock = clock_at(kNow + 600);
  auto r = Verifier(o, keys).verify(token);
  ASSERT_TRUE(r.ok()) << gatehouse::to_string(r.error());
  const auto& c = r->claims;
  EXPECT_EQ(c.at("iss"), json::value("https://auth.example"));
  EXPECT_EQ(c.at("aud"), json::value("api"));
  EXPECT_EQ(c.at("iat"), json::value(kNow));
  EXPECT_EQ(c.at("exp"), json::value(kNow + 600));
  EXPECT_EQ(c.at("client_id"), json::value("cli-1"));
  EXPECT_EQ(c.at("scope"), json::value("me items"));
  EXPECT_EQ(c.at("jti").as_string().size(), 22u);  // 16 random bytes
  EXPECT_EQ(r->kid, ed->kid());
  // Two tokens never share a jti.
  auto again = Verifier(o, keys).verify(issuer.issue({{"sub", "johndoe"}}));
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->claims.at("jti"), c.at("jti"));
  o.clock = clock_at(kNow + 601);
  EXPECT_EQ(failure_of(Verifier(o, keys), token), Failure::expired);
}

TEST(TokenIssuer, NoSigningKeyThrows) {
  auto es = Key::generate(Alg::ES256);
  TokenIssuer issuer({}, std::make_shared<StaticKeys>(KeySet({{es, std::nullopt}}, nullptr)));
  EXPECT_THROW((void)issuer.issue({{"sub", "a"}}), std::runtime_error);
}

// ---- the ready dependencies ---------------------------------------------------------------

struct Service {
  std::shared_ptr<testing_support::FakeUserStore> users =
      std::make_shared<testing_support::FakeUserStore>(gatehouse::demo_users());
  std::shared_ptr<const Verifier> verifier =
      std::make_shared<const Verifier>(VerifierOptions{.clock = clock_at(kNow)}, hs256_keys());
  gatehouse::App app;

  Service() {
    gatehouse::OAuth2PasswordBearer scheme({.token_url = "token"});
    auto claims = gatehouse::bearer_claims(verifier, scheme);
    auto user = gatehouse::current_user<gatehouse::User>(
        verifier, scheme,
        [u = users](const gatehouse::VerifiedToken& t) { return u->find(t.subject); });
    auto active = gatehouse::active_user<gatehouse::User>(
        gatehouse::Security(user, {"me"}), [](const gatehouse::User& u) { return !u.disabled; });
    app.get(
        "/claims", {.name = "claims"},
        [](const gatehouse::VerifiedToken& t) {
          return json::value{{"sub", t.subject}};
        },
        gatehouse::Security(claims, {"items"}));
    app.get(
        "/me", {.name = "me"},
        [](const gatehouse::UserPtr& u) {
          return json::value{{"user", u->username}};
        },
        gatehouse::Security(active, {"items"}));
  }

  gatehouse::Response get(std::string target, std::string token) {
    testing_support::Call call{.method = "GET", .target = std::move(target)};
    if (!token.empty()) call.headers.emplace_back("Authorization", "Bearer " + token);
    return testing_support::handle(app, call);
  }
};

std::string signed_token(std::string_view payload) {
  auto key = Key::hs256(std::string(fixtures::kReferenceKey));
  return forge(kHs, payload, key.get());
}

TEST(ReadyDependencies, BearerClaimsChecksTokenAndScopes) {
  Service s;
  auto ok = s.get("/claims", signed_token(R"({"sub":"anyone","scopes":["items"]})"));
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.body, R"({"sub":"anyone"})");
  auto scope = s.get("/claims", signed_token(R"({"sub":"anyone","scopes":["me"]})"));
  EXPECT_EQ(scope.status, 401u);
  EXPECT_EQ(scope.body, R"({"detail":"Not enough permissions"})");
  EXPECT_EQ(testing_support::header_of(scope, "WWW-Authenticate"), "Bearer scope=\"items\"");
  auto none = s.get("/claims", "");
  EXPECT_EQ(none.body, R"({"detail":"Not authenticated"})");
}

TEST(ReadyDependencies, CurrentUserLooksTheUserUpBeforeTheScopes) {
  Service s;
  // Unknown user and a missing scope: the user is checked first, as in the tutorial.
  auto r = s.get("/me", signed_token(R"({"sub":"nobody","scopes":[]})"));
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Could not validate credentials"})");
  EXPECT_EQ(testing_support::header_of(r, "WWW-Authenticate"), "Bearer scope=\"items me\"");
  auto missing = s.get("/me", signed_token(R"({"sub":"johndoe","scopes":["me"]})"));
  EXPECT_EQ(missing.body, R"({"detail":"Not enough permissions"})");
  auto ok = s.get("/me", signed_token(R"({"sub":"johndoe","scopes":["me","items"]})"));
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.body, R"({"user":"johndoe"})");
  auto inactive = s.get("/me", signed_token(R"({"sub":"alice","scopes":["me","items"]})"));
  EXPECT_EQ(inactive.status, 400u);
  EXPECT_EQ(inactive.body, R"({"detail":"Inactive user"})");
  EXPECT_EQ(testing_support::header_of(inactive, "WWW-Authenticate"), std::nullopt);
}

}  // namespace
