// Reading a password from standard input or the terminal (see password_prompt.hpp).
#include "password_prompt.hpp"

#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "gatehouse/password.hpp"
#include "settings.hpp"

namespace gatehouse::cli {

std::string read_password(bool from_stdin, bool confirm) {
  std::string password;
  if (from_stdin) {
    if (!std::getline(std::cin, password))
      throw ExitError(kExitUsage, "no password on standard input");
    if (!password.empty() && password.back() == '\r') password.pop_back();
  } else {
    if (!isatty(STDIN_FILENO)) {
      throw ExitError(kExitUsage, "no terminal to ask for a password; use --password-stdin");
    }
    // Echo goes off before the prompt is shown, so nothing typed after the prompt is
    // ever echoed or discarded; TCSANOW keeps a line typed ahead (the repeat) intact.
    auto ask = [](const char* prompt) {
      termios old{};
      tcgetattr(STDIN_FILENO, &old);
      termios quiet = old;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
      std::cerr << prompt << std::flush;
      std::string line;
      std::getline(std::cin, line);
      tcsetattr(STDIN_FILENO, TCSANOW, &old);
      std::cerr << "\n";
      return line;
    };
    password = ask("Password: ");
    if (confirm && ask("Repeat password: ") != password) {
      throw ExitError(kExitUsage, "the passwords do not match");
    }
  }
  if (password.empty()) throw ExitError(kExitUsage, "the password is empty");
  if (password.size() > gatehouse::PasswordHasher::kMaxPasswordBytes ||
      password.find('\0') != std::string::npos) {
    throw ExitError(kExitUsage, "the password is longer than 4096 bytes or contains a NUL byte");
  }
  return password;
}

}  // namespace gatehouse::cli
