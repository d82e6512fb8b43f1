// Brute-force throttling: leaky-bucket failure scores with an exponential block. See
// throttle.hpp.
#include "gatehouse/throttle.hpp"

#include <openssl/evp.h>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "store/lru.hpp"

namespace gatehouse {

namespace {

class MemoryCounters final : public ThrottleCounters {
 public:
  explicit MemoryCounters(std::size_t budget) : entries_(budget) {}

  std::int64_t blocked_until(const std::vector<std::string>& keys) override {
    std::lock_guard lock(mutex_);
    std::int64_t until = 0;
    for (const auto& k : keys) {
      if (const State* s = entries_.get(k)) until = std::max(until, s->blocked_until_ms);
    }
    return until;
  }

  std::vector<double> add_failure(const std::vector<Hit>& hits, std::int64_t now_ms) override {
    std::lock_guard lock(mutex_);
    std::vector<double> scores;
    for (const auto& h : hits) {
      State s;
      if (const State* old = entries_.get(h.key)) s = *old;
      const auto elapsed = static_cast<double>(std::max<std::int64_t>(0, now_ms - s.updated_ms));
      s.score = std::max(0.0, s.score - (h.leak_ms > 0 ? elapsed / h.leak_ms : 0.0)) + 1.0;
      s.updated_ms = std::max(s.updated_ms, now_ms);
      scores.push_back(s.score);
      entries_.put(h.key, s, cost(h.key));
    }
    return scores;
  }

  void block(const std::string& key, std::int64_t until_ms) override {
    std::lock_guard lock(mutex_);
    if (State* s = entries_.get(key)) s->blocked_until_ms = std::max(s->blocked_until_ms, until_ms);
  }

  void reset(const std::string& key) override {
    std::lock_guard lock(mutex_);
    entries_.erase(key);
  }

  void purge(std::int64_t before_ms) override {
    std::lock_guard lock(mutex_);
    entries_.sweep_oldest(
        [before_ms](std::string_view, const State& s) {
          return s.updated_ms < before_ms && s.blocked_until_ms < before_ms;
        },
        /*stop_at_kept=*/false);
  }

 private:
  struct State {
    double score = 0;
    std::int64_t updated_ms = 0;
    std::int64_t blocked_until_ms = 0;
  };
  // The key twice (list node and index view... the index holds a view) plus the
  // nodes around it, on the high side.
  static std::size_t cost(const std::string& key) { return key.size() + 160; }

  std::mutex mutex_;
  ByteBudgetLru<State> entries_;
};

}  // namespace

std::shared_ptr<ThrottleCounters> memory_throttle_counters(std::size_t budget_bytes) {
  return std::make_shared<MemoryCounters>(budget_bytes);
}

std::int64_t LoginThrottle::system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

LoginThrottle::LoginThrottle(ThrottleOptions options, std::shared_ptr<ThrottleCounters> counters,
                             Clock clock)
    : options_(std::make_shared<const ThrottleOptions>(options)),
      counters_(std::move(counters)),
      clock_(std::move(clock)) {}

void LoginThrottle::set_options(const ThrottleOptions& options) {
  options_.store(std::make_shared<const ThrottleOptions>(options));
}

std::string LoginThrottle::user_key(std::string_view username) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(username.data(), username.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key = "user:";
  for (unsigned int i = 0; i < len; ++i) {
    key += kHex[digest[i] >> 4];
    key += kHex[digest[i] & 15];
  }
  return key;
}

std::string LoginThrottle::client_key(std::string_view client) {
  // One subscriber is given a whole IPv6 /64 and can use any address in it, so an
  // IPv6 client is keyed on its /64 (as the per-client connection cap is); an
  // IPv4-mapped address is its IPv4 address. Anything that is not an address (a
  // Unix socket, a name from a proxy) is keyed on its text.
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(std::string(client.substr(0, 64)), ec);
  if (ec) return "client:" + std::string(client.substr(0, 64));
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, addr.to_v6());
  }
  if (addr.is_v4()) return "client:" + addr.to_string();
  auto bytes = addr.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), static_cast<unsigned char>(0));
  return "client:" + boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

std::chrono::milliseconds LoginThrottle::delay_for(double score,
                                                   const ThrottlePolicy& policy) const {
  return delay_for(score, policy, *options_.load());
}

std::chrono::milliseconds LoginThrottle::delay_for(double score, const ThrottlePolicy& policy,
                                                   const ThrottleOptions& options) {
  // A failure counts until it has leaked away completely: 2.999 is three failures.
  const double failures = std::ceil(score - 1e-9);
  if (policy.failures == 0 || failures < static_cast<double>(policy.failures)) {
    return std::chrono::milliseconds(0);
  }
  const double doublings = std::min(40.0, failures - policy.failures);
  const double ms = static_cast<double>(options.base_delay.count()) * std::exp2(doublings);
  const auto cap = std::chrono::duration_cast<std::chrono::milliseconds>(options.max_delay);
  if (ms >= static_cast<double>(cap.count())) return cap;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

std::chrono::seconds LoginThrottle::retry_after(std::string_view username,
                                                std::string_view client) {
  const auto options = options_.load();
  const ThrottleOptions& o = *options;
  if (!o.enabled) return std::chrono::seconds(0);
  std::vector<std::string> keys;
  if (o.user.failures != 0) keys.push_back(user_key(username));
  if (o.client.failures != 0 && !client.empty()) keys.push_back(client_key(client));
  if (keys.empty()) return std::chrono::seconds(0);
  const std::int64_t until = counters_->blocked_until(keys);
  const std::int64_t now = clock_();
  if (until <= now) return std::chrono::seconds(0);
  refused_.fetch_add(1, std::memory_order_relaxed);
  return std::chrono::seconds((until - now + 999) / 1000);  // rounded up: never too early
}

void LoginThrottle::failed(std::string_view username, std::string_view client) {
  const auto options = options_.load();
  const ThrottleOptions& o = *options;
  if (!o.enabled) return;
  struct Use {
    ThrottleCounters::Hit hit;
    const ThrottlePolicy* policy;
  };
  std::vector<Use> uses;
  auto leak = [](const ThrottlePolicy& p) {
    return static_cast<double>(
               std::chrono::duration_cast<std::chrono::milliseconds>(p.window).count()) /
           p.failures;
  };
  if (o.user.failures != 0) {
    uses.push_back({{user_key(username), leak(o.user)}, &o.user});
  }
  if (o.client.failures != 0 && !client.empty()) {
    uses.push_back({{client_key(client), leak(o.client)}, &o.client});
  }
  if (uses.empty()) return;
  std::vector<ThrottleCounters::Hit> hits;
  for (const auto& u : uses) hits.push_back(u.hit);
  const std::int64_t now = clock_();
  const auto scores = counters_->add_failure(hits, now);
  for (std::size_t i = 0; i < uses.size() && i < scores.size(); ++i) {
    const auto delay = delay_for(scores[i], *uses[i].policy, o);
    if (delay.count() > 0) counters_->block(uses[i].hit.key, now + delay.count());
  }
  // Now and then, forget keys whose score has long leaked away: the counters stay
  // bounded however many names and addresses an attacker uses.
  if (failures_seen_.fetch_add(1, std::memory_order_relaxed) % 256 == 255) {
    const auto longest = std::max(o.user.window, o.client.window) * 2;
    counters_->purge(now - std::chrono::duration_cast<std::chrono::milliseconds>(longest).count());
  }
}

void LoginThrottle::succeeded(std::string_view username) {
  const auto options = options_.load();
  if (!options->enabled || options->user.failures == 0) return;
  counters_->reset(user_key(username));
}

}  // namespace gatehouse
