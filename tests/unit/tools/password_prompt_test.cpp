// The command's password prompt (tools/password_prompt.cpp), fed through standard input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <iostream>
#include <sstream>
#include <string>

#include "password_prompt.hpp"
#include "settings.hpp"

namespace {

using gatehouse::cli::ExitError;
using gatehouse::cli::kExitUsage;
using gatehouse::cli::read_password;

// std::cin reads `text` while one exists.
class StdinFrom {
 public:
  explicit StdinFrom(const std::string& text) : in_(text), old_(std::cin.rdbuf(in_.rdbuf())) {}
  ~StdinFrom() {
    std::cin.rdbuf(old_);
    std::cin.clear();
  }
  StdinFrom(const StdinFrom&) = delete;
  StdinFrom& operator=(const StdinFrom&) = delete;

 private:
  std::istringstream in_;
  std::streambuf* old_;
};

std::string refusal(const std::string& input) {
  StdinFrom in(input);
  try {
    (void)read_password(true, false);
  } catch (const ExitError& e) {
    EXPECT_EQ(e.code, kExitUsage);
    return e.what();
  }
  return "";
}

TEST(PasswordPrompt, StdinGivesItsFirstLineWithoutLineEnd) {
  {
    StdinFrom in("s3cret pass\nsecond line\n");
    EXPECT_EQ(read_password(true, true), "s3cret pass");  // no repeat asked from stdin
  }
  {
    StdinFrom in("windows\r\n");
    EXPECT_EQ(read_password(true, false), "windows");
  }
  {
    StdinFrom in("no newline at the end");
    EXPECT_EQ(read_password(true, false), "no newline at the end");
  }
}

TEST(PasswordPrompt, StdinRefusals) {
  EXPECT_EQ(refusal(""), "no password on standard input");
  EXPECT_EQ(refusal("\n"), "the password is empty");
  EXPECT_EQ(refusal(std::string(4097, 'x') + "\n"),
            "the password is longer than 4096 bytes or contains a NUL byte");
  EXPECT_EQ(refusal(std::string("a\0b\n", 4)),
            "the password is longer than 4096 bytes or contains a NUL byte");
  StdinFrom in(std::string(4096, 'x') + "\n");
  EXPECT_EQ(read_password(true, false).size(), 4096u);
}

TEST(PasswordPrompt, NoTerminalIsAUsageErrorPointingAtStdin) {
  if (::isatty(STDIN_FILENO)) GTEST_SKIP() << "standard input is a terminal here";
  try {
    (void)read_password(false, true);
    ADD_FAILURE() << "no error without a terminal";
  } catch (const ExitError& e) {
    EXPECT_EQ(e.code, kExitUsage);
    EXPECT_STREQ(e.what(), "no terminal to ask for a password; use --password-stdin");
  }
}

}  // namespace
