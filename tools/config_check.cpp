// `gatehouse config check`'s look at the data directory (see config_check.hpp).
#include "config_check.hpp"

#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "cli_values.hpp"
#include "gatehouse/keys.hpp"
#include "gatehouse/store.hpp"

namespace gatehouse::cli {

void check_data_files(const Setting& dir, const Setting& db, const Setting& alg,
                      std::vector<std::string>& problems) {
  auto check_private = [&](const Setting& s, const std::filesystem::path& file) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) return;
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    try {
      if (fd < 0) {
        s.fail("cannot open " + file.string() + ": " + std::strerror(errno));
      }
      gatehouse::require_private_file(fd, file);
      ::close(fd);
    } catch (const ExitError& e) {
      problems.emplace_back(e.what());
    } catch (const std::exception& e) {
      if (fd >= 0) ::close(fd);
      try {
        s.fail(e.what());
      } catch (const ExitError& f) {
        problems.emplace_back(f.what());
      }
    }
  };
  std::error_code ec;
  if (std::filesystem::exists(dir.value, ec) && !std::filesystem::is_directory(dir.value, ec)) {
    try {
      dir.fail("not a directory");
    } catch (const ExitError& e) {
      problems.emplace_back(e.what());
    }
    return;
  }
  const char* env_key = std::getenv("SECRET_KEY");
  const bool hs256 = alg.value.empty() || ::strcasecmp(alg.value.c_str(), "HS256") == 0;
  if (!is_postgres_url(db.value) && hs256 && (env_key == nullptr || *env_key == '\0')) {
    check_private(dir, std::filesystem::path(dir.value) / "secret_key");
  }
  if (!is_postgres_url(db.value)) {
    if (db.value.empty()) {
      check_private(dir, std::filesystem::path(dir.value) / "gatehouse.db");
    } else {
      check_private(db, db.value);
    }
  }
}

}  // namespace gatehouse::cli
