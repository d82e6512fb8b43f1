// Signing key material kept in the data directory.
#pragma once

#include <filesystem>
#include <string>

namespace gatehouse {

// The HS256 secret kept in `dir`/secret_key: read if present, otherwise 32 random
// bytes (hex) are generated and written there with mode 0600. Throws on I/O errors
// or when the file is readable by others.
std::string load_or_create_secret_key(const std::filesystem::path& dir);

// 32 random bytes as 64 hex characters: a new HS256 secret.
std::string generate_secret_key();

// Creates `dir` (and parents) with mode 0700 if missing.
void ensure_private_dir(const std::filesystem::path& dir);

}  // namespace gatehouse
