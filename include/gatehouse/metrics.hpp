// Prometheus metrics, cheap enough for every request.
//
// The per-request series (requests by route and status, latency by route, store
// operations) live in per-thread shards: recording one is a few relaxed atomic adds
// on cache lines no other thread writes, with no lock and no allocation. Other
// counters (logins, tokens) are single relaxed atomics. Everything is summed only
// when /metrics is scraped, which renders the Prometheus text format 0.0.4.
//
// Registration (counter(), gauge(), set_routes()) takes a lock and is meant for
// start-up; the references it returns stay valid as long as the Metrics object.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gatehouse {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t value() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// A histogram with fixed bucket bounds (seconds), observed in nanoseconds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds_seconds);
  void observe(std::chrono::nanoseconds d) noexcept;
  [[nodiscard]] const std::vector<double>& bounds() const noexcept { return bounds_; }
  // Per-bucket (not cumulative) counts, the last one for +Inf; and the sum in ns.
  [[nodiscard]] std::vector<std::uint64_t> buckets() const;
  [[nodiscard]] std::uint64_t sum_ns() const noexcept {
    return sum_ns_.load(std::memory_order_relaxed);
  }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> bounds_ns_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> sum_ns_{0};
};

// Why a password login ended as it did. `inactive`: the password was right but the
// user is disabled (the tutorial still answers with a token, as FastAPI's does).
enum class LoginOutcome { ok, wrong_password, unknown_user, throttled, inactive };
inline constexpr std::size_t kLoginOutcomes = 5;

// The store operations timed by instrument_store (store.hpp).
enum class StoreOp {
  find,
  add,
  set_disabled,
  set_password_hash,
  replace_password_hash,
  remove,
  list,
  setting,
  set_setting,
  setting_or_init,
  replace_setting,
  signing_keys,
  rotate_signing_key,
  retire_signing_key
};
inline constexpr std::size_t kStoreOps = 14;

// A registration that ends (the gauge disappears from /metrics) when destroyed.
class Registration {
 public:
  Registration() = default;
  explicit Registration(std::function<void()> release) : release_(std::move(release)) {}
  Registration(Registration&& o) noexcept : release_(std::move(o.release_)) {
    o.release_ = nullptr;
  }
  Registration& operator=(Registration&& o) noexcept {
    if (this != &o) {
      reset();
      release_ = std::move(o.release_);
      o.release_ = nullptr;
    }
    return *this;
  }
  ~Registration() { reset(); }
  void reset() {
    if (release_) release_();
    release_ = nullptr;
  }

 private:
  std::function<void()> release_;
};

class Metrics {
 public:
  // The request-latency buckets, seconds: 100 us to 10 s.
  static const std::vector<double>& latency_buckets();

  // The pseudo-routes of requests no declared route handled.
  static constexpr std::string_view kUnmatched = "unmatched";  // 404, 405, slash redirects
  static constexpr std::string_view kRejected = "rejected";    // refused by the HTTP parser

  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // ---- registration (start-up) ----
  // A counter series; the same name and labels give the same counter.
  Counter& counter(const std::string& name, const std::string& help,
                   const MetricLabels& labels = {});
  // A histogram series (seconds); the same name and labels give the same histogram.
  Histogram& histogram(const std::string& name, const std::string& help,
                       const MetricLabels& labels = {},
                       const std::vector<double>& bounds = latency_buckets());
  // A value read at scrape time (queue depth, open connections...), until the
  // returned registration is destroyed. `read` must be cheap and thread-safe.
  [[nodiscard]] Registration gauge(const std::string& name, const std::string& help,
                                   const MetricLabels& labels, std::function<double()> read);

  // The routes requests are counted under: slot i is the route with Route::index i;
  // slots past them are "unmatched" and "rejected". Called by the server before it
  // accepts; counts recorded under an earlier table are kept.
  void set_routes(const std::vector<std::pair<std::string, std::string>>& method_and_path);
  [[nodiscard]] std::size_t unmatched_slot() const noexcept;
  [[nodiscard]] std::size_t rejected_slot() const noexcept;

  // ---- recording (any thread, lock-free) ----
  void request(std::size_t slot, unsigned status, std::chrono::nanoseconds took) noexcept;
  void login(LoginOutcome outcome) noexcept;
  void store_op(StoreOp op, std::chrono::nanoseconds took, bool failed) noexcept;
  // The token counters, by grant and by client. `client` is a registered client's id
  // (an authenticated one, or the client_id of a token this server signed), or
  // kNoClient. Past kMaxClientLabels different ids, further ones share kOtherClients, so
  // the series stay bounded. Each call takes the registration lock: look a fixed
  // series up once and keep it; a client's per request is fine on /token.
  // Parentheses are not allowed in client ids, so neither value is ever a client's.
  static constexpr std::string_view kNoClient = "(none)";
  static constexpr std::string_view kOtherClients = "(other)";
  static constexpr std::size_t kMaxClientLabels = 1000;
  // Access tokens handed out, by grant ("password", "refresh_token",
  // "client_credentials").
  Counter& tokens_issued(std::string_view grant, std::string_view client = kNoClient);
  // Refresh-token grants by outcome: "rotated" (a new refresh token), "replayed" (the
  // same successor again, within the grace period), "reused" (a spent token after the
  // grace period: its whole login was revoked).
  Counter& tokens_refreshed(std::string_view outcome, std::string_view client = kNoClient);
  // Tokens revoked at /revoke (RFC 7009), by token type ("access_token",
  // "refresh_token").
  Counter& tokens_revoked(std::string_view token_type, std::string_view client = kNoClient);

  // ---- reading ----
  // The whole exposition, text format 0.0.4.
  [[nodiscard]] std::string render() const;
  [[nodiscard]] std::uint64_t logins(LoginOutcome outcome) const noexcept;
  [[nodiscard]] std::uint64_t requests(std::size_t slot, unsigned status) const noexcept;

  struct Impl;

 private:
  // `client`, or kOtherClients once kMaxClientLabels others are in use.
  std::string client_label(std::string_view client);

  std::unique_ptr<Impl> impl_;
};

// The content type of render()'s output.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

}  // namespace gatehouse
