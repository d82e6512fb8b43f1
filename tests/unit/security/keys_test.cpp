// gatehouse::Key, KeySet and StoreKeyRing (src/security/keys.cpp) with an injected
// clock: each algorithm signs and verifies, kids are RFC 7638 thumbprints, PEMs round
// trip and never leak into errors or the JWK, and the key ring follows rotation and
// retirement made by another process.
#include "gatehouse/keys.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <boost/json/serialize.hpp>
#include <memory>
#include <string>

#include "gatehouse/verifier.hpp"
#include "security/base64url.hpp"
#include "test_support.hpp"

namespace {

namespace json = boost::json;
using gatehouse::Alg;
using gatehouse::Failure;
using gatehouse::Key;

constexpr std::int64_t kNow = 1700000000;

std::string thumbprint(const json::object& jwk) {
  // RFC 7638 §3: the required members, lexicographic order, no whitespace.
  std::string canonical;
  auto s = [&](const char* k) { return std::string(jwk.at(k).as_string()); };
  if (jwk.at("kty") == "RSA") {
    canonical = R"({"e":")" + s("e") + R"(","kty":"RSA","n":")" + s("n") + "\"}";
  } else if (jwk.at("kty") == "EC") {
    canonical =
        R"({"crv":")" + s("crv") + R"(","kty":"EC","x":")" + s("x") + R"(","y":")" + s("y") + "\"}";
  } else {
    canonical = R"({"crv":")" + s("crv") + R"(","kty":"OKP","x":")" + s("x") + "\"}";
  }
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(canonical.data(), canonical.size(), md, &n, EVP_sha256(), nullptr);
  return gatehouse::b64::encode_url(std::string_view(reinterpret_cast<const char*>(md), n));
}

class EachAlgorithm : public testing::TestWithParam<Alg> {};

TEST_P(EachAlgorithm, SignsAndVerifiesAndRefusesATamperedInput) {
  auto key = Key::generate(GetParam());
  ASSERT_TRUE(key->can_sign());
  const auto sig = key->sign("header.payload");
  // RS256: the modulus size; ES256: r||s; Ed25519: 64 bytes.
  EXPECT_EQ(sig.size(), GetParam() == Alg::RS256 ? 256u : 64u);
  EXPECT_TRUE(key->verify("header.payload", sig));
  EXPECT_FALSE(key->verify("header.payloaD", sig));
  auto flipped = sig;
  flipped[5] = static_cast<char>(flipped[5] ^ 1);
  EXPECT_FALSE(key->verify("header.payload", flipped));
  EXPECT_FALSE(key->verify("header.payload", ""));
  EXPECT_FALSE(key->verify("header.payload", sig + "x"));
  // Another key of the same kind does not verify it.
  EXPECT_FALSE(Key::generate(GetParam())->verify("header.payload", sig));
}

TEST_P(EachAlgorithm, KidIsTheJwkThumbprintAndTheJwkIsPublicOnly) {
  auto key = Key::generate(GetParam());
  const auto& jwk = key->public_jwk();
  EXPECT_EQ(key->kid(), thumbprint(jwk));
  EXPECT_EQ(key->kid().size(), 43u);
  EXPECT_EQ(jwk.at("kid"), json::value(key->kid()));
  EXPECT_EQ(jwk.at("alg"), json::value(gatehouse::to_string(GetParam())));
  EXPECT_EQ(jwk.at("use"), json::value("sig"));
  // No private member: d (RSA, EC, OKP), p, q, dp, dq, qi.
  for (const char* m : {"d", "p", "q", "dp", "dq", "qi", "k"}) EXPECT_FALSE(jwk.contains(m)) << m;
}

TEST_P(EachAlgorithm, PrivatePemRoundTripsToTheSameKey) {
  auto key = Key::generate(GetParam());
  const auto pem = key->private_pem();
  EXPECT_NE(pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  auto again = Key::from_private_pem(GetParam(), pem);
  EXPECT_EQ(again->kid(), key->kid());
  EXPECT_TRUE(key->verify("x", again->sign("x")));
}

TEST_P(EachAlgorithm, PublicJwkGivesAVerifyOnlyKey) {
  auto key = Key::generate(GetParam());
  auto pub = Key::from_public_jwk(key->public_jwk());
  EXPECT_EQ(pub->alg(), GetParam());
  EXPECT_EQ(pub->kid(), key->kid());
  EXPECT_EQ(pub->public_jwk(), key->public_jwk());
  EXPECT_FALSE(pub->can_sign());
  EXPECT_THROW((void)pub->sign("x"), std::runtime_error);
  EXPECT_THROW((void)pub->private_pem(), std::runtime_error);
  EXPECT_TRUE(pub->verify("header.payload", key->sign("header.payload")));
  EXPECT_FALSE(pub->verify("header.payload", Key::generate(GetParam())->sign("header.payload")));
  // Without kid, the thumbprint; a kid of its own is kept.
  auto jwk = key->public_jwk();
  jwk.erase("kid");
  EXPECT_EQ(Key::from_public_jwk(jwk)->kid(), key->kid());
  jwk["kid"] = "mine";
  EXPECT_EQ(Key::from_public_jwk(jwk)->kid(), "mine");
}

INSTANTIATE_TEST_SUITE_P(Keys, EachAlgorithm, testing::Values(Alg::RS256, Alg::ES256, Alg::EdDSA),
                         [](const testing::TestParamInfo<Alg>& p) {
                           return std::string(gatehouse::to_string(p.param));
                         });

TEST(Key, APemOfAnotherAlgorithmIsRefusedWithoutQuotingIt) {
  const auto pem = Key::generate(Alg::EdDSA)->private_pem();
  try {
    (void)Key::from_private_pem(Alg::ES256, pem);
    FAIL() << "accepted an Ed25519 key as ES256";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("PRIVATE"), std::string::npos) << what;
    EXPECT_EQ(what.find(pem.substr(30, 20)), std::string::npos) << what;
  }
  EXPECT_THROW((void)Key::from_private_pem(Alg::RS256, "not a pem"), std::invalid_argument);
  EXPECT_THROW((void)Key::from_private_pem(Alg::HS256, pem), std::invalid_argument);
}

TEST(Key, PublicJwksThatAreNotUsableAreRefused) {
  auto es = Key::generate(Alg::ES256)->public_jwk();
  auto wrong_alg = es;
  wrong_alg["alg"] = "RS256";
  EXPECT_THROW((void)Key::from_public_jwk(wrong_alg), std::invalid_argument);
  auto off_curve = es;
  off_curve["y"] = off_curve["x"];  // (x, x) is not on P-256
  EXPECT_THROW((void)Key::from_public_jwk(off_curve), std::invalid_argument);
  auto short_x = es;
  short_x["x"] = "AAAA";
  EXPECT_THROW((void)Key::from_public_jwk(short_x), std::invalid_argument);
  auto p384 = es;
  p384["crv"] = "P-384";
  EXPECT_THROW((void)Key::from_public_jwk(p384), std::invalid_argument);
  EXPECT_THROW((void)Key::from_public_jwk({{"kty", "oct"}, {"k", "c2VjcmV0"}}),
               std::invalid_argument);
  auto rsa = Key::generate(Alg::RS256)->public_jwk();
  rsa["n"] = "AQAB";  // a 24-bit modulus
  EXPECT_THROW((void)Key::from_public_jwk(rsa), std::invalid_argument);
  EXPECT_THROW((void)Key::from_public_jwk({{"kty", "RSA"}}), std::invalid_argument);
}

TEST(KeySet, FromJwksVerifiesTokensOfAnotherIssuer) {
  auto es = Key::generate(Alg::ES256);
  auto ed = Key::generate(Alg::EdDSA);
  gatehouse::KeySet issuer_set({{es, std::nullopt}, {ed, std::nullopt}}, es);
  auto published = issuer_set.jwks(kNow);
  published["keys"].as_array().push_back(json::object{{"kty", "oct"}, {"k", "c2VjcmV0"}});
  published["keys"].as_array().push_back(
      json::object{{"kty", "OKP"}, {"crv", "Ed25519"}, {"use", "enc"}, {"x", "AAAA"}});
  auto resource_set = gatehouse::KeySet::from_jwks(published);
  ASSERT_EQ(resource_set.entries().size(), 2u);  // the oct and the "enc" keys skipped
  EXPECT_EQ(resource_set.signing_key(), nullptr);
  gatehouse::TokenIssuer issuer({.clock = [] { return kNow; }},
                                std::make_shared<gatehouse::StaticKeys>(std::move(issuer_set)));
  gatehouse::VerifierOptions o;
  o.algorithms = {Alg::ES256, Alg::EdDSA};
  o.clock = [] { return kNow; };
  gatehouse::Verifier v(o, std::make_shared<gatehouse::StaticKeys>(std::move(resource_set)));
  auto r = v.verify(issuer.issue({{"sub", "johndoe"}}));
  ASSERT_TRUE(r.ok()) << gatehouse::to_string(r.error());
  EXPECT_EQ(r->kid, es->kid());
  EXPECT_THROW((void)gatehouse::KeySet::from_jwks({{"keys", 1}}), std::invalid_argument);
}

TEST(Key, AlgNamesAreExact) {
  EXPECT_EQ(gatehouse::alg_from_string("EdDSA"), Alg::EdDSA);
  EXPECT_EQ(gatehouse::alg_from_string("es256"), std::nullopt);
  EXPECT_EQ(gatehouse::alg_from_string("none"), std::nullopt);
}

TEST(Key, Hs256HasNoJwkAndNoPem) {
  auto key = Key::hs256("secret");
  EXPECT_TRUE(key->public_jwk().empty());
  EXPECT_TRUE(key->public_pem().empty());
  EXPECT_THROW((void)key->private_pem(), std::runtime_error);
  EXPECT_TRUE(key->verify("a.b", key->sign("a.b")));
}

TEST(KeySet, JwksListsOnlyPublicKeysThatStillVerify) {
  auto hs = Key::hs256("secret");
  auto old_key = Key::generate(Alg::ES256);
  auto current = Key::generate(Alg::EdDSA);
  gatehouse::KeySet set({{hs, std::nullopt}, {old_key, kNow + 10}, {current, std::nullopt}},
                        current);
  auto kids = [&](std::int64_t now) {
    std::vector<std::string> out;
    const auto jwks = set.jwks(now);
    for (const auto& k : jwks.at("keys").as_array()) {
      out.emplace_back(k.as_object().at("kid").as_string());
    }
    return out;
  };
  EXPECT_EQ(kids(kNow), (std::vector<std::string>{old_key->kid(), current->kid()}));
  EXPECT_EQ(kids(kNow + 11), (std::vector<std::string>{current->kid()}));
  EXPECT_EQ(set.find(std::string_view(old_key->kid()), Alg::ES256, kNow), old_key.get());
  EXPECT_EQ(set.find(std::string_view(old_key->kid()), Alg::ES256, kNow + 11), nullptr);
  EXPECT_EQ(set.find(std::nullopt, Alg::HS256, kNow), hs.get());
  EXPECT_EQ(set.find(std::string_view("other"), Alg::HS256, kNow), hs.get());
  EXPECT_EQ(set.find(std::nullopt, Alg::ES256, kNow), nullptr);
}

// ---- the store's key ring ---------------------------------------------------------------

struct Ring {
  std::shared_ptr<testing_support::FakeUserStore> store =
      std::make_shared<testing_support::FakeUserStore>();
  std::int64_t now = kNow;
  std::shared_ptr<gatehouse::StoreKeyRing> ring;

  explicit Ring(std::chrono::milliseconds poll = std::chrono::milliseconds(1000)) {
    ring = std::make_shared<gatehouse::StoreKeyRing>(
        store, gatehouse::StoreKeyRing::Options{.token_lifetime_seconds = 1800,
                                                .poll_interval = poll,
                                                .clock = [this] { return now; }});
  }
  gatehouse::Verifier verifier() {
    gatehouse::VerifierOptions o;
    o.algorithms = {Alg::RS256, Alg::ES256, Alg::EdDSA};
    o.clock = [this] { return now; };
    return gatehouse::Verifier(o, ring);
  }
  std::string token() {
    gatehouse::TokenIssuer issuer({.lifetime_seconds = 1800, .clock = [this] { return now; }},
                                  ring);
    return issuer.issue({{"sub", "johndoe"}});
  }
};

TEST(StoreKeyRing, EnsureSigningKeyMakesOneOnceAndReplacesOneOfAnotherAlgorithm) {
  Ring r;
  EXPECT_EQ(r.ring->keys()->signing_key(), nullptr);
  r.ring->ensure_signing_key(Alg::ES256);
  const auto first = r.ring->keys()->signing_key();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->alg(), Alg::ES256);
  r.ring->ensure_signing_key(Alg::ES256);  // a second instance starting: same key
  EXPECT_EQ(r.store->signing_keys().size(), 1u);
  EXPECT_EQ(r.ring->keys()->signing_key()->kid(), first->kid());
  r.ring->ensure_signing_key(Alg::EdDSA);
  EXPECT_EQ(r.ring->keys()->signing_key()->alg(), Alg::EdDSA);
  ASSERT_EQ(r.store->signing_keys().size(), 2u);
  EXPECT_EQ(r.store->signing_keys()[0].superseded_at, kNow);
  EXPECT_THROW(r.ring->ensure_signing_key(Alg::HS256), std::invalid_argument);
}

TEST(StoreKeyRing, RotationSignsAtOnceAndTheOldKeyVerifiesUntilItsTokensExpire) {
  Ring r;
  r.ring->ensure_signing_key(Alg::ES256);
  auto v = r.verifier();
  const auto old_token = r.token();
  ASSERT_TRUE(v.verify(old_token).ok());
  // Another process rotates: the next request sees it (the store's change marker).
  auto made = gatehouse::rotate_key(*r.store, Alg::EdDSA, r.now);
  EXPECT_EQ(r.ring->keys()->signing_key()->kid(), made->kid());
  const auto new_token = r.token();
  EXPECT_NE(new_token.find('.'), std::string::npos);
  auto verified = v.verify(new_token);
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified->kid, made->kid());
  EXPECT_TRUE(v.verify(old_token).ok());
  // Past the old token's expiry (+ the minute of grace) its key is gone from the set.
  r.now = kNow + 1800 + 61;
  EXPECT_EQ(r.ring->keys()->jwks(r.now).at("keys").as_array().size(), 1u);
}

TEST(StoreKeyRing, ARetiredKeysTokensAreRefused) {
  Ring r;
  r.ring->ensure_signing_key(Alg::RS256);
  auto v = r.verifier();
  const auto old_token = r.token();
  const auto old_kid = r.ring->keys()->signing_key()->kid();
  (void)gatehouse::rotate_key(*r.store, Alg::RS256, r.now);
  ASSERT_TRUE(v.verify(old_token).ok());
  ASSERT_EQ(r.store->retire_signing_key(old_kid, r.now), gatehouse::StoreStatus::ok);
  auto refused = v.verify(old_token);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error(), Failure::unknown_key);
  EXPECT_TRUE(v.verify(r.token()).ok());
  EXPECT_EQ(r.store->retire_signing_key(old_kid, r.now), gatehouse::StoreStatus::not_found);
}

TEST(StoreKeyRing, WithoutChangeDetectionAnUnknownKidReloadsAtMostOnceASecond) {
  Ring r(std::chrono::hours(1));  // polling would take an hour
  r.store->detect_changes = false;
  r.ring->ensure_signing_key(Alg::ES256);
  auto v = r.verifier();
  // Another instance rotates and signs with the new key.
  auto other = std::make_shared<gatehouse::StoreKeyRing>(
      r.store, gatehouse::StoreKeyRing::Options{.clock = [] { return kNow; }});
  (void)gatehouse::rotate_key(*r.store, Alg::ES256, r.now);
  other->reload();
  gatehouse::TokenIssuer issuer({.clock = [] { return kNow; }}, other);
  const auto token = issuer.issue({{"sub", "johndoe"}});
  const int reads = r.store->key_reads;
  EXPECT_TRUE(v.verify(token).ok());  // unknown kid: one reload, then found
  EXPECT_EQ(r.store->key_reads, reads + 1);
  // Garbage kids do not hammer the store: no further reload within the second.
  const auto forged = token.substr(0, 0) +
                      gatehouse::b64::encode_url(R"({"alg":"ES256","kid":"x"})") +
                      token.substr(token.find('.'));
  EXPECT_EQ(v.verify(forged).error(), Failure::unknown_key);
  EXPECT_EQ(v.verify(forged).error(), Failure::unknown_key);
  EXPECT_EQ(r.store->key_reads, reads + 1);
}

TEST(StoreKeyRing, SigningWithoutAKeyFailsClearly) {
  Ring r;
  gatehouse::TokenIssuer issuer({}, r.ring);
  EXPECT_THROW((void)issuer.issue({{"sub", "a"}}), std::runtime_error);
}

}  // namespace
