// Issue 12's operations pieces: the login throttle's options replaced at SIGHUP, and
// the token counters' bounded client labels.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "gatehouse/metrics.hpp"
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
    m.tokens_issued("client_credentials", "c" + std::to_string(i)).inc();
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

}  // namespace
