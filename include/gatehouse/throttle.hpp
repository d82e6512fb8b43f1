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
// database shares them at one round trip per login. Or in memory, shared: a
// ThrottleRelay publishes each failure and success (keyed by an HMAC, never a name or an
// address) through the store's ChangeFeed and applies those of the other instances, so
// that the check before a login is in memory (see docs/DECISIONS.md for what that
// gives up: a burst across instances gets in a few more attempts before each hears of
// the other's).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
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

  // ---- sharing with other instances (ThrottleRelay) ----
  // A change to the counters, as handed between instances.
  struct Event {
    enum class Kind { failure, reset };
    Kind kind = Kind::failure;
    std::string key;         // a shared key (shared_key())
    std::int64_t at_ms = 0;  // a failure's time
  };
  using Observer = std::function<void(const Event&)>;
  // From now on the counters are keyed by shared keys made with `secret` (the same on
  // every instance), and each failure and success here is handed to `observer`, on the
  // request path: it must only queue. Call before the first login; `observer` may be
  // replaced (or removed: nullptr) at any time.
  void share(std::string secret, Observer observer);
  void set_observer(Observer observer);
  // Applies a change another instance made: a failure counts (and blocks) here as if it
  // had happened here, at its time (never later than now); a reset clears a username.
  void apply(const Event& event);
  // 'u' (a username) or 'c' (a client) then HMAC-SHA256(secret, key) cut to 128 bits,
  // in hex: what is published names no user and no address.
  [[nodiscard]] static std::string shared_key(std::string_view secret, std::string_view key);
  [[nodiscard]] static bool is_shared_key(std::string_view key);

 private:
  [[nodiscard]] std::string user_key_for(std::string_view username) const;
  [[nodiscard]] std::string client_key_for(std::string_view client) const;
  void notify(const Event& event) const;

  [[nodiscard]] static std::chrono::milliseconds delay_for(double score,
                                                           const ThrottlePolicy& policy,
                                                           const ThrottleOptions& options);

  std::atomic<std::shared_ptr<const ThrottleOptions>> options_;
  std::shared_ptr<ThrottleCounters> counters_;
  Clock clock_;
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> failures_seen_{0};
  std::atomic<std::shared_ptr<const std::string>> secret_;  // set: keys are shared keys
  std::atomic<std::shared_ptr<const Observer>> observer_;
};

// Shares a LoginThrottle's counters with the other instances on one store: each local
// failure or success is queued (the request does not wait) and a thread of the relay
// sends what has queued as one message per batch (while it sends, the next batch
// gathers); messages from other instances are applied to the local counters. The
// blocked-or-not check stays in memory. At most `max_pending` events wait to be sent;
// beyond that (the store is down, or an attacker outpaces it) new ones are dropped and
// counted: they still count here, only the others do not hear of them.
class ThrottleRelay {
 public:
  using Send = std::function<void(const std::string& payload)>;  // may throw
  ThrottleRelay(std::shared_ptr<LoginThrottle> throttle, std::string secret, Send send,
                std::size_t max_pending = 4096, std::size_t max_payload = 7900);
  ~ThrottleRelay();  // sends what is queued (once), then stops
  ThrottleRelay(const ThrottleRelay&) = delete;
  ThrottleRelay& operator=(const ThrottleRelay&) = delete;

  // A message from the feed: applied unless it is this relay's own.
  void receive(std::string_view payload);
  [[nodiscard]] std::uint64_t sent() const noexcept { return queue_->sent.load(); }
  [[nodiscard]] std::uint64_t dropped() const noexcept { return queue_->dropped.load(); }
  [[nodiscard]] const std::string& origin() const noexcept { return origin_; }

  // The wire format, one event a line after a header naming the sender:
  //   gh1 <origin>\n  f <key> <at_ms>\n  r <key>\n
  // split into payloads of at most `max_payload` bytes.
  [[nodiscard]] static std::vector<std::string> encode(
      std::string_view origin, const std::vector<LoginThrottle::Event>& events,
      std::size_t max_payload = 7900);
  struct Message {
    std::string origin;
    std::vector<LoginThrottle::Event> events;  // the well-formed ones
  };
  [[nodiscard]] static std::optional<Message> decode(std::string_view payload);

 private:
  struct Queue {
    std::mutex mutex;
    std::condition_variable wake;
    std::vector<LoginThrottle::Event> events;
    bool stop = false;
    std::size_t max_pending = 0;
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> dropped{0};
  };
  void run();

  std::shared_ptr<LoginThrottle> throttle_;
  Send send_;
  std::string origin_;
  std::size_t max_payload_;
  std::shared_ptr<Queue> queue_;
  std::thread thread_;  // last: started once the rest is built
};

}  // namespace gatehouse
