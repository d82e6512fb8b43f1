// The per-request fast paths of issue 13 give the same answers as the slow ones:
// ClientRegistry::authenticate (HMAC keyed once per thread) accepts exactly the secrets
// hash_client_secret stored, from several threads at once; the deny-list (SHA-256 with
// a context per thread, looked up without building a key string) refuses exactly the
// revoked tokens, also when another handle of the store revoked them.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "gatehouse/clients.hpp"
#include "gatehouse/lifecycle.hpp"
#include "gatehouse/store.hpp"
#include "gatehouse/verifier.hpp"

namespace fs = std::filesystem;

namespace {

class FastPaths : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "gatehouse-fastpaths-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    store_ = gatehouse::open_sqlite_store(dir_ / "g.db");
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  fs::path dir_;
  std::shared_ptr<gatehouse::UserStore> store_;
};

TEST_F(FastPaths, ClientSecretsMatchExactlyWhatWasStoredFromManyThreads) {
  const std::string key = gatehouse::client_secret_key(*store_);
  std::vector<gatehouse::Client> clients;
  std::vector<std::string> secrets;
  for (int i = 0; i < 20; ++i) {
    gatehouse::Client c;
    c.id = "svc-" + std::to_string(i);
    c.grants = {"client_credentials"};
    secrets.push_back(gatehouse::generate_client_secret());
    c.secret_hash = gatehouse::hash_client_secret(key, secrets.back());
    clients.push_back(c);
  }
  gatehouse::save_clients(*store_, clients);
  gatehouse::ClientRegistry registry(store_);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (std::size_t i = 0; i < secrets.size(); ++i) {
        const std::string id = "svc-" + std::to_string(i);
        auto ok = registry.authenticate(id, secrets[i]);
        if (!ok || ok->id != id) ++wrong;
        std::string flipped = secrets[i];
        flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
        if (registry.authenticate(id, flipped)) ++wrong;
        // Another client's secret, a prefix, and the stored hash itself are refused.
        if (registry.authenticate(id, secrets[(i + 1) % secrets.size()])) ++wrong;
        if (registry.authenticate(id, secrets[i].substr(0, 42))) ++wrong;
        if (registry.authenticate(id, clients[i].secret_hash)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_FALSE(registry.authenticate("svc-0", ""));
  EXPECT_FALSE(registry.authenticate("svc-0", std::string(2000, 'a')));
  EXPECT_FALSE(registry.authenticate("nobody", secrets[0]));
}

TEST_F(FastPaths, DenyListRefusesExactlyTheRevokedTokens) {
  auto tokens = std::dynamic_pointer_cast<gatehouse::TokenStore>(store_);
  ASSERT_TRUE(tokens);
  auto make = [](std::string signing_input) {
    gatehouse::VerifiedToken t;
    t.signing_input = std::move(signing_input);
    t.claims["exp"] = std::int64_t{4'000'000'000};
    return t;
  };
  gatehouse::DenyList list(tokens);
  std::vector<gatehouse::VerifiedToken> revoked;
  std::vector<gatehouse::VerifiedToken> kept;
  for (int i = 0; i < 50; ++i) {
    revoked.push_back(make("eyJhbGciOiJIUzI1NiJ9.revoked-" + std::to_string(i)));
    kept.push_back(make("eyJhbGciOiJIUzI1NiJ9.kept-" + std::to_string(i)));
  }
  for (const auto& t : kept) EXPECT_FALSE(list.denied(t));  // empty: the atomic flag alone
  for (const auto& t : revoked) list.deny(t);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < 4; ++n) {
    threads.emplace_back([&] {
      for (int round = 0; round < 20; ++round) {
        for (const auto& t : revoked) wrong += list.denied(t) ? 0 : 1;
        for (const auto& t : kept) wrong += list.denied(t) ? 1 : 0;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  // Another handle (another process) learns them from the store.
  std::shared_ptr<gatehouse::UserStore> other_store = gatehouse::open_sqlite_store(dir_ / "g.db");
  gatehouse::DenyList other(std::dynamic_pointer_cast<gatehouse::TokenStore>(other_store));
  other.sync();
  for (const auto& t : revoked) EXPECT_TRUE(other.denied(t));
  for (const auto& t : kept) EXPECT_FALSE(other.denied(t));
  // The key is the hex SHA-256 of the signed part (known answer: SHA-256 of "abc").
  EXPECT_EQ(gatehouse::DenyList::key(make("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
