// The password of `user add`, `user passwd` and `hash`: one line from standard input
// (--password-stdin), or typed at the terminal without echo (twice when confirming).
#pragma once

#include <string>

namespace gatehouse::cli {

// Reads a password: from standard input (one line, a trailing CR dropped) or from the
// terminal without echo. An empty password, one longer than 4096 bytes or holding a
// NUL byte, no line, no terminal, or a repeat that differs is a usage error (ExitError,
// exit code 2).
std::string read_password(bool from_stdin, bool confirm);

}  // namespace gatehouse::cli
