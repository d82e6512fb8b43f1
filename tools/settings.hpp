// The gatehouse command's settings: each has a flag, an environment variable and a
// config-file key, resolved as flag > environment > config file > default, and is
// checked at start-up, before anything is opened, created or served. A bad value stops
// the command with exit code 2 and a message naming the setting and where its value
// came from.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::cli {

// Exit codes a script can rely on.
inline constexpr int kExitRuntime = 1;  // something failed while running
inline constexpr int kExitUsage = 2;    // a bad argument, setting, config file or unsafe file
inline constexpr int kExitNoUser = 3;
inline constexpr int kExitExists = 4;

struct ExitError : std::runtime_error {
  int code;
  ExitError(int c, const std::string& what) : std::runtime_error(what), code(c) {}
};

enum class Source { default_value, config_file, environment, flag };

struct Setting {
  std::string key;   // config-file key, e.g. "port"
  std::string env;   // environment variable, e.g. "GATEHOUSE_PORT"
  std::string flag;  // e.g. "--port"; empty when the setting has no flag of its own
  CLI::App* command = nullptr;
  CLI::Option* option = nullptr;
  std::string value;  // the default, then the resolved value
  Source source = Source::default_value;
  std::string origin = "default";  // where the value came from, for messages

  // Checks run by Settings::resolve; each throws through fail().
  std::vector<std::function<void(const Setting&)>> checks;
  // True when the value is a secret (a URL with a password...): it is never shown in a
  // message, and a config file holding it must be closed to group and others.
  std::function<bool(const std::string&)> secret;
  // How the value appears in messages when it is a secret (default: not at all).
  std::function<std::string(const std::string&)> redact;

  // A whole number in [min, max]; as_number() then reads it.
  Setting& number(unsigned long min, unsigned long max);
  // true/false, 1/0, yes/no, on/off (any case); as_bool() then reads it.
  Setting& boolean();
  // Any further check: `fn` calls s.fail("why") when the value is not acceptable.
  Setting& check(std::function<void(const Setting&)> fn);
  // Marks values for which `is_secret` holds as secrets, shown through `shown`.
  Setting& secret_when(std::function<bool(const std::string&)> is_secret,
                       std::function<std::string(const std::string&)> shown = {});

  [[nodiscard]] unsigned long as_number() const;
  [[nodiscard]] bool as_bool() const;
  [[nodiscard]] bool is_secret() const { return secret && secret(value); }
  // The value as messages may show it: quoted, or redacted when it is a secret.
  [[nodiscard]] std::string shown() const;
  // Throws ExitError(kExitUsage): "invalid KEY 'VALUE' (from ORIGIN): WHY".
  [[noreturn]] void fail(const std::string& why) const;

  unsigned long min = 0;
  unsigned long max = 0;
  bool is_number = false;
  bool is_boolean = false;
};

class Settings {
 public:
  // A setting of `cmd`. Its type is taken from the default when none is declared: a
  // default made of digits makes it a whole number, "true"/"false" a boolean.
  Setting& add(CLI::App* cmd, const std::string& flag, const std::string& key,
               const std::string& env, std::string default_value, const std::string& help);

  // Applies the precedence to the settings of the commands that were parsed, then runs
  // every check. The config file is refused when a key is unknown to every command,
  // when it is writable by group or others, when it belongs to someone other than this
  // user or root, or when it holds a secret and is readable by group or others.
  void resolve(const std::string& config_file);

  // `gatehouse config check`: resolves the settings of `cmd` as running it would
  // (environment, then `config_file`, then defaults; no flags) and runs every check,
  // returning every problem found (each names its setting or the file) rather than
  // stopping at the first. Empty: the settings are fine.
  [[nodiscard]] std::vector<std::string> check(const std::string& config_file, const CLI::App* cmd);
  // The settings of `cmd`, in the order they were added.
  [[nodiscard]] std::vector<const Setting*> of(const CLI::App* cmd) const;

  // The setting `key` of `cmd`, or nullptr.
  [[nodiscard]] Setting* find(const CLI::App* cmd, std::string_view key) const;

 private:
  // resolve() (`only` null: the parsed commands; the first problem throws) and check().
  void resolve_into(const std::string& config_file, const CLI::App* only,
                    std::vector<std::string>* problems);
  // The config file's keys and values; refusals go to `report` (which may throw).
  std::map<std::string, std::string> read_config(
      const std::string& config_file, const std::function<void(const std::string&)>& report) const;

  std::vector<std::unique_ptr<Setting>> settings_;
  std::vector<std::unique_ptr<std::string>> cli_values_;
};

// Reads a setting as a whole number up to `max` (compatible with checks declared with
// Setting::number; the tighter bound wins).
unsigned long parse_number(const Setting& s, unsigned long max);
bool parse_bool(const Setting& s);

// Checks on paths and addresses, for Setting::check.
void require_ip_address(const Setting& s);  // an IPv4 or IPv6 literal (what serve binds)
void require_directory(const Setting& s);   // empty (unset), or an existing directory
void require_not_empty(const Setting& s);

// Reads a secret from a file that must be a regular file of this user's, closed to group
// and others (as libpq demands of ~/.pgpass); the first line, without its line end.
// Throws ExitError(kExitUsage) naming the setting otherwise.
std::string read_secret_file(const Setting& s);

}  // namespace gatehouse::cli
