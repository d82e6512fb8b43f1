// Reading users exported from a FastAPI app (`gatehouse user import FILE`), apart from
// the command so that the fuzzer (fuzz/fuzz_import.cpp) and tests reach it.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/store.hpp"

namespace gatehouse::tools {

// What is wrong with an import file; the command answers it as a usage error.
struct ImportError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Users from `text`: a JSON array of objects, the tutorial's {username: {...}} dict,
// or CSV with a header line; each with at least username and a bcrypt or argon2
// hashed_password (email, full_name, disabled too). `source` names the input in
// messages. Throws ImportError.
std::vector<User> parse_import(std::string_view text, const std::string& source);

// The users of the file at `path` (parse_import); an unreadable file is an ImportError
// "cannot read PATH".
std::vector<User> read_import_file(const std::string& path);

}  // namespace gatehouse::tools
