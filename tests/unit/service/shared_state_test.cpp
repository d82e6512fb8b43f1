// Issue 11: state shared between instances through a ChangeFeed (PostgreSQL's
// LISTEN/NOTIFY), tested with an in-process feed: the ThrottleRelay (wire format,
// HMAC keys, failures and resets applied on the other instance, its own messages
// ignored, a bounded queue) and the DenyList fed by notifications (no poll needed, a
// full read again after a reconnection).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gatehouse/jwt.hpp"
#include "gatehouse/lifecycle.hpp"
#include "gatehouse/store.hpp"
#include "gatehouse/throttle.hpp"

namespace {

using gatehouse::LoginThrottle;
using gatehouse::ThrottleRelay;
using std::chrono::seconds;

struct FakeClock {
  std::atomic<std::int64_t> now_ms{1'700'000'000'000};
};

gatehouse::ThrottleOptions options(std::uint32_t user_failures, std::uint32_t client_failures) {
  gatehouse::ThrottleOptions o;
  o.user = {user_failures, seconds(3600)};
  o.client = {client_failures, seconds(600)};
  o.base_delay = std::chrono::milliseconds(1000);
  o.max_delay = seconds(900);
  return o;
}

// Waits (at most 10 s) until `done` holds.
bool eventually(const std::function<bool()>& done) {
  const auto end = std::chrono::steady_clock::now() + seconds(10);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return done();
}

// Two instances whose relays deliver to each other (and to themselves, as NOTIFY does).
struct Pair {
  FakeClock clock;
  std::shared_ptr<LoginThrottle> a, b;
  std::mutex mutex;
  std::vector<ThrottleRelay*> relays;
  std::vector<std::string> wire;  // every payload sent
  std::unique_ptr<ThrottleRelay> ra, rb;

  explicit Pair(gatehouse::ThrottleOptions o, const std::string& secret = "s3cret-shared-by-both") {
    auto now = [this] { return clock.now_ms.load(); };
    a = std::make_shared<LoginThrottle>(o, gatehouse::memory_throttle_counters(), now);
    b = std::make_shared<LoginThrottle>(o, gatehouse::memory_throttle_counters(), now);
    auto send = [this](const std::string& payload) {
      std::lock_guard lock(mutex);
      wire.push_back(payload);
      for (auto* r : relays) r->receive(payload);
    };
    ra = std::make_unique<ThrottleRelay>(a, secret, send);
    rb = std::make_unique<ThrottleRelay>(b, secret, send);
    std::lock_guard lock(mutex);
    relays = {ra.get(), rb.get()};
  }
  ~Pair() {
    {
      std::lock_guard lock(mutex);
      relays.clear();
    }
    ra.reset();
    rb.reset();
  }
  // Waits until both relays have sent `n` events in all.
  bool sent(std::uint64_t n) {
    return eventually([&] { return ra->sent() + rb->sent() >= n; });
  }
};

TEST(ThrottleRelay, FailuresOnOneInstanceBlockTheOther) {
  Pair p(options(3, 0));
  for (int i = 0; i < 3; ++i) p.a->failed("johndoe", "10.0.0.1");
  EXPECT_EQ(p.a->retry_after("johndoe", "10.0.0.9"), seconds(1));
  ASSERT_TRUE(p.sent(3));
  EXPECT_EQ(p.b->retry_after("johndoe", "10.0.0.9"), seconds(1));  // blocked there too
  EXPECT_EQ(p.b->retry_after("alice", "10.0.0.9"), seconds(0));
}

TEST(ThrottleRelay, FailuresSplitAcrossInstancesAddUpAndOwnMessagesCountOnce) {
  Pair p(options(4, 0));
  p.a->failed("johndoe", "");
  p.b->failed("johndoe", "");
  ASSERT_TRUE(p.sent(2));
  // Each has counted two (its own once, although its own message came back to it too).
  EXPECT_EQ(p.a->retry_after("johndoe", ""), seconds(0));
  EXPECT_EQ(p.b->retry_after("johndoe", ""), seconds(0));
  p.a->failed("johndoe", "");
  ASSERT_TRUE(p.sent(3));
  EXPECT_EQ(p.a->retry_after("johndoe", ""), seconds(0));  // three of four
  EXPECT_EQ(p.b->retry_after("johndoe", ""), seconds(0));
  p.b->failed("johndoe", "");
  ASSERT_TRUE(p.sent(4));
  EXPECT_EQ(p.a->retry_after("johndoe", ""), seconds(1));
  EXPECT_EQ(p.b->retry_after("johndoe", ""), seconds(1));
}

TEST(ThrottleRelay, ASuccessClearsTheNameOnTheOtherInstance) {
  Pair p(options(3, 0));
  for (int i = 0; i < 3; ++i) p.a->failed("johndoe", "");
  ASSERT_TRUE(p.sent(3));
  ASSERT_EQ(p.b->retry_after("johndoe", ""), seconds(1));
  p.clock.now_ms += 1000;  // the block is over; the score is not
  p.b->succeeded("johndoe");
  ASSERT_TRUE(p.sent(4));
  p.a->failed("johndoe", "");  // one since the success, not four
  EXPECT_EQ(p.a->retry_after("johndoe", ""), seconds(0));
}

TEST(ThrottleRelay, NothingSentNamesTheUserOrTheAddress) {
  Pair p(options(3, 3));
  p.a->failed("carol-the-user", "192.0.2.77");
  ASSERT_TRUE(p.sent(2));
  std::lock_guard lock(p.mutex);
  ASSERT_FALSE(p.wire.empty());
  for (const auto& payload : p.wire) {
    EXPECT_EQ(payload.find("carol"), std::string::npos) << payload;
    EXPECT_EQ(payload.find("192.0.2"), std::string::npos) << payload;
  }
}

TEST(ThrottleRelay, SharedKeysAreKeyedHmacs) {
  const auto k = LoginThrottle::shared_key("one", LoginThrottle::user_key("johndoe"));
  EXPECT_TRUE(LoginThrottle::is_shared_key(k));
  EXPECT_EQ(k[0], 'u');
  EXPECT_EQ(k.size(), 33u);
  EXPECT_EQ(k, LoginThrottle::shared_key("one", LoginThrottle::user_key("johndoe")));
  EXPECT_NE(k, LoginThrottle::shared_key("two", LoginThrottle::user_key("johndoe")));
  const auto c = LoginThrottle::shared_key("one", LoginThrottle::client_key("10.0.0.1"));
  EXPECT_EQ(c[0], 'c');
  EXPECT_FALSE(LoginThrottle::is_shared_key("user:abc"));
  std::string wrong_kind = k;
  wrong_kind[0] = 'x';
  EXPECT_FALSE(LoginThrottle::is_shared_key(wrong_kind));
}

TEST(ThrottleRelay, EncodeSplitsAndDecodeReadsItBack) {
  std::vector<LoginThrottle::Event> events;
  for (int i = 0; i < 300; ++i) {
    events.push_back(
        {i % 2 == 0 ? LoginThrottle::Event::Kind::failure : LoginThrottle::Event::Kind::reset,
         LoginThrottle::shared_key("k", "user:" + std::to_string(i)), 1000 + i});
  }
  const auto payloads = ThrottleRelay::encode("abcdef0123456789", events, 1000);
  ASSERT_GT(payloads.size(), 1u);
  std::vector<LoginThrottle::Event> back;
  for (const auto& p : payloads) {
    EXPECT_LE(p.size(), 1000u);
    auto m = ThrottleRelay::decode(p);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->origin, "abcdef0123456789");
    back.insert(back.end(), m->events.begin(), m->events.end());
  }
  ASSERT_EQ(back.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(back[i].kind, events[i].kind);
    EXPECT_EQ(back[i].key, events[i].key);
    if (events[i].kind == LoginThrottle::Event::Kind::failure) {
      EXPECT_EQ(back[i].at_ms, events[i].at_ms);
    }
  }
}

TEST(ThrottleRelay, DecodeRefusesGarbage) {
  EXPECT_FALSE(ThrottleRelay::decode(""));
  EXPECT_FALSE(ThrottleRelay::decode("hello"));
  EXPECT_FALSE(ThrottleRelay::decode("gh1 \nf u0 1\n"));
  const std::string key = LoginThrottle::shared_key("k", "user:x");
  auto m = ThrottleRelay::decode("gh1 o\nf " + key + " 12x\nf user:johndoe 1\nz " + key + "\nf " +
                                 key + " -5\nf " + key + " 7\n");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->events.size(), 1u);  // only the well-formed line
  EXPECT_EQ(m->events[0].at_ms, 7);
}

TEST(ThrottleRelay, TheQueueIsBoundedAndAFailedSendLosesOnlyTheShare) {
  FakeClock clock;
  auto t = std::make_shared<LoginThrottle>(options(3, 0), gatehouse::memory_throttle_counters(),
                                           [&] { return clock.now_ms.load(); });
  std::mutex gate;
  std::unique_lock held(gate);  // the first send waits here: the queue fills meanwhile
  std::atomic<int> calls{0};
  ThrottleRelay relay(
      t, "secret",
      [&](const std::string&) {
        ++calls;
        std::lock_guard wait(gate);
        throw gatehouse::StoreUnavailable("down");
      },
      /*max_pending=*/8);
  t->failed("u0", "");
  ASSERT_TRUE(eventually([&] { return calls.load() == 1; }));  // u0 is being sent
  for (int i = 1; i <= 20; ++i) t->failed(std::to_string(i), "");
  EXPECT_EQ(relay.dropped(), 12u);  // 8 queued, 12 over the bound
  held.unlock();
  ASSERT_TRUE(eventually([&] { return relay.dropped() == 21u; }));  // every send failed
  EXPECT_EQ(relay.sent(), 0u);
  // The failures still count here.
  t->failed("u0", "");
  t->failed("u0", "");
  EXPECT_EQ(t->retry_after("u0", ""), seconds(1));
}

// ---- the deny-list on a feed ---------------------------------------------------------

// What every process LISTENing on one database hears.
struct Bus {
  struct Sub {
    const void* owner;
    std::uint64_t id;
    std::string channel;
    gatehouse::ChangeFeed::Handler on_message;
    gatehouse::ChangeFeed::Resync on_resync;
  };
  std::mutex mutex;
  std::vector<Sub> subs;
  std::uint64_t last = 0;
};

// A SQLite token store with an in-process feed: a denial announces itself, as the
// PostgreSQL store's does in the transaction that stores it.
class FedStore final : public gatehouse::TokenStore, public gatehouse::ChangeFeed {
 public:
  FedStore(std::shared_ptr<gatehouse::TokenStore> inner, std::shared_ptr<Bus> bus)
      : inner_(std::move(inner)), bus_(std::move(bus)) {}
  void add_refresh_token(const gatehouse::RefreshTokenRecord& r) override {
    inner_->add_refresh_token(r);
  }
  std::optional<gatehouse::RefreshTokenRecord> find_refresh_token(std::string_view h,
                                                                  std::int64_t now) override {
    return inner_->find_refresh_token(h, now);
  }
  gatehouse::RotateStatus rotate_refresh_token(std::string_view h, std::string_view s,
                                               std::string_view scope, std::int64_t now,
                                               std::int64_t idle, std::int64_t grace,
                                               gatehouse::RefreshTokenRecord& out) override {
    return inner_->rotate_refresh_token(h, s, scope, now, idle, grace, out);
  }
  bool revoke_refresh_family(std::string_view f) override {
    return inner_->revoke_refresh_family(f);
  }
  void deny_access_token(std::string_view key, std::int64_t exp) override {
    inner_->deny_access_token(key, exp);
    if (announce) publish(kRevocations, std::string(key) + " " + std::to_string(exp));
  }
  std::vector<DeniedToken> denied_since(std::int64_t after, std::int64_t now) override {
    ++reads;
    return inner_->denied_since(after, now);
  }
  void prune_tokens(std::int64_t now) override { inner_->prune_tokens(now); }

  bool available() const override { return true; }
  std::uint64_t subscribe(std::string_view channel, Handler on_message, Resync on_resync) override {
    std::lock_guard lock(bus_->mutex);
    bus_->subs.push_back(
        {this, ++bus_->last, std::string(channel), std::move(on_message), std::move(on_resync)});
    return bus_->last;
  }
  void unsubscribe(std::uint64_t id) override {
    std::lock_guard lock(bus_->mutex);
    std::erase_if(bus_->subs, [id](const Bus::Sub& s) { return s.id == id; });
  }
  void publish(std::string_view channel, std::string_view payload) override {
    std::lock_guard lock(bus_->mutex);
    for (const auto& s : bus_->subs) {
      if (s.channel == channel) s.on_message(payload);
    }
  }
  // This process's listening connection came back.
  void reconnect() {
    std::lock_guard lock(bus_->mutex);
    for (const auto& s : bus_->subs) {
      if (s.owner == this && s.on_resync) s.on_resync();
    }
  }

  bool announce = true;  // false: denials written as an older gatehouse would
  std::atomic<int> reads{0};

 private:
  std::shared_ptr<gatehouse::TokenStore> inner_;
  std::shared_ptr<Bus> bus_;
};

class FedDenyList : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gatehouse-fed-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto bus = std::make_shared<Bus>();
    here_ = std::make_shared<FedStore>(open(), bus);
    there_ = std::make_shared<FedStore>(open(), bus);
  }
  void TearDown() override {
    here_.reset();
    there_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::shared_ptr<gatehouse::TokenStore> open() {
    std::shared_ptr<gatehouse::UserStore> s = gatehouse::open_sqlite_store(dir_ / "g.db");
    return std::dynamic_pointer_cast<gatehouse::TokenStore>(s);
  }
  gatehouse::VerifiedToken token(char c) {
    gatehouse::VerifiedToken t;
    t.signing_input = std::string(32, c);
    t.claims["exp"] = gatehouse::jwt::now_seconds() + 3600;
    return t;
  }

  std::filesystem::path dir_;
  std::shared_ptr<FedStore> here_, there_;
};

TEST_F(FedDenyList, ADenialArrivesWithoutAPoll) {
  gatehouse::DenyList here(here_), there(there_);
  // An hour between polls: anything seen sooner was pushed.
  here.start(std::chrono::hours(1));
  there.start(std::chrono::hours(1));
  EXPECT_TRUE(here.pushed());
  const int reads = there_->reads.load();
  here.deny(token('\x07'));
  EXPECT_TRUE(there.denied(token('\x07')));  // delivered on the notification
  EXPECT_FALSE(there.denied(token('\x08')));
  EXPECT_EQ(there_->reads.load(), reads);  // without reading the store
  there.deny(token('\x08'));
  EXPECT_TRUE(here.denied(token('\x08')));
}

TEST_F(FedDenyList, AReconnectionReadsTheWholeListAgain) {
  gatehouse::DenyList there(there_);
  there.start(std::chrono::milliseconds(10));
  here_->announce = false;  // missed: as if it came while the connection was down
  gatehouse::DenyList here(here_);
  here.deny(token('\x09'));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(there.denied(token('\x09')));  // the slow safety poll is 30 s away
  there_->reconnect();
  EXPECT_TRUE(eventually([&] { return there.denied(token('\x09')); }));
}

TEST_F(FedDenyList, GarbageOnTheChannelIsIgnored) {
  gatehouse::DenyList there(there_);
  there.start(std::chrono::hours(1));
  here_->publish(gatehouse::ChangeFeed::kRevocations, "not a denial");
  here_->publish(gatehouse::ChangeFeed::kRevocations, std::string(64, 'z') + " 5");
  here_->publish(gatehouse::ChangeFeed::kRevocations, std::string(64, 'a') + " 5x");
  EXPECT_FALSE(there.denied(token('\x07')));
}

}  // namespace
