// Key and data files (src/security/secret_key.cpp, the SQLite store's open): directories
// made 0700 whatever the umask, files of other users or open to others refused, and
// processes that create the key together agree on one key.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <latch>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gatehouse/keys.hpp"
#include "gatehouse/store.hpp"

namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("gatehouse-files-test-" + std::to_string(rd()) + std::to_string(::getpid()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class Umask {
 public:
  explicit Umask(mode_t mask) : old_(::umask(mask)) {}
  ~Umask() { ::umask(old_); }
  Umask(const Umask&) = delete;
  Umask& operator=(const Umask&) = delete;

 private:
  mode_t old_;
};

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

TEST(PrivateFiles, EveryDirectoryMadeIs0700WhateverTheUmask) {
  TempDir tmp;
  for (mode_t mask : {mode_t{0}, mode_t{022}, mode_t{0277}}) {
    const fs::path root = tmp.path() / ("m" + std::to_string(mask));
    {
      Umask u(mask);
      gatehouse::ensure_private_dir(root / "a" / "b" / "data");
    }
    for (const auto& p : {root, root / "a", root / "a" / "b", root / "a" / "b" / "data"}) {
      EXPECT_EQ(mode_of(p), 0700u) << p << " umask " << mask;
    }
  }
}

TEST(PrivateFiles, ExistingParentsAreLeftAlone) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "shared");
  ::chmod((tmp.path() / "shared").c_str(), 0755);
  gatehouse::ensure_private_dir(tmp.path() / "shared" / "data");
  EXPECT_EQ(mode_of(tmp.path() / "shared"), 0755u);
  EXPECT_EQ(mode_of(tmp.path() / "shared" / "data"), 0700u);
}

TEST(PrivateFiles, NewKeyIs0600AndReadBack) {
  TempDir tmp;
  Umask u(0);
  const auto key = gatehouse::load_or_create_secret_key(tmp.path());
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(mode_of(tmp.path() / "secret_key"), 0600u);
  EXPECT_EQ(gatehouse::load_or_create_secret_key(tmp.path()), key);
  // no temporary file is left behind
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.path())) ++files;
  EXPECT_EQ(files, 1u);
}

TEST(PrivateFiles, KeyOpenToGroupOrOthersIsRefused) {
  TempDir tmp;
  std::ofstream(tmp.path() / "secret_key") << "k\n";
  for (mode_t mode : {0640u, 0604u, 0620u, 0602u, 0660u}) {
    ::chmod((tmp.path() / "secret_key").c_str(), mode);
    EXPECT_THROW((void)gatehouse::load_or_create_secret_key(tmp.path()), gatehouse::UnsafeFileError)
        << mode;
  }
  ::chmod((tmp.path() / "secret_key").c_str(), 0600);
  EXPECT_EQ(gatehouse::load_or_create_secret_key(tmp.path()), "k");
}

TEST(PrivateFiles, KeyAndDatabaseOfAnotherUserAreRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
  TempDir tmp;
  std::ofstream(tmp.path() / "secret_key") << "chosen-by-someone-else\n";
  ::chmod((tmp.path() / "secret_key").c_str(), 0600);
  ASSERT_EQ(::chown((tmp.path() / "secret_key").c_str(), 65534, 65534), 0);
  try {
    (void)gatehouse::load_or_create_secret_key(tmp.path());
    ADD_FAILURE() << "a key of another user was accepted";
  } catch (const gatehouse::UnsafeFileError& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to uid 65534"), std::string::npos) << e.what();
  }
  const auto db = tmp.path() / "gatehouse.db";
  { (void)gatehouse::open_sqlite_store(db); }
  ASSERT_EQ(::chown(db.c_str(), 65534, 65534), 0);
  EXPECT_THROW((void)gatehouse::open_sqlite_store(db), gatehouse::UnsafeFileError);
}

TEST(PrivateFiles, DatabaseOpenToOthersIsRefused) {
  TempDir tmp;
  const auto db = tmp.path() / "gatehouse.db";
  { (void)gatehouse::open_sqlite_store(db); }
  ::chmod(db.c_str(), 0644);
  EXPECT_THROW((void)gatehouse::open_sqlite_store(db), gatehouse::UnsafeFileError);
  ::chmod(db.c_str(), 0600);
  EXPECT_NO_THROW((void)gatehouse::open_sqlite_store(db));
}

TEST(PrivateFiles, ConcurrentCreatorsAgreeOnOneKey) {
  // Threads released together race to create the key of a fresh directory, many times:
  // every one must get the same key, and none may fail.
  constexpr int kThreads = 8;
  for (int round = 0; round < 25; ++round) {
    TempDir tmp;
    std::latch start(kThreads);
    std::vector<std::string> keys(kThreads);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        try {
          keys[static_cast<std::size_t>(i)] = gatehouse::load_or_create_secret_key(tmp.path());
        } catch (const std::exception& e) {
          errors[static_cast<std::size_t>(i)] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& e : errors) ASSERT_EQ(e, "") << "round " << round;
    EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 1u) << "round " << round;
  }
}

}  // namespace
