// The command's settings resolver (tools/settings.cpp): precedence, where each value
// came from, and the checks that stop a bad setting at start-up with exit code 2.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "settings.hpp"

namespace {

using gatehouse::cli::ExitError;
using gatehouse::cli::kExitUsage;
using gatehouse::cli::Setting;
using gatehouse::cli::Settings;
using gatehouse::cli::Source;

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("gatehouse-settings-test-" + std::to_string(rd()) + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& name, const std::string& text, mode_t mode) const {
    const auto file = path_ / name;
    std::ofstream(file) << text;
    ::chmod(file.c_str(), mode);
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

// An environment variable set for one test.
class Env {
 public:
  Env(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~Env() { ::unsetenv(name_); }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

 private:
  const char* name_;
};

// A small command line like the real one: `serve` and `other`, a few settings.
struct Cli {
  CLI::App app{"test"};
  Settings settings;
  CLI::App* serve = app.add_subcommand("serve");
  CLI::App* other = app.add_subcommand("other");
  Setting& port = settings.add(serve, "--port", "port", "GH_TEST_PORT", "8000", "Port");
  Setting& host = settings.add(serve, "--host", "host", "GH_TEST_HOST", "127.0.0.1", "Host");
  Setting& log = settings.add(serve, "", "access-log", "GH_TEST_LOG", "true", "");
  Setting& db = settings.add(serve, "--database", "database", "GH_TEST_DB", "", "Database");
  Setting& other_port = settings.add(other, "--port", "port", "GH_TEST_PORT", "1", "Port");

  Cli() {
    app.require_subcommand(1);
    port.number(0, 65535);
    other_port.number(1, 10);
    host.check(gatehouse::cli::require_ip_address);
    db.secret_when([](const std::string& v) { return v.find(":secret@") != std::string::npos; },
                   [](const std::string& v) {
                     auto at = v.find(":secret@");
                     return v.substr(0, at) + v.substr(at + 7);
                   });
  }

  void parse(std::vector<std::string> args) {
    args.insert(args.begin(), "gatehouse");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    app.parse(static_cast<int>(argv.size()), argv.data());
  }
};

std::string usage_error(Cli& cli, const std::string& config = "") {
  try {
    cli.settings.resolve(config);
  } catch (const ExitError& e) {
    EXPECT_EQ(e.code, kExitUsage);
    return e.what();
  }
  ADD_FAILURE() << "no usage error";
  return "";
}

TEST(Settings, FlagBeatsEnvironmentBeatsConfigBeatsDefault) {
  TempDir dir;
  const auto config = dir.write("c.toml", "port = 1111\nhost = \"::1\"\n", 0600);
  {
    Cli cli;
    cli.parse({"serve"});
    cli.settings.resolve(config);
    EXPECT_EQ(cli.port.as_number(), 1111u);
    EXPECT_EQ(cli.port.source, Source::config_file);
    EXPECT_EQ(cli.port.origin, "config file " + config);
    EXPECT_EQ(cli.log.source, Source::default_value);
    EXPECT_TRUE(cli.log.as_bool());
  }
  Env env("GH_TEST_PORT", "2222");
  {
    Cli cli;
    cli.parse({"serve"});
    cli.settings.resolve(config);
    EXPECT_EQ(cli.port.as_number(), 2222u);
    EXPECT_EQ(cli.port.origin, "environment variable GH_TEST_PORT");
    EXPECT_EQ(cli.host.value, "::1");
  }
  Cli cli;
  cli.parse({"serve", "--port", "3333"});
  cli.settings.resolve(config);
  EXPECT_EQ(cli.port.as_number(), 3333u);
  EXPECT_EQ(cli.port.source, Source::flag);
  EXPECT_EQ(cli.port.origin, "--port");
}

TEST(Settings, BadNumberNamesTheSettingAndItsSource) {
  {
    Cli cli;
    cli.parse({"serve", "--port", "70000"});
    EXPECT_EQ(usage_error(cli),
              "invalid port '70000' (from --port): must be a whole number from 0 to 65535");
  }
  {
    Env env("GH_TEST_PORT", "-1");
    Cli cli;
    cli.parse({"serve"});
    EXPECT_EQ(usage_error(cli),
              "invalid port '-1' (from environment variable GH_TEST_PORT): "
              "must be a whole number from 0 to 65535");
  }
  for (const char* bad : {"", " 80", "80x", "0x50", "99999999999999999999999"}) {
    Cli cli;
    cli.parse({"serve", "--port", bad});
    EXPECT_NE(usage_error(cli).find("invalid port"), std::string::npos) << bad;
  }
}

TEST(Settings, TypesComeFromTheDefaultWhenNotDeclared) {
  TempDir dir;
  const auto config = dir.write("c.toml", "access-log = maybe\n", 0600);
  Cli cli;
  cli.parse({"serve"});
  EXPECT_EQ(usage_error(cli, config),
            "invalid access-log 'maybe' (from config file " + config + "): must be true or false");
  Cli numbers;
  Setting& workers = numbers.settings.add(numbers.serve, "--workers", "workers", "", "0", "");
  numbers.parse({"serve", "--workers", "many"});
  EXPECT_NE(usage_error(numbers).find("invalid workers 'many' (from --workers)"),
            std::string::npos);
  EXPECT_TRUE(workers.is_number);
}

TEST(Settings, OnlyTheCommandBeingRunIsChecked) {
  Env env("GH_TEST_PORT", "500");  // too big for `other`, fine for `serve`
  Cli cli;
  cli.parse({"serve"});
  cli.settings.resolve("");
  EXPECT_EQ(cli.port.as_number(), 500u);
  Cli other;
  other.parse({"other"});
  EXPECT_NE(usage_error(other).find("must be a whole number from 1 to 10"), std::string::npos);
}

TEST(Settings, CustomChecksRun) {
  Cli cli;
  cli.parse({"serve", "--host", "localhost"});
  EXPECT_NE(usage_error(cli).find("invalid host 'localhost' (from --host): must be an IPv4"),
            std::string::npos);
}

TEST(Settings, UnknownConfigKeysAreRefused) {
  TempDir dir;
  const auto config = dir.write("c.toml", "prot = 8001\n", 0600);
  Cli cli;
  cli.parse({"serve"});
  EXPECT_EQ(usage_error(cli, config), "config file " + config + ": unknown setting 'prot'");
}

TEST(Settings, ConfigFileMustNotBeWritableByOthers) {
  TempDir dir;
  const auto config = dir.write("c.toml", "port = 8001\n", 0666);
  Cli cli;
  cli.parse({"serve"});
  EXPECT_NE(usage_error(cli, config).find("is writable by group or others (mode 0666)"),
            std::string::npos);
}

TEST(Settings, ConfigFileLargerThanOneMebibyteIsRefused) {
  TempDir dir;
  std::string big = "port = 8001\n";
  while (big.size() <= (1u << 20)) big += "# padding padding padding padding padding padding\n";
  const auto config = dir.write("big.toml", big, 0600);
  Cli cli;
  cli.parse({"serve"});
  EXPECT_EQ(usage_error(cli, config), "config file " + config + " is larger than 1 MiB");
}

TEST(Settings, ConfigFileWithASecretMustBePrivate) {
  TempDir dir;
  const auto open_plain = dir.write("plain.toml", "database = \"postgresql://u@h/db\"\n", 0644);
  const auto open_secret =
      dir.write("secret.toml", "database = \"postgresql://u:secret@h/db\"\n", 0644);
  const auto closed_secret =
      dir.write("closed.toml", "database = \"postgresql://u:secret@h/db\"\n", 0600);
  {
    Cli cli;
    cli.parse({"serve"});
    cli.settings.resolve(open_plain);  // no secret: readable is fine
    EXPECT_EQ(cli.db.value, "postgresql://u@h/db");
  }
  {
    Cli cli;
    cli.parse({"serve"});
    const auto message = usage_error(cli, open_secret);
    EXPECT_NE(message.find("holds a secret (database) and is readable by group or others"),
              std::string::npos)
        << message;
    EXPECT_EQ(message.find("secret@"), std::string::npos) << message;
  }
  Cli cli;
  cli.parse({"serve"});
  cli.settings.resolve(closed_secret);
  EXPECT_EQ(cli.db.value, "postgresql://u:secret@h/db");
  EXPECT_TRUE(cli.db.is_secret());
  try {
    cli.db.fail("unreachable");
  } catch (const ExitError& e) {
    EXPECT_EQ(std::string(e.what()), "invalid database 'postgresql://u@h/db' (from config file " +
                                         closed_secret + "): unreachable");
  }
}

TEST(Settings, ParseNumberKeepsTheTighterBound) {
  Cli cli;
  cli.parse({"serve", "--port", "300"});
  cli.settings.resolve("");
  EXPECT_EQ(gatehouse::cli::parse_number(cli.port, 1000), 300u);
  EXPECT_THROW((void)gatehouse::cli::parse_number(cli.port, 200), ExitError);
  EXPECT_TRUE(gatehouse::cli::parse_bool(cli.log));
}

TEST(Settings, SecretFilesMustBeClosedToOthers) {
  TempDir dir;
  Cli cli;
  Setting& file = cli.settings.add(cli.serve, "--password-file", "password-file", "", "", "");
  cli.parse({"serve"});
  cli.settings.resolve("");
  file.value = dir.write("open", "hunter2\n", 0644);
  try {
    (void)gatehouse::cli::read_secret_file(file);
    ADD_FAILURE() << "an open password file was read";
  } catch (const ExitError& e) {
    EXPECT_EQ(e.code, kExitUsage);
    EXPECT_NE(std::string(e.what()).find("open to group or others (mode 0644)"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos);
  }
  file.value = dir.write("closed", "hunter2\r\nsecond line\n", 0600);
  EXPECT_EQ(gatehouse::cli::read_secret_file(file), "hunter2");
  file.value = dir.write("empty", "\n", 0600);
  EXPECT_THROW((void)gatehouse::cli::read_secret_file(file), ExitError);
}

}  // namespace
