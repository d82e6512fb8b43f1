#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "gatehouse/keys.hpp"

namespace gatehouse {

void ensure_private_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    throw std::runtime_error(dir.string() + " is not a directory");
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    std::fprintf(stderr,
                 "gatehouse: warning: %s is open to other users (mode %03o); its files are "
                 "0600, but chmod 700 it to hide their names too\n",
                 dir.c_str(), static_cast<unsigned>(st.st_mode & 0777));
  }
}

std::string generate_secret_key() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no randomness for a key");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key;
  for (unsigned char c : raw) {
    key += kHex[c >> 4];
    key += kHex[c & 15];
  }
  OPENSSL_cleanse(raw, sizeof raw);
  return key;
}

std::string load_or_create_secret_key(const std::filesystem::path& dir) {
  const auto file = dir / "secret_key";
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st {};
    ::fstat(fd, &st);
    if ((st.st_mode & 077) != 0) {
      ::close(fd);
      throw std::runtime_error(file.string() + " is readable by others; chmod 600 it");
    }
    std::string key;
    char buf[256];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) key.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    if (key.empty()) throw std::runtime_error(file.string() + " is empty");
    return key;
  }
  std::string key = generate_secret_key();
  fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + file.string());
  std::string line = key + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + file.string());
  return key;
}

}  // namespace gatehouse
