// Brute-force throttling of logins, per username and per client address.
//
// Each key (a username, a client IP) has a failure score that leaks away at
// `failures` per `window` (a leaky bucket): a user who mistypes now and then, or a
// NAT whose many users do, never fills it. When a failure brings the score to
// `failures`, the key is blocked for `base_delay`, and each further failure doubles
// that, up to `max_delay`; the block always ends (there is no permanent lock-out, so
// nobody can lock a real user out for long). A blocked login is refused before any
// password is hashed. A successful login clears its username's score.
//
// Counters live behind ThrottleCounters: in memory (bounded in bytes) for one
// process, or in the store (the login_failures table) so that every instance on one
// database shares them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse {

struct ThrottlePolicy {
  std::uint32_t failures = 10;        // the score at which blocking starts; 0: no limit
  std::chrono::seconds window{3600};  // the score leaks `failures` per window
};

struct ThrottleOptions {
  bool enabled = true;
  ThrottlePolicy user{10, std::chrono::seconds(3600)};
  ThrottlePolicy client{100, std::chrono::seconds(60)};
  std::chrono::milliseconds base_delay{1000};
  std::chrono::seconds max_delay{900};
};

// Where failure scores are kept. Times are milliseconds since the Unix epoch (wall
// clock, so instances on different hosts agree). Thread-safe.
class ThrottleCounters {
 public:
  struct Hit {
    std::string key;
    double leak_ms = 0;  // milliseconds for the score to drop by one
  };
  virtual ~ThrottleCounters() = default;
  // The latest end of a block among `keys` (0: none blocked or known).
  [[nodiscard]] virtual std::int64_t blocked_until(const std::vector<std::string>& keys) = 0;
  // Adds one failure to each key, after leaking what its score lost since its last
  // update; returns the new scores, in order. Atomic per key.
  virtual std::vector<double> add_failure(const std::vector<Hit>& hits, std::int64_t now_ms) = 0;
  // Blocks `key` until `until_ms` (never shortens a longer block).
  virtual void block(const std::string& key, std::int64_t until_ms) = 0;
  // Forgets `key`.
  virtual void reset(const std::string& key) = 0;
  // Forgets keys not updated since `before_ms` and no longer blocked.
  virtual void purge(std::int64_t before_ms) = 0;
};

// Counters in this process, at most `budget_bytes` of them (least recently updated
// go first).
std::shared_ptr<ThrottleCounters> memory_throttle_counters(std::size_t budget_bytes = 4 << 20);

class LoginThrottle {
 public:
  using Clock = std::function<std::int64_t()>;  // milliseconds since the Unix epoch
  static std::int64_t system_now_ms();

  LoginThrottle(ThrottleOptions options, std::shared_ptr<ThrottleCounters> counters,
                Clock clock = &LoginThrottle::system_now_ms);

  // How long a login for `username` from `client` must wait before it may be tried;
  // zero when it may go ahead now. Never hashes anything.
  [[nodiscard]] std::chrono::seconds retry_after(std::string_view username,
                                                 std::string_view client);
  // A login for `username` from `client` failed (wrong password, unknown user).
  void failed(std::string_view username, std::string_view client);
  // A login for `username` succeeded: its score is cleared (the client's is not).
  void succeeded(std::string_view username);

  // The options in force (a copy: set_options may replace them at any time).
  [[nodiscard]] ThrottleOptions options() const { return *options_.load(); }
  // Replaces the options (SIGHUP): logins that start afterwards use the new ones. The
  // counters are kept, so a key's score counts against the new limits.
  void set_options(const ThrottleOptions& options);
  // Logins refused so far (each one without a password hash).
  [[nodiscard]] std::uint64_t refused() const noexcept { return refused_.load(); }
  // How long a key that has just reached `score` stays blocked (0: not blocked).
  [[nodiscard]] std::chrono::milliseconds delay_for(double score,
                                                    const ThrottlePolicy& policy) const;
  // The counter keys: a username by its SHA-256 (fixed size whatever its length).
  [[nodiscard]] static std::string user_key(std::string_view username);
  // A client by its IPv4 address, or the /64 of an IPv6 one (what one subscriber holds).
  [[nodiscard]] static std::string client_key(std::string_view client);

 private:
  [[nodiscard]] static std::chrono::milliseconds delay_for(double score,
                                                           const ThrottlePolicy& policy,
                                                           const ThrottleOptions& options);

  std::atomic<std::shared_ptr<const ThrottleOptions>> options_;
  std::shared_ptr<ThrottleCounters> counters_;
  Clock clock_;
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> failures_seen_{0};
};

}  // namespace gatehouse
