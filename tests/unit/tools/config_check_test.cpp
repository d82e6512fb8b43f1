// `config check`'s look at the data directory (tools/config_check.cpp): the files serve
// would open, refused when others may read or write them, each problem naming its setting.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "config_check.hpp"

namespace {

using gatehouse::cli::Setting;

class ConfigCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("SECRET_KEY");
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() /
           ("gatehouse-config-check-test-" + std::to_string(rd()) + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    ::chmod(dir_.c_str(), 0700);
    dir.key = "data-dir";
    dir.value = dir_.string();
    db.key = "database";
    alg.key = "signing-alg";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void write(const std::string& name, mode_t mode) const {
    std::ofstream(dir_ / name) << "x\n";
    ::chmod((dir_ / name).c_str(), mode);
  }
  std::vector<std::string> problems() const {
    std::vector<std::string> out;
    gatehouse::cli::check_data_files(dir, db, alg, out);
    return out;
  }

  std::filesystem::path dir_;
  Setting dir, db, alg;
};

TEST_F(ConfigCheck, MissingOrPrivateFilesAreFine) {
  EXPECT_TRUE(problems().empty());
  write("gatehouse.db", 0600);
  write("secret_key", 0600);
  EXPECT_TRUE(problems().empty());
}

TEST_F(ConfigCheck, FilesOthersMayReadAreProblemsNamingTheSetting) {
  write("gatehouse.db", 0644);
  write("secret_key", 0640);
  const auto found = problems();
  ASSERT_EQ(found.size(), 2u);
  for (const auto& p : found) EXPECT_NE(p.find("data-dir"), std::string::npos) << p;
  EXPECT_NE(found[0].find("secret_key"), std::string::npos) << found[0];
  EXPECT_NE(found[1].find("gatehouse.db"), std::string::npos) << found[1];
}

TEST_F(ConfigCheck, TheKeyFileCountsOnlyForHs256WithoutSecretKey) {
  write("secret_key", 0644);
  alg.value = "ES256";
  EXPECT_TRUE(problems().empty());
  alg.value = "hs256";
  EXPECT_EQ(problems().size(), 1u);
  ::setenv("SECRET_KEY", "from-the-environment", 1);
  EXPECT_TRUE(problems().empty());
  ::unsetenv("SECRET_KEY");
}

TEST_F(ConfigCheck, AnExplicitDatabaseFileIsCheckedUnderItsOwnSetting) {
  write("other.db", 0666);
  db.value = (dir_ / "other.db").string();
  const auto found = problems();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_NE(found[0].find("database"), std::string::npos) << found[0];
  db.value = "postgresql://db/gh";  // no files for a PostgreSQL store
  EXPECT_TRUE(problems().empty());
}

TEST_F(ConfigCheck, ADataDirThatIsAFile) {
  write("plain", 0600);
  dir.value = (dir_ / "plain").string();
  const auto found = problems();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_NE(found[0].find("not a directory"), std::string::npos) << found[0];
}

}  // namespace
