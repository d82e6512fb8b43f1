#include "settings.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>

#include "config_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

namespace gatehouse::cli {
namespace {

std::string lower(std::string v) {
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v;
}

bool all_digits(const std::string& v) {
  return !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
}

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

Setting& Setting::number(unsigned long lo, unsigned long hi) {
  is_number = true;
  min = lo;
  max = hi;
  return *this;
}

Setting& Setting::boolean() {
  is_boolean = true;
  return *this;
}

Setting& Setting::check(std::function<void(const Setting&)> fn) {
  checks.push_back(std::move(fn));
  return *this;
}

Setting& Setting::secret_when(std::function<bool(const std::string&)> is_secret,
                              std::function<std::string(const std::string&)> shown_as) {
  secret = std::move(is_secret);
  redact = std::move(shown_as);
  return *this;
}

std::string Setting::shown() const {
  if (!is_secret()) return "'" + value + "'";
  if (redact) return "'" + redact(value) + "'";
  return "(secret, not shown)";
}

void Setting::fail(const std::string& why) const {
  throw ExitError(kExitUsage, "invalid " + key + " " + shown() + " (from " + origin + "): " + why);
}

unsigned long Setting::as_number() const {
  const unsigned long hi = is_number ? max : static_cast<unsigned long>(-1);
  const unsigned long lo = is_number ? min : 0;
  auto range = [&] {
    return "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
  };
  if (!all_digits(value)) fail(range());
  try {
    std::size_t used = 0;
    const unsigned long v = std::stoul(value, &used);
    if (used == value.size() && v >= lo && v <= hi) return v;
  } catch (const std::exception&) {
  }
  fail(range());
}

bool Setting::as_bool() const {
  const std::string v = lower(value);
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  fail("must be true or false");
}

Setting& Settings::add(CLI::App* cmd, const std::string& flag, const std::string& key,
                       const std::string& env, std::string default_value, const std::string& help) {
  auto s = std::make_unique<Setting>();
  s->key = key;
  s->env = env;
  s->flag = flag;
  s->command = cmd;
  s->value = std::move(default_value);
  std::string text = help;
  if (!env.empty()) text += " [env " + env + "]";
  if (!s->value.empty()) text += " (default: " + s->value + ")";
  if (all_digits(s->value)) s->number(0, static_cast<unsigned long>(-1));
  if (s->value == "true" || s->value == "false") s->boolean();
  // A setting without a flag of its own comes from the environment or the file only.
  if (!flag.empty()) {
    cli_values_.push_back(std::make_unique<std::string>());
    s->option = cmd->add_option(flag, *cli_values_.back(), text);
  }
  settings_.push_back(std::move(s));
  return *settings_.back();
}

Setting* Settings::find(const CLI::App* cmd, std::string_view key) const {
  for (const auto& s : settings_) {
    if (s->command == cmd && s->key == key) return s.get();
  }
  return nullptr;
}

void Settings::resolve(const std::string& config_file) {
  resolve_into(config_file, nullptr, nullptr);
}

std::vector<std::string> Settings::check(const std::string& config_file, const CLI::App* cmd) {
  std::vector<std::string> problems;
  resolve_into(config_file, cmd, &problems);
  return problems;
}

std::vector<const Setting*> Settings::of(const CLI::App* cmd) const {
  std::vector<const Setting*> out;
  for (const auto& s : settings_) {
    if (s->command == cmd) out.push_back(s.get());
  }
  return out;
}

void Settings::resolve_into(const std::string& config_file, const CLI::App* only,
                            std::vector<std::string>* problems) {
  // Without `problems`, the first problem throws; with it, each one is kept and the
  // rest still checked.
  auto report = [problems](const std::string& message) {
    if (problems == nullptr) throw ExitError(kExitUsage, message);
    if (std::find(problems->begin(), problems->end(), message) == problems->end()) {
      problems->push_back(message);
    }
  };
  std::map<std::string, std::string> config;
  if (!config_file.empty()) config = read_config(config_file, report);
  std::size_t cli_index = 0;
  std::vector<Setting*> active;
  for (auto& s : settings_) {
    const std::string* cli_value = nullptr;
    if (s->option != nullptr) cli_value = cli_values_[cli_index++].get();
    if (only != nullptr ? s->command != only : s->command != nullptr && !s->command->parsed()) {
      continue;
    }
    active.push_back(s.get());
    if (s->option != nullptr && s->option->count() > 0) {
      s->value = *cli_value;
      s->source = Source::flag;
      s->origin = s->flag;
    } else if (const char* e = s->env.empty() ? nullptr : std::getenv(s->env.c_str());
               e != nullptr && *e != '\0') {
      s->value = e;
      s->source = Source::environment;
      s->origin = "environment variable " + s->env;
    } else if (auto it = config.find(s->key); it != config.end()) {
      s->value = it->second;
      s->source = Source::config_file;
      s->origin = "config file " + config_file;
    }
  }
  for (Setting* s : active) {
    try {
      if (s->is_number) (void)s->as_number();
      if (s->is_boolean) (void)s->as_bool();
      for (const auto& check : s->checks) check(*s);
    } catch (const ExitError& e) {
      report(e.what());
    }
  }
}

std::map<std::string, std::string> Settings::read_config(
    const std::string& config_file, const std::function<void(const std::string&)>& report) const {
  const int fd = ::open(config_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    report("cannot read config file " + config_file + ": " + std::strerror(errno));
    return {};
  }
  // The checks below and the parse read the same open file: a file swapped for another
  // between them (a symlink retargeted, a rename) cannot pass one and feed the other.
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    ::close(fd);
    report("config file " + config_file + " is not a regular file");
    return {};
  }
  constexpr std::size_t kMaxConfigBytes = 1 << 20;
  std::string text;
  int read_error = 0;
  for (char buf[8192];;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      read_error = errno;
      break;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      ::close(fd);
      report("config file " + config_file + " is larger than 1 MiB");
      return {};
    }
  }
  ::close(fd);
  if (read_error != 0) {
    report("cannot read config file " + config_file + ": " + std::strerror(read_error));
    return {};
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    report("config file " + config_file + " belongs to uid " + std::to_string(st.st_uid) +
           ", not to this user or root: whoever owns it chooses this server's settings");
  }
  if ((st.st_mode & 022) != 0) {
    report("config file " + config_file + " is writable by group or others (mode " +
           mode_text(st.st_mode) + "); chmod go-w it");
  }
  std::map<std::string, std::string> config;
  std::istringstream in(text);
  try {
    config = gatehouse::tools::parse_config(in);
  } catch (const std::exception& e) {
    report("config file " + config_file + ": " + e.what());
    return {};
  }
  std::set<std::string> known;
  for (const auto& s : settings_) known.insert(s->key);
  for (auto it = config.begin(); it != config.end();) {
    const auto& [key, value] = *it;
    if (known.count(key) == 0) {
      report("config file " + config_file + ": unknown setting '" + key + "'");
      it = config.erase(it);
      continue;
    }
    for (const auto& s : settings_) {
      if (s->key != key || !s->secret || !s->secret(value)) continue;
      if ((st.st_mode & 044) != 0) {
        report("config file " + config_file + " holds a secret (" + key +
               ") and is readable by group or others (mode " + mode_text(st.st_mode) +
               "); chmod 600 it");
        break;
      }
    }
    ++it;
  }
  return config;
}

unsigned long parse_number(const Setting& s, unsigned long max) {
  Setting bounded = s;
  bounded.checks.clear();
  if (!bounded.is_number || max < bounded.max) bounded.max = max;
  bounded.is_number = true;
  return bounded.as_number();
}

bool parse_bool(const Setting& s) {
  if (s.value.empty()) return false;
  return s.as_bool();
}

void require_ip_address(const Setting& s) {
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(s.value, ec);
  if (ec) s.fail("must be an IPv4 or IPv6 address to listen on, such as 127.0.0.1 or ::1");
}

void require_directory(const Setting& s) {
  if (s.value.empty()) return;
  std::error_code ec;
  if (!std::filesystem::is_directory(s.value, ec)) s.fail("no such directory");
}

void require_not_empty(const Setting& s) {
  if (s.value.empty()) s.fail("must not be empty");
}

std::string read_secret_file(const Setting& s) {
  const int fd = ::open(s.value.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) s.fail("cannot open it: " + std::string(std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    s.fail("not a regular file");
  }
  if (st.st_uid != ::geteuid()) {
    ::close(fd);
    s.fail("the file belongs to uid " + std::to_string(st.st_uid) + ", not to this user (uid " +
           std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    s.fail("the file is open to group or others (mode " + mode_text(st.st_mode) +
           "); chmod 600 it");
  }
  std::string text;
  char buf[1024];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 65536) {
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  text = text.substr(0, text.find('\n'));
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) s.fail("the file is empty");
  return text;
}

}  // namespace gatehouse::cli
