// Brute-force throttling (throttle.hpp) with an injected clock, over the in-memory
// counters and over the SQLite store's login_failures table; the byte-bounded LRU the
// caches use; and the failure-time floor of PasswordHasher.
#include "gatehouse/throttle.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "gatehouse/password.hpp"
#include "gatehouse/store.hpp"
#include "store/lru.hpp"

namespace {

using gatehouse::LoginThrottle;
using gatehouse::ThrottleOptions;
using std::chrono::seconds;

struct FakeClock {
  std::int64_t now_ms = 1'700'000'000'000;
  void advance(std::chrono::milliseconds d) { now_ms += d.count(); }
};

ThrottleOptions options(std::uint32_t user_failures, std::uint32_t client_failures) {
  ThrottleOptions o;
  o.user = {user_failures, seconds(3600)};
  o.client = {client_failures, seconds(600)};
  o.base_delay = std::chrono::milliseconds(1000);
  o.max_delay = seconds(900);
  return o;
}

struct Harness {
  FakeClock clock;
  LoginThrottle throttle;
  explicit Harness(ThrottleOptions o, std::shared_ptr<gatehouse::ThrottleCounters> counters =
                                          gatehouse::memory_throttle_counters())
      : throttle(o, std::move(counters), [this] { return clock.now_ms; }) {}
};

TEST(Throttle, FreeUntilTheThresholdThenBlocksForTheBaseDelay) {
  Harness h(options(3, 0));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(h.throttle.retry_after("johndoe", "10.0.0.1"), seconds(0));
    h.throttle.failed("johndoe", "10.0.0.1");
  }
  EXPECT_EQ(h.throttle.retry_after("johndoe", "10.0.0.1"), seconds(0));
  h.throttle.failed("johndoe", "10.0.0.1");  // the third: blocked for 1 s
  EXPECT_EQ(h.throttle.retry_after("johndoe", "10.0.0.1"), seconds(1));
  EXPECT_EQ(h.throttle.retry_after("johndoe", "10.0.0.2"), seconds(1));  // any client
  EXPECT_EQ(h.throttle.retry_after("alice", "10.0.0.1"), seconds(0));    // not others
  EXPECT_EQ(h.throttle.refused(), 2u);
  h.clock.advance(std::chrono::milliseconds(1000));
  EXPECT_EQ(h.throttle.retry_after("johndoe", "10.0.0.1"), seconds(0));
}

TEST(Throttle, EachFurtherFailureDoublesTheBlockUpToTheCap) {
  Harness h(options(3, 0));
  for (int i = 0; i < 3; ++i) h.throttle.failed("victim", "");
  std::int64_t expected = 1;
  for (int i = 0; i < 12; ++i) {
    const auto wait = h.throttle.retry_after("victim", "");
    EXPECT_EQ(wait.count(), std::min<std::int64_t>(expected, 900)) << "after " << (i + 3);
    h.clock.advance(wait);  // the attacker waits exactly as told, then fails again
    h.throttle.failed("victim", "");
    expected *= 2;
  }
  EXPECT_EQ(h.throttle.retry_after("victim", ""), seconds(900));  // capped, never permanent
  h.clock.advance(seconds(900));
  EXPECT_EQ(h.throttle.retry_after("victim", ""), seconds(0));
}

TEST(Throttle, FailuresLeakAwayOverTheWindow) {
  Harness h(options(3, 0));
  h.throttle.failed("mistyper", "");
  h.throttle.failed("mistyper", "");
  h.clock.advance(seconds(3600));  // an hour later both have leaked away
  h.throttle.failed("mistyper", "");
  h.throttle.failed("mistyper", "");
  EXPECT_EQ(h.throttle.retry_after("mistyper", ""), seconds(0));
  // One failure every 20 minutes (the leak rate: 3 per hour) never adds up.
  for (int i = 0; i < 50; ++i) {
    h.clock.advance(seconds(1200));
    h.throttle.failed("steady", "");
    EXPECT_EQ(h.throttle.retry_after("steady", ""), seconds(0)) << i;
  }
}

TEST(Throttle, SuccessClearsTheUserButNotTheClient) {
  Harness h(options(3, 4));
  h.throttle.failed("johndoe", "10.0.0.1");
  h.throttle.failed("johndoe", "10.0.0.1");
  h.throttle.succeeded("johndoe");
  h.throttle.failed("johndoe", "10.0.0.1");
  h.throttle.failed("johndoe", "10.0.0.1");
  EXPECT_EQ(h.throttle.retry_after("johndoe", "10.0.0.9"), seconds(0));  // two since success
  // The client has four failures: it is blocked, for every name.
  EXPECT_EQ(h.throttle.retry_after("someone-else", "10.0.0.1"), seconds(1));
  EXPECT_EQ(h.throttle.retry_after("johndoe", "10.0.0.2"), seconds(0));
}

TEST(Throttle, AnIpv6ClientIsCountedByItsSlash64) {
  // One subscriber holds a whole /64: rotating through its addresses must not reset
  // the per-client score, while a neighbouring /64 is someone else.
  Harness h(options(0, 3));
  h.throttle.failed("a", "2001:db8:1:2::1");
  h.throttle.failed("b", "2001:db8:1:2:ffff:0:0:7");
  h.throttle.failed("c", "2001:db8:1:2:1234:5678:9abc:def0");
  EXPECT_EQ(h.throttle.retry_after("d", "2001:db8:1:2::99"), seconds(1));
  EXPECT_EQ(h.throttle.retry_after("d", "2001:db8:1:3::1"), seconds(0));
  // An IPv4-mapped address is its IPv4 address.
  EXPECT_EQ(LoginThrottle::client_key("::ffff:10.0.0.1"), LoginThrottle::client_key("10.0.0.1"));
  EXPECT_NE(LoginThrottle::client_key("10.0.0.1"), LoginThrottle::client_key("10.0.0.2"));
  // Not an address: its text.
  EXPECT_EQ(LoginThrottle::client_key("unix"), "client:unix");
}

TEST(Throttle, ZeroFailuresOrDisabledNeverBlocks) {
  Harness none(options(0, 0));
  ThrottleOptions off = options(1, 1);
  off.enabled = false;
  Harness disabled(off);
  for (int i = 0; i < 100; ++i) {
    none.throttle.failed("x", "10.0.0.1");
    disabled.throttle.failed("x", "10.0.0.1");
  }
  EXPECT_EQ(none.throttle.retry_after("x", "10.0.0.1"), seconds(0));
  EXPECT_EQ(disabled.throttle.retry_after("x", "10.0.0.1"), seconds(0));
}

TEST(Throttle, UserKeysHaveAFixedSizeWhateverTheName) {
  EXPECT_EQ(LoginThrottle::user_key(std::string(60000, 'u')).size(),
            LoginThrottle::user_key("a").size());
  EXPECT_NE(LoginThrottle::user_key("a"), LoginThrottle::user_key("b"));
}

TEST(Throttle, MemoryCountersStayWithinTheirBudget) {
  // An attack from a million addresses: the oldest counters go, memory does not grow.
  gatehouse::ByteBudgetLru<int> lru(64 * 1024);
  for (int i = 0; i < 100000; ++i) {
    std::string key = "client:198.51.";
    key += std::to_string(i);
    lru.put(key, i, 200);
    ASSERT_LE(lru.used_bytes(), lru.budget_bytes());
  }
  EXPECT_EQ(lru.size(), 64u * 1024 / 200);
  EXPECT_EQ(lru.get("client:198.51.0"), nullptr);      // the oldest went first
  EXPECT_NE(lru.get("client:198.51.99999"), nullptr);  // the newest stayed
  // And through the throttle: still answers, still blocks a fresh burst.
  Harness h(options(0, 3), gatehouse::memory_throttle_counters(16 * 1024));
  for (int i = 0; i < 20000; ++i) {
    std::string client = "10.1.";
    client += std::to_string(i);
    h.throttle.failed("u", client);
  }
  for (int i = 0; i < 3; ++i) h.throttle.failed("u", "203.0.113.5");
  EXPECT_EQ(h.throttle.retry_after("u", "203.0.113.5"), seconds(1));
}

TEST(ByteBudgetLru, RefusesAnEntryLargerThanAnEighthAndRecencyCounts) {
  gatehouse::ByteBudgetLru<std::string> lru(800);
  EXPECT_FALSE(lru.put("huge", "x", 101));
  EXPECT_EQ(lru.size(), 0u);
  for (char c = '0'; c < '8'; ++c) EXPECT_TRUE(lru.put(std::string("k") + c, "v", 100));
  ASSERT_NE(lru.get("k0"), nullptr);  // k0 is now the most recent
  EXPECT_TRUE(lru.put("k8", "v", 100));
  EXPECT_NE(lru.get("k0"), nullptr);
  EXPECT_EQ(lru.get("k1"), nullptr);  // the least recently used went
  lru.clear();
  EXPECT_EQ(lru.used_bytes(), 0u);
}

TEST(Throttle, SqliteStoreCountersBehaveTheSame) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("gatehouse-throttle-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  {
    std::shared_ptr<gatehouse::UserStore> store = gatehouse::open_sqlite_store(dir / "db");
    auto counters = std::dynamic_pointer_cast<gatehouse::ThrottleCounters>(store);
    ASSERT_NE(counters, nullptr);
    Harness h(options(3, 5), counters);
    for (int i = 0; i < 3; ++i) h.throttle.failed("johndoe", "10.0.0.1");
    EXPECT_EQ(h.throttle.retry_after("johndoe", "10.0.0.3"), seconds(1));
    h.clock.advance(seconds(1));
    h.throttle.failed("johndoe", "10.0.0.1");
    EXPECT_EQ(h.throttle.retry_after("johndoe", "10.0.0.3"), seconds(2));
    h.throttle.succeeded("johndoe");
    EXPECT_EQ(h.throttle.retry_after("johndoe", "10.0.0.3"), seconds(0));
    h.throttle.failed("x", "10.0.0.1");  // the client's fifth
    EXPECT_EQ(h.throttle.retry_after("anyone", "10.0.0.1"), seconds(1));
    // A second store on the same file (another process) sees the same counters.
    std::shared_ptr<gatehouse::UserStore> other = gatehouse::open_sqlite_store(dir / "db");
    Harness h2(options(3, 5), std::dynamic_pointer_cast<gatehouse::ThrottleCounters>(other));
    h2.clock = h.clock;
    EXPECT_EQ(h2.throttle.retry_after("anyone", "10.0.0.1"), seconds(1));
    counters->purge(h.clock.now_ms + 1'000'000);
    EXPECT_EQ(h2.throttle.retry_after("anyone", "10.0.0.1"), seconds(0));
  }
  std::filesystem::remove_all(dir);
}

// ---- failure-time floor -------------------------------------------------------------

TEST(FailureFloor, CostKeysNameTheParameters) {
  using gatehouse::PasswordHasher;
  EXPECT_EQ(PasswordHasher::cost_key("$2b$13$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzab"),
            "bcrypt$13");
  EXPECT_EQ(PasswordHasher::cost_key("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"),
            "argon2id$m=65536,t=3,p=4");
  EXPECT_EQ(PasswordHasher::cost_key("plain"), "");
}

TEST(FailureFloor, CoversTheCostliestHashAndRisesForANewOne) {
  gatehouse::PasswordHasher hasher(gatehouse::Argon2Params{1024, 1, 1});
  hasher.set_dummy_hash("$2b$04$98vQvzwYuCGDlpa4Rcx1.u6yieFYSLAl5zYAjEkuoUWHKrRWBVJ5e");
  hasher.calibrate({});
  const auto cheap = hasher.failure_floor();
  EXPECT_GT(cheap.count(), 0);
  // A store holding a bcrypt-12 hash (256 times a bcrypt-4's work): the floor rises to
  // at least what verifying it takes.
  const auto h12 = gatehouse::PasswordHasher::hash_bcrypt("pw", 12);
  const auto t0 = std::chrono::steady_clock::now();
  (void)hasher.verify("wrong", h12);
  const auto took = std::chrono::steady_clock::now() - t0;
  hasher.calibrate({h12});
  EXPECT_GT(hasher.failure_floor(), cheap);
  EXPECT_GE(hasher.failure_floor().count(), took.count() / 2);
  // A hash seen only at a login (made after start-up) raises it too.
  const auto before = hasher.failure_floor();
  constexpr const char* k11 = "$2b$11$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzab";
  // Not from a password refused unhashed (a NUL byte): that verify cost nothing.
  hasher.note_verify(std::string("a\0b", 3), k11, std::chrono::nanoseconds(0));
  EXPECT_EQ(hasher.failure_floor(), before);
  hasher.note_verify("wrong", k11, before * 2);
  EXPECT_GE(hasher.failure_floor(), before * 3);  // 2x, times the margin 1.5
  // ... and only the first time for those parameters.
  const auto after = hasher.failure_floor();
  hasher.note_verify("wrong", k11, after * 10);
  EXPECT_EQ(hasher.failure_floor(), after);
}

}  // namespace
