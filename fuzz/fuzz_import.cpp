// The user importer (`gatehouse user import FILE`): JSON (a list of users or the
// tutorial's {name: user} dict) and CSV with a header line.
//
// Findings: any sanitizer report or hang; an exception other than ImportError (the
// command would answer it as an internal error instead of a usage error); a user
// accepted without a username, or with a hash that is neither bcrypt nor argon2.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "importer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& u : gatehouse::tools::parse_import(text, "users")) {
      fuzz::require(!u.username.empty(), "a user without a name");
      const auto& h = u.hashed_password;
      fuzz::require(h.rfind("$2", 0) == 0 || h.rfind("$argon2i", 0) == 0,
                    "a hash that is neither bcrypt nor argon2");
    }
  } catch (const gatehouse::tools::ImportError&) {
    // A usage error with a message: what the command answers.
  }
  return 0;
}
