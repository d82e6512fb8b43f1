// Refresh tokens and the deny-list on the SQLite store, with a clock the test moves:
// idle and absolute lifetimes, rotation, the grace period, reuse revoking the family,
// and a denial made through one store handle reaching another (another process).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>

#include "gatehouse/lifecycle.hpp"
#include "gatehouse/store.hpp"

namespace fs = std::filesystem;
using gatehouse::RotateStatus;

namespace {

class Lifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "gatehouse-lifecycle-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    store_ = open();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  std::shared_ptr<gatehouse::TokenStore> open() {
    std::shared_ptr<gatehouse::UserStore> s = gatehouse::open_sqlite_store(dir_ / "g.db");
    return std::dynamic_pointer_cast<gatehouse::TokenStore>(s);
  }
  gatehouse::RefreshTokens tokens(std::int64_t grace = 5) {
    gatehouse::RefreshTokenOptions o;
    o.idle_seconds = 100;
    o.absolute_seconds = 250;
    o.grace_seconds = grace;
    o.clock = [this] { return now_; };
    return gatehouse::RefreshTokens(store_, gatehouse::generate_refresh_key(), o);
  }

  fs::path dir_;
  std::shared_ptr<gatehouse::TokenStore> store_;
  std::int64_t now_ = 1'000'000;
};

TEST_F(Lifecycle, StoresOnlyTheHash) {
  auto rt = tokens();
  const auto t = rt.issue("johndoe", "me items");
  EXPECT_EQ(t.size(), 43u);  // 256 bits, base64url
  EXPECT_FALSE(store_->find_refresh_token(t, now_));
  auto found = store_->find_refresh_token(gatehouse::RefreshTokens::hash(t), now_);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->username, "johndoe");
  EXPECT_EQ(found->scope, "me items");
  EXPECT_NE(rt.issue("johndoe", "me"), t);
}

TEST_F(Lifecycle, RotationGraceAndReuse) {
  auto rt = tokens();
  const auto t0 = rt.issue("johndoe", "me");
  auto r1 = rt.rotate(t0, "me");
  ASSERT_EQ(r1.status, RotateStatus::rotated);
  now_ += 4;  // within the grace period: the same successor
  auto again = rt.rotate(t0, "me");
  EXPECT_EQ(again.status, RotateStatus::replayed);
  EXPECT_EQ(again.token, r1.token);
  now_ += 1;  // 5 s after: reuse, the family goes
  EXPECT_EQ(rt.rotate(t0, "me").status, RotateStatus::reused);
  EXPECT_EQ(rt.rotate(r1.token, "me").status, RotateStatus::unknown);
}

TEST_F(Lifecycle, NoGraceMeansAnySecondUseIsReuse) {
  auto rt = tokens(0);
  const auto t0 = rt.issue("johndoe", "me");
  ASSERT_EQ(rt.rotate(t0, "me").status, RotateStatus::rotated);
  EXPECT_EQ(rt.rotate(t0, "me").status, RotateStatus::reused);
}

TEST_F(Lifecycle, IdleAndAbsoluteLifetimes) {
  auto rt = tokens();
  const auto idle = rt.issue("johndoe", "me");
  now_ += 101;
  EXPECT_EQ(rt.rotate(idle, "me").status, RotateStatus::unknown);

  auto t = rt.issue("johndoe", "me");  // family ends 250 s from now
  for (int i = 0; i < 2; ++i) {
    now_ += 90;
    auto r = rt.rotate(t, "me");
    ASSERT_EQ(r.status, RotateStatus::rotated);
    t = r.token;
  }
  now_ += 71;  // used 90 s ago (idle 100 s), but 251 s after the login
  EXPECT_EQ(rt.rotate(t, "me").status, RotateStatus::unknown);
}

TEST_F(Lifecycle, RevokeTakesTheWholeFamilyEvenFromASpentToken) {
  auto rt = tokens();
  const auto t0 = rt.issue("johndoe", "me");
  const auto t1 = rt.rotate(t0, "me").token;
  EXPECT_TRUE(rt.revoke(t0));
  EXPECT_FALSE(rt.find(t1));
  EXPECT_FALSE(rt.revoke("garbage"));
}

TEST_F(Lifecycle, DenialReachesAnotherHandleOnSync) {
  gatehouse::DenyList here(store_, [this] { return now_; });
  gatehouse::DenyList there(open(), [this] { return now_; });
  gatehouse::VerifiedToken token;
  token.signing_input = std::string(32, '\x07');
  token.claims["exp"] = now_ + 60;
  gatehouse::VerifiedToken other = token;
  other.signing_input[0] = '\x08';
  EXPECT_FALSE(there.denied(token));
  here.deny(token);
  EXPECT_TRUE(here.denied(token));
  EXPECT_FALSE(there.denied(token));  // until it reads the store
  there.sync();
  EXPECT_TRUE(there.denied(token));
  EXPECT_FALSE(there.denied(other));
  EXPECT_EQ(gatehouse::DenyList::key(token).size(), 64u);
}

}  // namespace
