// The metrics registry: what /metrics shows after the calls a server and handlers make.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gatehouse/health.hpp"
#include "gatehouse/metrics.hpp"
#include "gatehouse/operations.hpp"

using gatehouse::LoginOutcome;
using gatehouse::Metrics;
using namespace std::chrono_literals;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST(Metrics, CountersAreSharedByNameAndLabels) {
  Metrics m;
  auto& a = m.counter("demo_total", "A demo.", {{"kind", "x"}});
  auto& b = m.counter("demo_total", "A demo.", {{"kind", "x"}});
  auto& c = m.counter("demo_total", "A demo.", {{"kind", "y"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  a.inc();
  b.inc(2);
  const auto text = m.render();
  EXPECT_TRUE(has_line(text, "# HELP demo_total A demo.")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE demo_total counter")) << text;
  EXPECT_TRUE(has_line(text, "demo_total{kind=\"x\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "demo_total{kind=\"y\"} 0")) << text;
}

TEST(Metrics, RequestsAreCountedByRouteTemplateAndStatus) {
  Metrics m;
  m.set_routes({{"GET", "/users/me/"}, {"POST", "/token"}});
  m.request(0, 200, 300us);
  m.request(0, 200, 2ms);
  m.request(0, 401, 100us);
  m.request(1, 503, 1ms);
  m.request(m.unmatched_slot(), 404, 10us);
  m.request(m.rejected_slot(), 431, 0us);
  m.request(99, 404, 10us);  // out of range: unmatched
  EXPECT_EQ(m.requests(0, 200), 2u);
  EXPECT_EQ(m.requests(0, 401), 1u);
  EXPECT_EQ(m.requests(m.unmatched_slot(), 404), 2u);
  const auto text = m.render();
  EXPECT_TRUE(has_line(text,
                       "gatehouse_http_requests_total{method=\"GET\",route=\"/users/me/\",status="
                       "\"200\"} 2"))
      << text;
  EXPECT_TRUE(has_line(
      text, "gatehouse_http_requests_total{method=\"\",route=\"unmatched\",status=\"404\"} 2"));
  EXPECT_TRUE(has_line(
      text, "gatehouse_http_requests_total{method=\"\",route=\"rejected\",status=\"431\"} 1"));
  // Cumulative buckets: 100 us and 300 us are under 0.0005, 2 ms under 0.0025.
  EXPECT_TRUE(has_line(text,
                       "gatehouse_http_request_duration_seconds_bucket{method=\"GET\",route=\"/"
                       "users/me/\",le=\"0.0005\"} 2"))
      << text;
  EXPECT_TRUE(has_line(text,
                       "gatehouse_http_request_duration_seconds_bucket{method=\"GET\",route=\"/"
                       "users/me/\",le=\"0.0025\"} 3"));
  EXPECT_TRUE(has_line(text,
                       "gatehouse_http_request_duration_seconds_count{method=\"GET\",route=\"/"
                       "users/me/\"} 3"));
  // A status outside the known list is counted as "other", not dropped.
  m.request(0, 299, 1us);
  EXPECT_NE(m.render().find("status=\"other\"} 1"), std::string::npos);
}

TEST(Metrics, IncrementsFromManyThreadsAddUp) {
  Metrics m;
  m.set_routes({{"GET", "/a"}});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&m] {
      for (int i = 0; i < 10000; ++i) {
        m.request(0, 200, 1us);
        m.login(LoginOutcome::ok);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.requests(0, 200), 80000u);
  EXPECT_EQ(m.logins(LoginOutcome::ok), 80000u);
}

TEST(Metrics, SettingTheSameRoutesAgainKeepsTheCounts) {
  Metrics m;
  m.set_routes({{"GET", "/a"}});
  m.request(0, 200, 1us);
  m.set_routes({{"GET", "/a"}});
  EXPECT_EQ(m.requests(0, 200), 1u);
  m.set_routes({{"GET", "/a"}, {"GET", "/b"}});  // a new table; old counts still rendered
  m.request(0, 200, 1us);
  EXPECT_TRUE(has_line(
      m.render(), "gatehouse_http_requests_total{method=\"GET\",route=\"/a\",status=\"200\"} 2"));
}

TEST(Metrics, EveryLoginOutcomeIsShownFromZero) {
  Metrics m;
  m.login(LoginOutcome::wrong_password);
  m.login(LoginOutcome::throttled);
  const auto text = m.render();
  EXPECT_TRUE(has_line(text, "gatehouse_logins_total{outcome=\"ok\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "gatehouse_logins_total{outcome=\"wrong_password\"} 1"));
  EXPECT_TRUE(has_line(text, "gatehouse_logins_total{outcome=\"unknown_user\"} 0"));
  EXPECT_TRUE(has_line(text, "gatehouse_logins_total{outcome=\"throttled\"} 1"));
  EXPECT_TRUE(has_line(text, "gatehouse_logins_total{outcome=\"inactive\"} 0"));
  EXPECT_TRUE(
      has_line(text, "gatehouse_tokens_issued_total{grant=\"password\",client=\"(none)\"} 0"));
  EXPECT_NE(text.find("gatehouse_build_info{version=\""), std::string::npos);
}

TEST(Metrics, LabelValuesAreEscaped) {
  Metrics m;
  m.counter("odd_total", "Odd labels.", {{"v", "a\"b\\c\nd"}}).inc();
  EXPECT_TRUE(has_line(m.render(), "odd_total{v=\"a\\\"b\\\\c\\nd\"} 1")) << m.render();
}

TEST(Metrics, GaugesAreReadAtScrapeTimeUntilUnregistered) {
  Metrics m;
  double depth = 3;
  auto reg = m.gauge("queue_depth", "Depth.", {}, [&depth] { return depth; });
  EXPECT_TRUE(has_line(m.render(), "queue_depth 3"));
  depth = 7;
  EXPECT_TRUE(has_line(m.render(), "queue_depth 7"));
  reg.reset();
  EXPECT_FALSE(has_line(m.render(), "queue_depth 7"));
}

TEST(Metrics, HistogramsAreCumulative) {
  Metrics m;
  auto& h = m.histogram("wait_seconds", "Wait.", {}, {0.001, 0.01});
  h.observe(500us);
  h.observe(5ms);
  h.observe(50ms);
  const auto text = m.render();
  EXPECT_TRUE(has_line(text, "# TYPE wait_seconds histogram"));
  EXPECT_TRUE(has_line(text, "wait_seconds_bucket{le=\"0.001\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "wait_seconds_bucket{le=\"0.01\"} 2"));
  EXPECT_TRUE(has_line(text, "wait_seconds_bucket{le=\"+Inf\"} 3"));
  EXPECT_TRUE(has_line(text, "wait_seconds_count 3"));
  EXPECT_TRUE(has_line(text, "wait_seconds_sum 0.0555")) << text;
}

namespace {

// A store whose lookups fail, to see the error counted and the exception kept.
class BrokenStore : public gatehouse::UserStore {
 public:
  gatehouse::UserPtr find(std::string_view) override { throw std::runtime_error("down"); }
  gatehouse::StoreStatus add(const gatehouse::User&) override { return gatehouse::StoreStatus::ok; }
  gatehouse::StoreStatus set_disabled(std::string_view, bool) override {
    return gatehouse::StoreStatus::ok;
  }
  gatehouse::StoreStatus set_password_hash(std::string_view, std::string_view) override {
    return gatehouse::StoreStatus::ok;
  }
  gatehouse::StoreStatus replace_password_hash(std::string_view, std::string_view,
                                               std::string_view) override {
    return gatehouse::StoreStatus::ok;
  }
  gatehouse::StoreStatus remove(std::string_view) override {
    return gatehouse::StoreStatus::not_found;
  }
  std::vector<gatehouse::User> list() override { return {}; }
  std::optional<std::string> setting(std::string_view) override { return "v"; }
  void set_setting(std::string_view, std::string_view) override {}
  std::string setting_or_init(std::string_view, std::string_view v) override {
    return std::string(v);
  }
  bool replace_setting(std::string_view, std::optional<std::string_view>,
                       std::string_view) override {
    return false;
  }
  std::vector<gatehouse::StoredKey> signing_keys() override { return {}; }
  bool rotate_signing_key(const gatehouse::StoredKey&, std::optional<std::string_view>) override {
    return true;
  }
  gatehouse::StoreStatus retire_signing_key(std::string_view, std::int64_t) override {
    return gatehouse::StoreStatus::not_found;
  }
  bool created() const override { return true; }
};

}  // namespace

TEST(Metrics, InstrumentedStoreTimesCallsAndCountsFailures) {
  auto m = std::make_shared<Metrics>();
  auto store = gatehouse::instrument_store(std::make_shared<BrokenStore>(), m);
  EXPECT_THROW((void)store->find("x"), std::runtime_error);
  EXPECT_EQ(store->setting("k"), "v");
  EXPECT_EQ(store->remove("x"), gatehouse::StoreStatus::not_found);
  EXPECT_TRUE(store->created());
  const auto text = m->render();
  EXPECT_TRUE(has_line(text, "gatehouse_store_errors_total{op=\"find\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "gatehouse_store_errors_total{op=\"setting\"} 0"));
  EXPECT_TRUE(has_line(text, "gatehouse_store_operation_duration_seconds_count{op=\"remove\"} 1"));
  EXPECT_EQ(text.find("op=\"list\""), std::string::npos);  // never called: not shown
}

TEST(Readiness, ChecksRunInOrderAndAnExceptionIsAFailure) {
  gatehouse::Readiness r;
  auto a = r.add("a", [] { return gatehouse::CheckResult{true, "fine"}; });
  auto b = r.add("b", []() -> gatehouse::CheckResult { throw std::runtime_error("gone"); });
  auto results = r.run();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].first, "a");
  EXPECT_TRUE(results[0].second.ok);
  EXPECT_FALSE(results[1].second.ok);
  EXPECT_EQ(results[1].second.detail, "gone");
  b.reset();
  EXPECT_EQ(r.run().size(), 1u);
}

TEST(ReloadRegistry, ReportsWhatEachHookDidAndKeepsGoingAfterAFailure) {
  gatehouse::ReloadRegistry reload;
  int level = 0;
  auto h1 = reload.add("keys", []() -> std::string { throw std::runtime_error("unreadable"); });
  auto h2 = reload.add("log-level", [&level] {
    ++level;
    return std::string("info -> debug");
  });
  auto done = reload.reload();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].name, "keys");
  EXPECT_FALSE(done[0].ok);
  EXPECT_EQ(done[0].message, "unreadable");
  EXPECT_TRUE(done[1].ok);
  EXPECT_EQ(done[1].message, "info -> debug");
  EXPECT_EQ(level, 1);
  h1.reset();
  EXPECT_EQ(reload.reload().size(), 1u);
}
