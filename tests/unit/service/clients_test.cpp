// Client secrets: generated (256 bits), hashed with HMAC-SHA256 under the store's key,
// compared in constant time; the registry authenticates from memory and sees a deleted
// client once it syncs.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <set>

#include "gatehouse/clients.hpp"
#include "gatehouse/store.hpp"

namespace fs = std::filesystem;

namespace {

TEST(ClientSecrets, GeneratedSecretsAre256BitsAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto s = gatehouse::generate_client_secret();
    EXPECT_EQ(s.size(), 43u);  // 32 bytes, base64url without padding
    EXPECT_TRUE(seen.insert(s).second);
  }
}

TEST(ClientSecrets, HmacSha256KnownAnswer) {
  // RFC 4231 test case 2.
  EXPECT_EQ(gatehouse::hash_client_secret("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(ClientSecrets, MatchesOnlyTheSecretUnderTheSameKey) {
  const std::string key = "server-key";
  const auto secret = gatehouse::generate_client_secret();
  const auto stored = gatehouse::hash_client_secret(key, secret);
  EXPECT_EQ(stored.size(), 64u);
  EXPECT_EQ(stored.find(secret), std::string::npos);
  EXPECT_TRUE(gatehouse::client_secret_matches(key, secret, stored));
  EXPECT_FALSE(gatehouse::client_secret_matches("other-key", secret, stored));
  EXPECT_FALSE(gatehouse::client_secret_matches(key, secret + "x", stored));
  EXPECT_FALSE(gatehouse::client_secret_matches(key, "", stored));
  EXPECT_FALSE(gatehouse::client_secret_matches(key, secret, stored.substr(1)));
  EXPECT_FALSE(gatehouse::client_secret_matches(key, secret, ""));
  std::string flipped = stored;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_FALSE(gatehouse::client_secret_matches(key, secret, flipped));
}

TEST(ClientSecrets, ClientIds) {
  EXPECT_TRUE(gatehouse::valid_client_id("billing-svc.v2_~"));
  EXPECT_FALSE(gatehouse::valid_client_id(""));
  EXPECT_FALSE(gatehouse::valid_client_id("a b"));
  EXPECT_FALSE(gatehouse::valid_client_id("a:b"));
  EXPECT_FALSE(gatehouse::valid_client_id(std::string(129, 'a')));
}

TEST(ClientRegistry, AuthenticatesFromMemoryAndSeesDeletion) {
  std::string tmpl = (fs::temp_directory_path() / "gatehouse-clients-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const fs::path dir = tmpl;
  {
    std::shared_ptr<gatehouse::UserStore> store = gatehouse::open_sqlite_store(dir / "db");
    const auto secret = gatehouse::generate_client_secret();
    gatehouse::Client c;
    c.id = "svc";
    c.grants = {"client_credentials"};
    c.scopes = {"items"};
    c.secret_hash = gatehouse::hash_client_secret(gatehouse::client_secret_key(*store), secret);
    gatehouse::save_clients(*store, {c});

    gatehouse::ClientRegistry registry(store);
    auto found = registry.authenticate("svc", secret);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->scopes, std::vector<std::string>{"items"});
    EXPECT_TRUE(found->allows_grant("client_credentials"));
    EXPECT_FALSE(found->allows_grant("password"));
    EXPECT_FALSE(registry.authenticate("svc", "wrong"));
    EXPECT_FALSE(registry.authenticate("other", secret));

    // Another handle on the same database (another process) deletes it.
    auto other = gatehouse::open_sqlite_store(dir / "db");
    gatehouse::save_clients(*other, {});
    registry.sync();
    EXPECT_FALSE(registry.authenticate("svc", secret));
    EXPECT_TRUE(gatehouse::load_clients(*other).empty());
  }
  fs::remove_all(dir);
}

}  // namespace
