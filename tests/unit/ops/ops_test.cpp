// Issue 12's operations pieces: the login throttle's options replaced at SIGHUP, the
// token counters' bounded client labels, and the background poll of the client
// registry and the deny-list.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>

#include "gatehouse/log.hpp"
#include "gatehouse/metrics.hpp"
#include "gatehouse/poller.hpp"
#include "gatehouse/throttle.hpp"

namespace {

using gatehouse::LoginThrottle;
using gatehouse::ThrottleOptions;
using std::chrono::seconds;

ThrottleOptions user_limit(std::uint32_t failures, bool enabled = true) {
  ThrottleOptions o;
  o.enabled = enabled;
  o.user = {failures, seconds(3600)};
  o.client = {0, seconds(600)};
  o.base_delay = std::chrono::milliseconds(60000);
  o.max_delay = seconds(900);
  return o;
}

TEST(ThrottleReload, NewLimitsApplyToTheNextLoginAndKeepTheCounts) {
  std::int64_t now = 1'700'000'000'000;
  LoginThrottle t(user_limit(100), gatehouse::memory_throttle_counters(), [&now] { return now; });
  for (int i = 0; i < 3; ++i) t.failed("bob", "10.0.0.1");
  EXPECT_EQ(t.retry_after("bob", "10.0.0.1"), seconds(0));  // 3 of 100
  t.set_options(user_limit(3));
  EXPECT_EQ(t.options().user.failures, 3u);
  EXPECT_EQ(t.options().base_delay, std::chrono::milliseconds(60000));
  t.failed("bob", "10.0.0.1");  // the fourth, against a limit of 3: blocked
  EXPECT_GT(t.retry_after("bob", "10.0.0.1"), seconds(60));
  EXPECT_EQ(t.retry_after("alice", "10.0.0.1"), seconds(0));
}

TEST(ThrottleReload, TurningItOffAndOnAgain) {
  std::int64_t now = 1'700'000'000'000;
  LoginThrottle t(user_limit(1, false), gatehouse::memory_throttle_counters(),
                  [&now] { return now; });
  t.failed("bob", "");
  t.failed("bob", "");
  EXPECT_EQ(t.retry_after("bob", ""), seconds(0));  // off: nothing counted
  t.set_options(user_limit(1));
  t.failed("bob", "");
  EXPECT_GT(t.retry_after("bob", ""), seconds(0));
  t.set_options(user_limit(1, false));
  EXPECT_EQ(t.retry_after("bob", ""), seconds(0));
}

TEST(TokenMetrics, ClientLabelsAreBoundedThenShareOther) {
  gatehouse::Metrics m;
  const auto cap = gatehouse::Metrics::kMaxClientLabels;
  for (std::size_t i = 0; i < cap; ++i)
    m.tokens_issued("client_credentials", std::string("c").append(std::to_string(i))).inc();
  // Known ids keep their series; new ones past the cap share "other".
  m.tokens_issued("client_credentials", "c7").inc();
  m.tokens_issued("client_credentials", "late-1").inc();
  m.tokens_revoked("access_token", "late-2").inc();
  EXPECT_EQ(&m.tokens_issued("client_credentials", "late-3"),
            &m.tokens_issued("client_credentials", "(other)"));
  const std::string text = m.render();
  EXPECT_NE(
      text.find("gatehouse_tokens_issued_total{grant=\"client_credentials\",client=\"c7\"} 2"),
      std::string::npos);
  EXPECT_NE(
      text.find("gatehouse_tokens_issued_total{grant=\"client_credentials\",client=\"(other)\"} 1"),
      std::string::npos);
  EXPECT_NE(
      text.find("gatehouse_tokens_revoked_total{token_type=\"access_token\",client=\"(other)\"} 1"),
      std::string::npos);
  EXPECT_EQ(text.find("late-"), std::string::npos);
  EXPECT_NE(text.find("gatehouse_tokens_issued_total{grant=\"password\",client=\"(none)\"} 0"),
            std::string::npos);
}

// Counts the rounds of a poll and lets a test wait for a number of them.
struct Rounds {
  std::mutex mutex;
  std::condition_variable cv;
  int count = 0;
  void add() {
    {
      std::lock_guard lock(mutex);
      ++count;
    }
    cv.notify_all();
  }
  bool reach(int n) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return count >= n; });
  }
  int now() {
    std::lock_guard lock(mutex);
    return count;
  }
};

TEST(Poller, PollsUntilStoppedAndAFailingRoundDoesNotEndIt) {
  Rounds rounds;
  gatehouse::Poller poller;
  EXPECT_FALSE(poller.running());
  EXPECT_TRUE(poller.start(std::chrono::milliseconds(1), [&] {
    rounds.add();
    if (rounds.now() == 2) throw std::runtime_error("the store is down");
  }));
  EXPECT_TRUE(poller.running());
  ASSERT_TRUE(rounds.reach(5));  // past the round that threw
  poller.stop();
  EXPECT_FALSE(poller.running());
  const int stopped_at = rounds.now();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(rounds.now(), stopped_at);  // no round after stop()
  poller.stop();                        // twice is fine
}

TEST(Poller, StartsOnceAndAgainAfterAStop) {
  Rounds first;
  Rounds second;
  gatehouse::Poller poller;
  ASSERT_TRUE(poller.start(std::chrono::milliseconds(1), [&] { first.add(); }));
  EXPECT_FALSE(poller.start(std::chrono::milliseconds(1), [&] { second.add(); }));
  ASSERT_TRUE(first.reach(2));
  poller.stop();
  ASSERT_TRUE(poller.start(std::chrono::milliseconds(1), [&] { second.add(); }));
  EXPECT_TRUE(second.reach(2));
}

TEST(Poller, DestroyingItWakesAWaitingThread) {
  // An hour between rounds: the destructor must not wait for the next one (a broken
  // stop would hang here until ctest's timeout).
  std::atomic<int> calls{0};
  {
    gatehouse::Poller poller;
    poller.start(std::chrono::hours(1), [&] { ++calls; });
  }
  EXPECT_EQ(calls.load(), 0);
}

// The access line's exact layout (field order, separators), which log shippers that
// parse by position rely on; the line-opening code is shared with events.
TEST(LogLayout, AccessAndEventLinesKeepTheirExactLayout) {
  struct Sink : gatehouse::LogSink {
    std::mutex mutex;
    std::string text;
    void write(std::string_view lines) override {
      std::lock_guard lock(mutex);
      text.append(lines);
    }
  };
  auto sink = std::make_shared<Sink>();
  {
    gatehouse::Logger log(sink);
    log.access({.request_id = "r1",
                .remote = "127.0.0.1",
                .method = "GET",
                .path = "/users/me/",
                .route = "/users/me/",
                .status = 200,
                .duration = std::chrono::microseconds(430),
                .user = "johndoe"});
    log.access({.request_id = "r2", .method = "GET", .path = "/x", .status = 404});
    log.event(gatehouse::LogLevel::warning, "reload", {{"ok", false}});
  }
  const std::string t = R"(\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z",)";
  const std::regex expected(
      t + R"("level":"info","event":"access","request_id":"r1","remote":"127.0.0.1",)" +
      R"("method":"GET","path":"/users/me/","route":"/users/me/","status":200,)" +
      R"("duration_us":430,"user":"johndoe"\}\n)" + t +
      R"("level":"info","event":"access","request_id":"r2","remote":"","method":"GET",)" +
      R"("path":"/x","route":"","status":404,"duration_us":0\}\n)" + t +
      R"("level":"warning","event":"reload","ok":false\}\n)");
  EXPECT_TRUE(std::regex_match(sink->text, expected)) << sink->text;
}

}  // namespace
