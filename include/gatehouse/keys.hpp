// Signing key material kept in the data directory.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

namespace gatehouse {

// A key or data file that belongs to another user or is open to group or others.
struct UnsafeFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The HS256 secret kept in `dir`/secret_key: read if present, otherwise 32 random
// bytes (hex) are written to a temporary file (0600, synced), published under that name
// with link() (never replacing a key another process published first), the directory
// synced, and the key read back. Throws UnsafeFileError when the file is not this
// user's or is open to group or others, std::runtime_error on I/O errors.
std::string load_or_create_secret_key(const std::filesystem::path& dir);

// Throws UnsafeFileError unless `fd` (opened from `file`) is a regular file owned by this
// process's effective user with no permission bits for group or others.
void require_private_file(int fd, const std::filesystem::path& file);

// 32 random bytes as 64 hex characters: a new HS256 secret.
std::string generate_secret_key();

// Creates `dir` and every missing parent with mode 0700, whatever the umask.
void ensure_private_dir(const std::filesystem::path& dir);

}  // namespace gatehouse
