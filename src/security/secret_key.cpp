#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "gatehouse/keys.hpp"
#include "gatehouse/log.hpp"

namespace gatehouse {
namespace {

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Flushes a directory's entries (a new file's name) to disk.
void sync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + dir.string() + ": " + std::strerror(errno));
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot sync " + dir.string() + ": " + std::strerror(errno));
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    throw std::runtime_error("no randomness for a key");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  OPENSSL_cleanse(raw.data(), raw.size());
  return out;
}

}  // namespace

void require_private_file(int fd, const std::filesystem::path& file) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw std::runtime_error("cannot stat " + file.string() + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw UnsafeFileError(file.string() + " is not a regular file");
  if (st.st_uid != ::geteuid()) {
    throw UnsafeFileError(file.string() + " belongs to uid " + std::to_string(st.st_uid) +
                          ", not to this server's user (uid " + std::to_string(::geteuid()) +
                          "): whoever owns it controls it; refusing to use it");
  }
  if ((st.st_mode & 077) != 0) {
    throw UnsafeFileError(file.string() + " is open to group or others (mode " +
                          mode_text(st.st_mode) + "); chmod 600 it");
  }
}

void ensure_private_dir(const std::filesystem::path& dir) {
  if (dir.empty()) throw std::runtime_error("the data directory is empty");
  // The missing directories, innermost first; each is made 0700 whatever the umask.
  std::vector<std::filesystem::path> missing;
  std::error_code ec;
  for (auto p = dir.lexically_normal(); !p.empty() && !std::filesystem::exists(p, ec);
       p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0700) == 0) {
      if (::chmod(it->c_str(), 0700) != 0) {
        throw std::runtime_error("cannot chmod " + it->string() + ": " + std::strerror(errno));
      }
    } else if (errno != EEXIST) {
      throw std::runtime_error("cannot create " + it->string() + ": " + std::strerror(errno));
    }
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    throw std::runtime_error(dir.string() + " is not a directory");
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    default_logger()->event(
        LogLevel::warning, "data_dir_open",
        {{"message", "gatehouse: warning: " + dir.string() + " is open to other users (mode " +
                         mode + "); its files are 0600, but chmod 700 it to hide their names too"},
         {"dir", dir.string()},
         {"mode", mode}});
  }
}

std::string generate_secret_key() { return random_hex(32); }

std::string load_or_create_secret_key(const std::filesystem::path& dir) {
  const auto file = dir / "secret_key";
  // Two rounds at most: read the key, else publish a new one and read back whichever
  // key was published first (another process may have won the race).
  for (int round = 0; round < 2; ++round) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) {
      std::string key;
      try {
        require_private_file(fd, file);
        char buf[256];
        ssize_t n = 0;
        while ((n = ::read(fd, buf, sizeof buf)) > 0 && key.size() < 65536) {
          key.append(buf, static_cast<std::size_t>(n));
        }
      } catch (...) {
        ::close(fd);
        throw;
      }
      ::close(fd);
      while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
      if (key.empty()) throw std::runtime_error(file.string() + " is empty");
      return key;
    }
    if (errno != ENOENT) {
      throw std::runtime_error("cannot read " + file.string() + ": " + std::strerror(errno));
    }
    // Written whole and synced under a temporary name, then published with link(), which
    // never replaces an existing file: readers see no key or a complete one, and when
    // two processes start together the first link wins and both read its key.
    const auto temp = dir / (".secret_key." + std::to_string(::getpid()) + "." + random_hex(8));
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      throw std::runtime_error("cannot create " + temp.string() + ": " + std::strerror(errno));
    }
    const std::string line = generate_secret_key() + "\n";
    const bool written =
        ::fchmod(fd, 0600) == 0 &&
        ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
        ::fsync(fd) == 0;
    ::close(fd);
    int published = written ? ::link(temp.c_str(), file.c_str()) : -1;
    int error = errno;
    if (written && published != 0 && error != EEXIST) {
      // A file system without hard links: a rename that refuses to replace.
      published = ::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, file.c_str(), RENAME_NOREPLACE);
      error = errno;
    }
    ::unlink(temp.c_str());
    if (!written) throw std::runtime_error("cannot write " + temp.string());
    if (published != 0 && error != EEXIST) {
      throw std::runtime_error("cannot create " + file.string() + ": " + std::strerror(error));
    }
    sync_dir(dir);
  }
  throw std::runtime_error("cannot read back " + file.string());
}

}  // namespace gatehouse
