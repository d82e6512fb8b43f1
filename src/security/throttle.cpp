// Brute-force throttling: leaky-bucket failure scores with an exponential block. See
// throttle.hpp.
#include "gatehouse/throttle.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <mutex>
#include <stdexcept>

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
  if (o.user.failures != 0) keys.push_back(user_key_for(username));
  if (o.client.failures != 0 && !client.empty()) keys.push_back(client_key_for(client));
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
    uses.push_back({{user_key_for(username), leak(o.user)}, &o.user});
  }
  if (o.client.failures != 0 && !client.empty()) {
    uses.push_back({{client_key_for(client), leak(o.client)}, &o.client});
  }
  if (uses.empty()) return;
  std::vector<ThrottleCounters::Hit> hits;
  for (const auto& u : uses) hits.push_back(u.hit);
  const std::int64_t now = clock_();
  const auto scores = counters_->add_failure(hits, now);
  for (std::size_t i = 0; i < uses.size() && i < scores.size(); ++i) {
    const auto delay = delay_for(scores[i], *uses[i].policy, o);
    if (delay.count() > 0) counters_->block(uses[i].hit.key, now + delay.count());
    notify({Event::Kind::failure, uses[i].hit.key, now});
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
  const std::string key = user_key_for(username);
  counters_->reset(key);
  notify({Event::Kind::reset, key, 0});
}

// ---- sharing -------------------------------------------------------------------------

namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::size_t kSharedHex = 32;  // 128 bits of the HMAC

double leak_ms(const ThrottlePolicy& p) {
  return static_cast<double>(
             std::chrono::duration_cast<std::chrono::milliseconds>(p.window).count()) /
         p.failures;
}

}  // namespace

std::string LoginThrottle::shared_key(std::string_view secret, std::string_view key) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(key.data()), key.size(), mac, &len) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  std::string out(1, key.rfind("user:", 0) == 0 ? 'u' : 'c');
  for (std::size_t i = 0; i < kSharedHex / 2 && i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  return out;
}

bool LoginThrottle::is_shared_key(std::string_view key) {
  if (key.size() != 1 + kSharedHex || (key[0] != 'u' && key[0] != 'c')) return false;
  return std::all_of(key.begin() + 1, key.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string LoginThrottle::user_key_for(std::string_view username) const {
  const auto secret = secret_.load();
  return secret ? shared_key(*secret, user_key(username)) : user_key(username);
}

std::string LoginThrottle::client_key_for(std::string_view client) const {
  const auto secret = secret_.load();
  return secret ? shared_key(*secret, client_key(client)) : client_key(client);
}

void LoginThrottle::notify(const Event& event) const {
  if (const auto observer = observer_.load(); observer && *observer) (*observer)(event);
}

void LoginThrottle::share(std::string secret, Observer observer) {
  if (secret.empty()) throw std::invalid_argument("the throttle's sharing secret is empty");
  secret_.store(std::make_shared<const std::string>(std::move(secret)));
  set_observer(std::move(observer));
}

void LoginThrottle::set_observer(Observer observer) {
  observer_.store(observer ? std::make_shared<const Observer>(std::move(observer)) : nullptr);
}

void LoginThrottle::apply(const Event& event) {
  const auto options = options_.load();
  const ThrottleOptions& o = *options;
  if (!o.enabled || !is_shared_key(event.key)) return;
  const bool user = event.key[0] == 'u';
  const ThrottlePolicy& policy = user ? o.user : o.client;
  if (policy.failures == 0) return;
  if (event.kind == Event::Kind::reset) {
    if (user) counters_->reset(event.key);
    return;
  }
  // Another host's clock may run ahead: a failure never counts as later than now here.
  const std::int64_t at = std::min(event.at_ms, clock_());
  const auto scores = counters_->add_failure({{event.key, leak_ms(policy)}}, at);
  if (scores.empty()) return;
  const auto delay = delay_for(scores[0], policy, o);
  if (delay.count() > 0) counters_->block(event.key, at + delay.count());
}

// ---- ThrottleRelay -------------------------------------------------------------------

std::vector<std::string> ThrottleRelay::encode(std::string_view origin,
                                               const std::vector<LoginThrottle::Event>& events,
                                               std::size_t max_payload) {
  std::vector<std::string> out;
  const std::string header = "gh1 " + std::string(origin) + "\n";
  std::string current;
  for (const auto& e : events) {
    std::string line = e.kind == LoginThrottle::Event::Kind::reset
                           ? "r " + e.key + "\n"
                           : "f " + e.key + " " + std::to_string(e.at_ms) + "\n";
    if (!current.empty() && current.size() + line.size() > max_payload) {
      out.push_back(std::move(current));
      current.clear();
    }
    if (current.empty()) current = header;
    current += line;
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

std::optional<ThrottleRelay::Message> ThrottleRelay::decode(std::string_view payload) {
  auto next_line = [&payload]() -> std::optional<std::string_view> {
    if (payload.empty()) return std::nullopt;
    const auto nl = payload.find('\n');
    std::string_view line = payload.substr(0, nl);
    payload = nl == std::string_view::npos ? std::string_view() : payload.substr(nl + 1);
    return line;
  };
  const auto header = next_line();
  if (!header || header->rfind("gh1 ", 0) != 0) return std::nullopt;
  Message m;
  m.origin = std::string(header->substr(4));
  if (m.origin.empty() || m.origin.size() > 64) return std::nullopt;
  while (auto line = next_line()) {
    if (line->size() < 2 || (*line)[1] != ' ') continue;
    LoginThrottle::Event e;
    std::string_view rest = line->substr(2);
    if ((*line)[0] == 'r') {
      e.kind = LoginThrottle::Event::Kind::reset;
      e.key = std::string(rest);
    } else if ((*line)[0] == 'f') {
      const auto space = rest.find(' ');
      if (space == std::string_view::npos) continue;
      e.key = std::string(rest.substr(0, space));
      const std::string_view at = rest.substr(space + 1);
      const auto [end, ec] = std::from_chars(at.data(), at.data() + at.size(), e.at_ms);
      if (ec != std::errc() || end != at.data() + at.size() || e.at_ms < 0) continue;
    } else {
      continue;
    }
    if (LoginThrottle::is_shared_key(e.key)) m.events.push_back(std::move(e));
  }
  return m;
}

ThrottleRelay::ThrottleRelay(std::shared_ptr<LoginThrottle> throttle, std::string secret, Send send,
                             std::size_t max_pending, std::size_t max_payload)
    : throttle_(std::move(throttle)),
      send_(std::move(send)),
      max_payload_(max_payload),
      queue_(std::make_shared<Queue>()) {
  if (!throttle_ || !send_)
    throw std::invalid_argument("ThrottleRelay needs a throttle and a sender");
  unsigned char id[8];
  if (RAND_bytes(id, sizeof id) != 1)
    throw std::runtime_error("the random number generator failed");
  for (unsigned char c : id) {
    origin_ += kHex[c >> 4];
    origin_ += kHex[c & 15];
  }
  queue_->max_pending = std::max<std::size_t>(1, max_pending);
  // The observer holds the queue, not the relay: a login still running when the relay
  // goes queues into a queue nobody sends.
  throttle_->share(std::move(secret), [q = queue_](const LoginThrottle::Event& e) {
    {
      std::lock_guard lock(q->mutex);
      if (q->stop || q->events.size() >= q->max_pending) {
        q->dropped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      q->events.push_back(e);
    }
    q->wake.notify_one();
  });
  thread_ = std::thread([this] { run(); });
}

ThrottleRelay::~ThrottleRelay() {
  throttle_->set_observer(nullptr);
  {
    std::lock_guard lock(queue_->mutex);
    queue_->stop = true;
  }
  queue_->wake.notify_all();
  thread_.join();
}

void ThrottleRelay::run() {
  std::unique_lock lock(queue_->mutex);
  for (;;) {
    queue_->wake.wait(lock, [this] { return queue_->stop || !queue_->events.empty(); });
    if (queue_->events.empty()) return;  // stopping, nothing left
    std::vector<LoginThrottle::Event> batch;
    batch.swap(queue_->events);
    lock.unlock();
    for (const auto& payload : encode(origin_, batch, max_payload_)) {
      const auto n =
          static_cast<std::uint64_t>(std::count(payload.begin(), payload.end(), '\n') - 1);
      try {
        send_(payload);
        queue_->sent.fetch_add(n, std::memory_order_relaxed);
      } catch (const std::exception&) {
        // The store is down: these stay counted here only (the counters are soft state).
        queue_->dropped.fetch_add(n, std::memory_order_relaxed);
      }
    }
    lock.lock();
  }
}

void ThrottleRelay::receive(std::string_view payload) {
  auto message = decode(payload);
  if (!message || message->origin == origin_) return;
  for (const auto& e : message->events) throttle_->apply(e);
}

}  // namespace gatehouse
