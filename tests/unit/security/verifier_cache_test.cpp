// Verifier::verify_shared and its cache of verified tokens (VerifierOptions::
// cache_entries): a token seen before is answered from the cache, but never past what
// can change while its bytes stay the same (the clock, the key set, a key's window,
// the revocation list), and it gives the Failure verify() gives.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gatehouse/keys.hpp"
#include "gatehouse/verifier.hpp"
#include "security/base64url.hpp"

namespace {

using gatehouse::Alg;
using gatehouse::Failure;
using gatehouse::Key;
using gatehouse::KeyEntry;
using gatehouse::KeySet;
using gatehouse::KeySource;
using gatehouse::VerifiedToken;
using gatehouse::Verifier;
using gatehouse::VerifierOptions;

constexpr std::int64_t kNow = 1700000000;

// A key source whose set the test replaces, as a rotation or a reload does.
class SwappableKeys final : public KeySource {
 public:
  explicit SwappableKeys(KeySet set) { swap(std::move(set)); }
  void swap(KeySet set) {
    std::lock_guard lock(mutex_);
    set_ = std::make_shared<const KeySet>(std::move(set));
  }
  std::shared_ptr<const KeySet> keys() override {
    std::lock_guard lock(mutex_);
    return set_;
  }

 private:
  std::mutex mutex_;
  std::shared_ptr<const KeySet> set_;
};

class Flagged final : public gatehouse::RevocationList {
 public:
  bool revoked(const VerifiedToken& token) const override {
    return on.load() && token.subject == "johndoe";
  }
  std::atomic<bool> on{false};
};

std::string sign(const Key& key, std::string_view header, std::string_view payload) {
  std::string token = gatehouse::b64::encode_url(header);
  token += '.';
  token += gatehouse::b64::encode_url(payload);
  const auto sig = key.sign(token);
  token += '.';
  token += gatehouse::b64::encode_url(sig);
  return token;
}

std::string john_token(const Key& key, std::int64_t exp = kNow + 600) {
  return sign(key, R"({"alg":"HS256","typ":"JWT"})",
              std::string(R"({"sub":"johndoe","scopes":["me"],"exp":)")
                  .append(std::to_string(exp))
                  .append("}"));
}

struct Fixture {
  std::shared_ptr<const Key> key = Key::hs256(std::string(64, 'k'));
  std::shared_ptr<SwappableKeys> keys =
      std::make_shared<SwappableKeys>(KeySet({KeyEntry{key, std::nullopt}}, key));
  std::shared_ptr<std::atomic<std::int64_t>> now =
      std::make_shared<std::atomic<std::int64_t>>(kNow);
  std::shared_ptr<Flagged> revocations = std::make_shared<Flagged>();

  Verifier verifier(std::size_t entries = 1024) const {
    VerifierOptions o;
    o.clock = [now = now] { return now->load(); };
    o.revocations = revocations;
    o.cache_entries = entries;
    return Verifier(o, keys);
  }
};

TEST(VerifierCache, ATokenSeenBeforeIsAnsweredWithTheSameVerifiedToken) {
  Fixture f;
  const auto v = f.verifier();
  const auto token = john_token(*f.key);
  auto first = v.verify_shared(token);
  auto second = v.verify_shared(token);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->get(), second->get());  // one object: the second call was a hit
  EXPECT_EQ((*second)->subject, "johndoe");
  EXPECT_EQ((*second)->scopes, std::vector<std::string>{"me"});
}

TEST(VerifierCache, NoCacheMeansEveryCallVerifiesAgain) {
  Fixture f;
  const auto v = f.verifier(0);
  const auto token = john_token(*f.key);
  auto first = v.verify_shared(token);
  auto second = v.verify_shared(token);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->get(), second->get());
  EXPECT_EQ((*second)->subject, "johndoe");
}

TEST(VerifierCache, ACachedTokenExpiresOnTime) {
  Fixture f;
  const auto v = f.verifier();
  const auto token = john_token(*f.key, kNow + 10);
  ASSERT_TRUE(v.verify_shared(token).ok());
  f.now->store(kNow + 10);
  EXPECT_TRUE(v.verify_shared(token).ok());  // exp itself still verifies, as python-jose's
  f.now->store(kNow + 11);
  auto r = v.verify_shared(token);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), Failure::expired);
}

TEST(VerifierCache, ATokenNotYetValidBecomesValidOnTime) {
  Fixture f;
  const auto v = f.verifier();
  const auto token = sign(*f.key, R"({"alg":"HS256","typ":"JWT"})",
                          R"({"sub":"johndoe","nbf":1700000100,"exp":1700000600})");
  auto early = v.verify_shared(token);
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error(), Failure::not_yet_valid);
  f.now->store(kNow + 100);
  EXPECT_TRUE(v.verify_shared(token).ok());
  f.now->store(kNow + 50);  // a clock stepped back: refused again, cached or not
  auto back = v.verify_shared(token);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.error(), Failure::not_yet_valid);
}

TEST(VerifierCache, ACachedTokenRevokedLaterIsRefused) {
  Fixture f;
  const auto v = f.verifier();
  const auto token = john_token(*f.key);
  ASSERT_TRUE(v.verify_shared(token).ok());
  f.revocations->on = true;
  auto r = v.verify_shared(token);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), Failure::revoked);
}

TEST(VerifierCache, ATokenOfAKeyThatWasReplacedIsRefused) {
  Fixture f;
  const auto v = f.verifier();
  const auto token = john_token(*f.key);
  ASSERT_TRUE(v.verify_shared(token).ok());
  // Another secret now: the cached answer no longer holds, and the token is
  // refused exactly as verify() refuses it.
  auto other = Key::hs256(std::string(64, 'o'));
  f.keys->swap(KeySet({KeyEntry{other, std::nullopt}}, other));
  auto r = v.verify_shared(token);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), Failure::bad_signature);
  EXPECT_EQ(v.verify(token).error(), Failure::bad_signature);
}

TEST(VerifierCache, ATokenOfAKeyWhoseWindowEndedIsRefused) {
  Fixture f;
  auto key = Key::hs256(std::string(64, 'w'), "old");
  f.keys->swap(KeySet({KeyEntry{key, kNow + 10}}, nullptr));
  const auto v = f.verifier();
  const auto token = sign(*key, R"({"alg":"HS256","kid":"old","typ":"JWT"})",
                          R"({"sub":"johndoe","exp":1700000600})");
  ASSERT_TRUE(v.verify_shared(token).ok());
  f.now->store(kNow + 11);  // the superseded key verifies no more
  auto r = v.verify_shared(token);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), Failure::unknown_key);
}

TEST(VerifierCache, ASignatureChangedAfterTheGoodTokenWasCachedIsRefused) {
  Fixture f;
  const auto v = f.verifier();
  const auto token = john_token(*f.key);
  ASSERT_TRUE(v.verify_shared(token).ok());
  const auto dot = token.rfind('.');
  for (std::size_t i = dot + 1; i < token.size(); i += 7) {
    std::string forged = token;
    forged[i] = forged[i] == 'A' ? 'B' : 'A';
    auto shared = v.verify_shared(forged);
    auto plain = v.verify(forged);
    EXPECT_EQ(shared.ok(), plain.ok()) << forged;
    if (!shared.ok() && !plain.ok()) {
      EXPECT_EQ(shared.error(), plain.error()) << forged;
    }
  }
  // A payload changed under the good signature.
  const std::string other_payload =
      gatehouse::b64::encode_url(R"({"sub":"alice","scopes":["me"],"exp":1700000600})");
  const auto first_dot = token.find('.');
  const std::string swapped = token.substr(0, first_dot + 1) + other_payload + token.substr(dot);
  auto r = v.verify_shared(swapped);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), Failure::bad_signature);
}

TEST(VerifierCache, MoreTokensThanSlotsStayCorrect) {
  Fixture f;
  const auto v = f.verifier(16);
  std::vector<std::string> tokens;
  for (int i = 0; i < 100; ++i) {
    tokens.push_back(sign(
        *f.key, R"({"alg":"HS256","typ":"JWT"})",
        std::string(R"({"sub":"user)").append(std::to_string(i)).append(R"(","exp":1700000600})")));
  }
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      auto r = v.verify_shared(tokens[i]);
      ASSERT_TRUE(r.ok());
      EXPECT_EQ((*r)->subject, "user" + std::to_string(i));
    }
  }
}

TEST(VerifierCache, EveryFailureIsVerifysFailure) {
  Fixture f;
  const auto v = f.verifier();
  const std::vector<std::string> bad = {
      "",
      "a.b",
      "not a token",
      sign(*f.key, R"({"alg":"none","typ":"JWT"})", R"({"sub":"johndoe"})"),
      sign(*f.key, R"({"alg":"HS256","typ":"JWT"})", R"({"scopes":["me"]})"),
      sign(*f.key, R"({"alg":"HS256","typ":"JWT"})", R"({"sub":"johndoe","exp":1})"),
      sign(*f.key, R"({"alg":"HS256","typ":"JWT"})", R"({"sub":"johndoe","aud":"x"})"),
      sign(*f.key, R"({"alg":"HS256","typ":"JWT"})", R"([1,2])"),
      john_token(*f.key) + "x",
  };
  for (int round = 0; round < 2; ++round) {
    for (const auto& token : bad) {
      auto shared = v.verify_shared(token);
      auto plain = v.verify(token);
      ASSERT_FALSE(plain.ok()) << token;
      ASSERT_FALSE(shared.ok()) << token;
      EXPECT_EQ(shared.error(), plain.error()) << token;
    }
  }
}

TEST(VerifierCache, TokensLongerThanFourKibAreVerifiedEachTime) {
  Fixture f;
  const auto v = f.verifier();
  const auto token = sign(*f.key, R"({"alg":"HS256","typ":"JWT"})",
                          std::string(R"({"sub":"johndoe","pad":")")
                              .append(std::string(5000, 'p'))
                              .append(R"(","exp":1700000600})"));
  auto first = v.verify_shared(token);
  auto second = v.verify_shared(token);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->get(), second->get());
}

}  // namespace
