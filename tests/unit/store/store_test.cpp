// The SQLite user store (src/store/sqlite_store.cpp), in a fresh temporary directory per test.
#include "gatehouse/store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gatehouse/keys.hpp"

namespace {

namespace fs = std::filesystem;
using gatehouse::StoreStatus;
using gatehouse::User;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "gatehouse-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    file_ = dir_ / "users.db";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<gatehouse::UserStore> open() { return gatehouse::open_sqlite_store(file_); }

  static unsigned mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return static_cast<unsigned>(st.st_mode) & 0777u;
  }

  fs::path dir_;
  fs::path file_;
};

User johndoe() {
  return User{"johndoe", "johndoe@example.com", "John Doe", false, "$2b$12$hash-of-secret"};
}

TEST_F(SqliteStoreTest, AddedUserIsFound) {
  auto store = open();
  EXPECT_EQ(store->add(johndoe()), StoreStatus::ok);
  auto u = store->find("johndoe");
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->username, "johndoe");
  EXPECT_EQ(u->email, "johndoe@example.com");
  EXPECT_EQ(u->full_name, "John Doe");
  EXPECT_FALSE(u->disabled);
  EXPECT_EQ(u->hashed_password, "$2b$12$hash-of-secret");
}

TEST_F(SqliteStoreTest, UnknownUserNotFound) {
  auto store = open();
  EXPECT_EQ(store->find("nobody"), nullptr);
  EXPECT_EQ(store->set_disabled("nobody", true), StoreStatus::not_found);
  EXPECT_EQ(store->set_password_hash("nobody", "h"), StoreStatus::not_found);
  EXPECT_EQ(store->remove("nobody"), StoreStatus::not_found);
}

TEST_F(SqliteStoreTest, UsernamesAreCaseSensitive) {
  auto store = open();
  store->add(johndoe());
  EXPECT_EQ(store->find("JohnDoe"), nullptr);
  EXPECT_EQ(store->find("johndoe "), nullptr);
}

TEST_F(SqliteStoreTest, NullOptionalFieldsKept) {
  auto store = open();
  EXPECT_EQ(store->add(User{"bare", std::nullopt, std::nullopt, true, "h"}), StoreStatus::ok);
  auto u = store->find("bare");
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->email, std::nullopt);
  EXPECT_EQ(u->full_name, std::nullopt);
  EXPECT_TRUE(u->disabled);
}

TEST_F(SqliteStoreTest, NonAsciiUsernameRoundTrips) {
  auto store = open();
  store->add(User{"jos\xc3\xa9", std::nullopt, "Jos\xc3\xa9 \xf0\x9f\x98\x80", false, "h"});
  auto u = store->find("jos\xc3\xa9");
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->full_name, "Jos\xc3\xa9 \xf0\x9f\x98\x80");
}

TEST_F(SqliteStoreTest, DuplicateAddGivesExistsAndKeepsOriginal) {
  auto store = open();
  EXPECT_EQ(store->add(johndoe()), StoreStatus::ok);
  auto other = johndoe();
  other.hashed_password = "other";
  other.disabled = true;
  EXPECT_EQ(store->add(other), StoreStatus::exists);
  auto u = store->find("johndoe");
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->hashed_password, "$2b$12$hash-of-secret");
  EXPECT_FALSE(u->disabled);
}

TEST_F(SqliteStoreTest, ListSortedByUsername) {
  auto store = open();
  EXPECT_TRUE(store->list().empty());
  for (const auto& u : gatehouse::demo_users()) store->add(u);
  store->add(User{"bob", std::nullopt, std::nullopt, false, "h"});
  auto users = store->list();
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[0].username, "alice");
  EXPECT_TRUE(users[0].disabled);
  EXPECT_EQ(users[0].full_name, "Alice Wonderson");
  EXPECT_EQ(users[1].username, "bob");
  EXPECT_EQ(users[2].username, "johndoe");
}

TEST_F(SqliteStoreTest, SetDisabled) {
  auto store = open();
  store->add(johndoe());
  EXPECT_EQ(store->set_disabled("johndoe", true), StoreStatus::ok);
  EXPECT_TRUE(store->find("johndoe")->disabled);
  EXPECT_EQ(store->set_disabled("johndoe", false), StoreStatus::ok);
  EXPECT_FALSE(store->find("johndoe")->disabled);
}

TEST_F(SqliteStoreTest, SetPasswordHash) {
  auto store = open();
  store->add(johndoe());
  EXPECT_EQ(store->set_password_hash("johndoe", "$argon2id$new"), StoreStatus::ok);
  EXPECT_EQ(store->find("johndoe")->hashed_password, "$argon2id$new");
}

TEST_F(SqliteStoreTest, RemoveThenNotFound) {
  auto store = open();
  store->add(johndoe());
  EXPECT_EQ(store->remove("johndoe"), StoreStatus::ok);
  EXPECT_EQ(store->find("johndoe"), nullptr);
  EXPECT_EQ(store->remove("johndoe"), StoreStatus::not_found);
  EXPECT_EQ(store->add(johndoe()), StoreStatus::ok);  // the name is free again
}

TEST_F(SqliteStoreTest, FoundUserIsASnapshot) {
  auto store = open();
  store->add(johndoe());
  auto before = store->find("johndoe");
  store->set_disabled("johndoe", true);
  EXPECT_FALSE(before->disabled);
}

TEST_F(SqliteStoreTest, DatabaseFileIsPrivate) {
  auto store = open();
  store->add(johndoe());
  EXPECT_EQ(mode_of(file_), 0600u);
  for (const char* suffix : {"-wal", "-shm"}) {
    fs::path side = file_.string() + suffix;
    if (fs::exists(side)) {
      EXPECT_EQ(mode_of(side), 0600u) << side;
    }
  }
}

TEST_F(SqliteStoreTest, ExistingFileOpenToOthersIsRefused) {
  // Refused, not silently chmod-ed: someone else may have read or changed it already.
  { auto store = open(); }
  ASSERT_EQ(::chmod(file_.c_str(), 0644), 0);
  EXPECT_THROW((void)open(), gatehouse::UnsafeFileError);
  EXPECT_EQ(mode_of(file_), 0644u);
}

TEST_F(SqliteStoreTest, CreatedOnlyOnFirstOpen) {
  {
    auto store = open();
    EXPECT_TRUE(store->created());
  }
  auto again = open();
  EXPECT_FALSE(again->created());
}

TEST_F(SqliteStoreTest, UserSurvivesReopen) {
  {
    auto store = open();
    store->add(johndoe());
    store->set_disabled("johndoe", true);
  }
  auto store = open();
  auto u = store->find("johndoe");
  ASSERT_NE(u, nullptr);
  EXPECT_TRUE(u->disabled);
  EXPECT_EQ(u->email, "johndoe@example.com");
}

TEST_F(SqliteStoreTest, SettingsGetAndSet) {
  auto store = open();
  EXPECT_EQ(store->setting("secret_key"), std::nullopt);
  store->set_setting("secret_key", "abc");
  EXPECT_EQ(store->setting("secret_key"), "abc");
  store->set_setting("secret_key", "def");
  EXPECT_EQ(store->setting("secret_key"), "def");
  EXPECT_EQ(store->setting("other"), std::nullopt);
  store->set_setting("empty", "");
  EXPECT_EQ(store->setting("empty"), "");
}

TEST_F(SqliteStoreTest, SettingsSurviveReopen) {
  { open()->set_setting("k", "v"); }
  EXPECT_EQ(open()->setting("k"), "v");
}

TEST_F(SqliteStoreTest, TwoStoresOnOneFileSeeEachOther) {
  auto a = open();
  auto b = open();
  a->add(johndoe());
  EXPECT_NE(b->find("johndoe"), nullptr);
}

TEST_F(SqliteStoreTest, UnopenablePathThrows) {
  EXPECT_THROW((void)gatehouse::open_sqlite_store(dir_ / "missing-dir" / "users.db"),
               std::runtime_error);
}

}  // namespace
