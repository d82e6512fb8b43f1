// Group commit of refresh rotations (issue 13): answers given later (Later,
// Response::deferred, App::handle waiting for one), the SQLite store rotating a batch in
// one transaction (in order, a failing rotation undone alone), and
// RefreshTokens::rotate_later answering every caller once, from many threads at once.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gatehouse/app.hpp"
#include "gatehouse/http.hpp"
#include "gatehouse/lifecycle.hpp"
#include "gatehouse/store.hpp"

namespace fs = std::filesystem;
using gatehouse::Later;
using gatehouse::Response;
using gatehouse::RotateStatus;
using gatehouse::TokenStore;

namespace {

Response text(unsigned status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST(Later, CompletedBeforeThenIsDeliveredAtOnce) {
  Later later;
  later.complete(text(201, "first"));
  later.complete(text(500, "second"));  // only the first counts
  std::optional<Response> got;
  later.then([&](Response r) { got = std::move(r); });
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 201u);
  EXPECT_EQ(got->body, "first");
}

TEST(Later, ThenBeforeCompleteIsDeliveredByTheCompletingThread) {
  Later later;
  std::promise<std::thread::id> delivered_on;
  later.then([&](Response r) {
    EXPECT_EQ(r.body, "done");
    delivered_on.set_value(std::this_thread::get_id());
  });
  std::thread::id completer;
  std::thread t([&] {
    completer = std::this_thread::get_id();
    later.complete(text(200, "done"));
  });
  t.join();
  EXPECT_EQ(delivered_on.get_future().get(), completer);
}

TEST(Later, WaitReturnsTheAnswerFromAnotherThread) {
  auto later = std::make_shared<Later>();
  std::thread t([later] { later->complete(text(202, "later")); });
  Response r = later->wait();
  t.join();
  EXPECT_EQ(r.status, 202u);
  EXPECT_EQ(r.body, "later");
}

TEST(Later, AppHandleWaitsForADeferredAnswer) {
  gatehouse::App app;
  std::vector<std::thread> workers;
  app.get("/slow", {.name = "slow"}, [&workers]() {
    auto later = std::make_shared<Later>();
    workers.emplace_back([later] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      later->complete(Response::json(200, boost::json::object{{"ok", true}}));
    });
    return Response::deferred(later);
  });
  gatehouse::Request req("GET", "/slow", "/slow", "", nullptr, nullptr);
  Response r = app.handle(req);
  for (auto& w : workers) w.join();
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"ok":true})");
  EXPECT_FALSE(r.later);
}

class GroupCommit : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "gatehouse-groupcommit-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    user_store_ = gatehouse::open_sqlite_store(dir_ / "g.db");
    store_ = std::dynamic_pointer_cast<TokenStore>(user_store_);
    ASSERT_TRUE(store_);
  }
  void TearDown() override {
    store_.reset();
    user_store_.reset();
    fs::remove_all(dir_);
  }
  gatehouse::RefreshTokens tokens(std::int64_t grace = 5) {
    gatehouse::RefreshTokenOptions o;
    o.idle_seconds = 100;
    o.absolute_seconds = 250;
    o.grace_seconds = grace;
    o.clock = [this] { return now_.load(); };
    return gatehouse::RefreshTokens(store_, gatehouse::generate_refresh_key(), o);
  }
  static std::string h(const std::string& token) { return gatehouse::RefreshTokens::hash(token); }

  fs::path dir_;
  std::shared_ptr<gatehouse::UserStore> user_store_;
  std::shared_ptr<TokenStore> store_;
  std::atomic<std::int64_t> now_{1'000'000};
};

TEST_F(GroupCommit, SqliteBatchesRotations) { EXPECT_TRUE(store_->batches_rotations()); }

TEST_F(GroupCommit, BatchRotatesInOrderEachSeeingTheEarlierOnes) {
  auto rt = tokens();
  const auto a = rt.issue("johndoe", "me items");
  const auto b = rt.issue("alice", "me");
  const std::vector<TokenStore::RotateRequest> batch{
      {h(a), h("a-next"), "me"},
      {h(a), h("a-next"), "me"},  // the same token again: sees the first as spent
      {h("never-issued"), h("x"), "me"},
      {h(b), h("b-next"), "me"},
  };
  auto out = store_->rotate_refresh_tokens(batch, now_, 100, 5);
  ASSERT_EQ(out.size(), 4u);
  for (const auto& o : out) EXPECT_FALSE(o.error);
  EXPECT_EQ(out[0].status, RotateStatus::rotated);
  EXPECT_EQ(out[0].successor.hash, h("a-next"));
  EXPECT_EQ(out[0].successor.username, "johndoe");
  EXPECT_EQ(out[0].successor.scope, "me");
  EXPECT_EQ(out[1].status, RotateStatus::replayed);
  EXPECT_EQ(out[1].successor.hash, h("a-next"));
  EXPECT_EQ(out[2].status, RotateStatus::unknown);
  EXPECT_EQ(out[3].status, RotateStatus::rotated);
  EXPECT_EQ(out[3].successor.username, "alice");
  // Committed: another look at the store sees it all.
  auto spent = store_->find_refresh_token(h(a), now_);
  ASSERT_TRUE(spent);
  EXPECT_TRUE(spent->spent);
  auto next = store_->find_refresh_token(h("a-next"), now_);
  ASSERT_TRUE(next);
  EXPECT_FALSE(next->spent);
  EXPECT_EQ(next->family, spent->family);
  EXPECT_TRUE(store_->find_refresh_token(h("b-next"), now_));
}

TEST_F(GroupCommit, ReuseInABatchRevokesTheFamilyAndLaterEntriesSeeIt) {
  auto rt = tokens(0);
  const auto a = rt.issue("johndoe", "me");
  auto out = store_->rotate_refresh_tokens(
      {{h(a), h("a1"), "me"}, {h(a), h("a1"), "me"}, {h("a1"), h("a2"), "me"}}, now_, 100, 0);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].status, RotateStatus::rotated);
  EXPECT_EQ(out[1].status, RotateStatus::reused);   // no grace: the second use is reuse
  EXPECT_EQ(out[2].status, RotateStatus::unknown);  // its successor went with the family
  EXPECT_FALSE(store_->find_refresh_token(h(a), now_));
  EXPECT_FALSE(store_->find_refresh_token(h("a1"), now_));
}

TEST_F(GroupCommit, AFailingRotationIsUndoneAloneAndTheOthersStand) {
  auto rt = tokens();
  const auto a = rt.issue("johndoe", "me");
  const auto b = rt.issue("johndoe", "me");
  const auto c = rt.issue("johndoe", "me");
  // a's successor would collide with b's row (primary key): that rotation fails.
  auto out = store_->rotate_refresh_tokens(
      {{h(c), h("c-next"), "me"}, {h(a), h(b), "me"}, {h(b), h("b-next"), "me"}}, now_, 100, 5);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FALSE(out[0].error);
  EXPECT_EQ(out[0].status, RotateStatus::rotated);
  EXPECT_TRUE(out[1].error);
  EXPECT_EQ(out[1].status, RotateStatus::unknown);
  EXPECT_FALSE(out[2].error);
  EXPECT_EQ(out[2].status, RotateStatus::rotated);
  // a was not spent: its UPDATE went with its savepoint.
  auto a_row = store_->find_refresh_token(h(a), now_);
  ASSERT_TRUE(a_row);
  EXPECT_FALSE(a_row->spent);
  EXPECT_TRUE(store_->find_refresh_token(h("c-next"), now_));
  EXPECT_TRUE(store_->find_refresh_token(h("b-next"), now_));
  // and the single-rotation call reports the same failure as an exception.
  gatehouse::RefreshTokenRecord successor;
  EXPECT_THROW((void)store_->rotate_refresh_token(h(a), h("c-next"), "me", now_, 100, 5, successor),
               std::exception);
  EXPECT_FALSE(store_->find_refresh_token(h(a), now_)->spent);
}

TEST_F(GroupCommit, RotateLaterFromManyThreadsKeepsEveryChain) {
  auto rt = tokens();
  constexpr int kThreads = 8;
  constexpr int kSteps = 25;
  std::vector<std::string> heads(kThreads);
  for (auto& t : heads) t = rt.issue("johndoe", "me");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int step = 0; step < kSteps; ++step) {
        std::promise<gatehouse::RefreshTokens::Rotation> p;
        rt.rotate_later(heads[i], "me",
                        [&p](gatehouse::RefreshTokens::Rotation r, std::exception_ptr error) {
                          if (error) r.status = RotateStatus::unknown;
                          p.set_value(std::move(r));
                        });
        auto r = p.get_future().get();
        if (r.status != RotateStatus::rotated || r.token.empty()) {
          ++failures;
          return;
        }
        heads[i] = r.token;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  // The answer came after the commit: each last successor is in the store, unspent.
  for (const auto& t : heads) {
    auto row = store_->find_refresh_token(h(t), now_);
    ASSERT_TRUE(row);
    EXPECT_FALSE(row->spent);
  }
}

TEST_F(GroupCommit, RotateLaterOfOneTokenTwiceAtOnceGivesOneSuccessor) {
  auto rt = tokens();
  const auto t0 = rt.issue("johndoe", "me");
  std::promise<gatehouse::RefreshTokens::Rotation> p1;
  std::promise<gatehouse::RefreshTokens::Rotation> p2;
  auto into = [](std::promise<gatehouse::RefreshTokens::Rotation>& p) {
    return [&p](gatehouse::RefreshTokens::Rotation r, std::exception_ptr) {
      p.set_value(std::move(r));
    };
  };
  rt.rotate_later(t0, "me", into(p1));
  rt.rotate_later(t0, "me", into(p2));
  auto r1 = p1.get_future().get();
  auto r2 = p2.get_future().get();
  EXPECT_EQ(r1.status, RotateStatus::rotated);
  EXPECT_EQ(r2.status, RotateStatus::replayed);
  EXPECT_EQ(r1.token, r2.token);
}

// A store that batches but cannot commit: every caller hears of it, none hangs.
class BrokenStore final : public TokenStore {
 public:
  void add_refresh_token(const gatehouse::RefreshTokenRecord&) override {}
  std::optional<gatehouse::RefreshTokenRecord> find_refresh_token(std::string_view,
                                                                  std::int64_t) override {
    return std::nullopt;
  }
  RotateStatus rotate_refresh_token(std::string_view, std::string_view, std::string_view,
                                    std::int64_t, std::int64_t, std::int64_t,
                                    gatehouse::RefreshTokenRecord&) override {
    throw std::runtime_error("disk I/O error");
  }
  std::vector<RotateOutcome> rotate_refresh_tokens(const std::vector<RotateRequest>&, std::int64_t,
                                                   std::int64_t, std::int64_t) override {
    throw std::runtime_error("disk I/O error");
  }
  bool batches_rotations() const override { return true; }
  bool revoke_refresh_family(std::string_view) override { return false; }
  void deny_access_token(std::string_view, std::int64_t) override {}
  std::vector<DeniedToken> denied_since(std::int64_t, std::int64_t) override { return {}; }
  void prune_tokens(std::int64_t) override {}
};

TEST(GroupCommitErrors, AFailedCommitReachesEveryCallerAsAnError) {
  auto store = std::make_shared<BrokenStore>();
  gatehouse::RefreshTokens rt(store, gatehouse::generate_refresh_key(), {});
  std::vector<std::future<std::pair<RotateStatus, bool>>> answers;
  std::vector<std::shared_ptr<std::promise<std::pair<RotateStatus, bool>>>> promises;
  for (int i = 0; i < 10; ++i) {
    auto p = std::make_shared<std::promise<std::pair<RotateStatus, bool>>>();
    answers.push_back(p->get_future());
    rt.rotate_later("token-" + std::to_string(i), "me",
                    [p](gatehouse::RefreshTokens::Rotation r, std::exception_ptr error) {
                      p->set_value({r.status, error != nullptr && r.token.empty()});
                    });
    promises.push_back(p);
  }
  for (auto& a : answers) {
    auto [status, errored] = a.get();
    EXPECT_EQ(status, RotateStatus::unknown);
    EXPECT_TRUE(errored);
  }
}

TEST(GroupCommitErrors, QueuedRotationsAreAnsweredWhenTheTokensGo) {
  auto store = std::make_shared<BrokenStore>();
  std::atomic<int> answered{0};
  {
    gatehouse::RefreshTokens rt(store, gatehouse::generate_refresh_key(), {});
    for (int i = 0; i < 50; ++i) {
      rt.rotate_later(
          "token-" + std::to_string(i), "me",
          [&answered](gatehouse::RefreshTokens::Rotation, std::exception_ptr) { ++answered; });
    }
  }  // destroyed at once: the committer answers what is queued before it stops
  EXPECT_EQ(answered.load(), 50);
}

}  // namespace
