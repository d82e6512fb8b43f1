// The gatehouse command: settings from flags, environment and a config file (in that
// order of precedence, checked at start-up: tools/settings.cpp), then library calls.
// Exit codes a script can rely on: 0 success · 1 runtime error · 2 usage error (a bad
// argument or setting, or an unsafe file) · 3 no such user (or key) · 4 user exists
#include <fcntl.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <openssl/crypto.h>
#include <sqlite3.h>
#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>
#include <boost/version.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "build_info.hpp"
#include "cli_values.hpp"
#include "config_check.hpp"
#include "gatehouse/gatehouse.hpp"
#include "gatehouse/keys.hpp"
#include "importer.hpp"
#include "password_prompt.hpp"
#include "settings.hpp"
#include "store_commands.hpp"
#include "tutorial.hpp"
#include "user_output.hpp"

namespace {

using namespace gatehouse::cli;

// The login throttle: its counters live in the store (shared by every process on it),
// or, for a store that keeps none, in this process.
std::shared_ptr<gatehouse::LoginThrottle> make_throttle(
    const gatehouse::ThrottleOptions& limits, const std::shared_ptr<gatehouse::UserStore>& store) {
  std::shared_ptr<gatehouse::ThrottleCounters> counters =
      std::dynamic_pointer_cast<gatehouse::ThrottleCounters>(store);
  // PostgreSQL with its watcher: in memory, shared by a ThrottleRelay (set up in `serve`)
  // instead of one round trip per login.
  if (auto* feed = dynamic_cast<gatehouse::ChangeFeed*>(store.get()); feed && feed->available()) {
    counters = nullptr;
  }
  if (!counters) counters = gatehouse::memory_throttle_counters();
  return std::make_shared<gatehouse::LoginThrottle>(limits, std::move(counters));
}

// `gatehouse --version`: the version first (help2man reads that line), then the build.
std::string version_text() {
  std::string boost = std::to_string(BOOST_VERSION / 100000) + "." +
                      std::to_string(BOOST_VERSION / 100 % 1000) + "." +
                      std::to_string(BOOST_VERSION % 100);
  return std::string("gatehouse ") + gatehouse_build::kVersion + "\nrevision " +
         gatehouse_build::kRevision + ", " + gatehouse_build::kBuildType + " build, compiler " +
         gatehouse_build::kCompiler + "\nlibraries: Boost " + boost + ", " +
         OpenSSL_version(OPENSSL_VERSION) + ", SQLite " + sqlite3_libversion() + ", CLI11 " +
         CLI11_VERSION + ", libpq (libpq.so.5) loaded when a PostgreSQL store is opened";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{
      "gatehouse: an OAuth2 password-flow token server that answers like FastAPI's tutorial",
      "gatehouse"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", version_text(), "Print the version and build, then exit");
  cli.footer(
      "Settings come from flags, then the environment, then the config file (--config or "
      "GATEHOUSE_CONFIG, TOML/INI `key = value`; refused if others may write it, or read it "
      "while it holds a secret).\nExit codes: 0 ok, 1 error, 2 usage (a bad argument or "
      "setting, or an unsafe file), 3 no such user or key, 4 user exists.");
  Settings settings;
  std::string config_file;
  cli.add_option("--config", config_file, "Config file (TOML or INI: key = value)")
      ->envname("GATEHOUSE_CONFIG");

  // Options every command that touches the store takes.
  auto store_options = [&](CLI::App* cmd) {
    auto& dir = settings.add(cmd, "--data-dir", "data-dir", "GATEHOUSE_DATA_DIR", "gatehouse-data",
                             "Directory for the SQLite database and key file (created 0700)");
    dir.check(require_not_empty);
    auto& db = settings.add(
        cmd, "--database", "database", "GATEHOUSE_DATABASE", "",
        "postgresql://... URL (better without its password: see --database-password-file), "
        "or a SQLite file (default: DATA_DIR/gatehouse.db)");
    db.secret_when(
        [](const std::string& v) {
          return is_postgres_url(v) && gatehouse::redact_postgres_url(v) != v;
        },
        [](const std::string& v) { return gatehouse::redact_postgres_url(v); });
    db.check([](const Setting& s) {
      if (!is_postgres_url(s.value)) return;
      if (auto problem = gatehouse::postgres_url_problem(s.value); !problem.empty())
        s.fail(problem);
    });
    auto& password_file = settings.add(
        cmd, "--database-password-file", "database-password-file",
        "GATEHOUSE_DATABASE_PASSWORD_FILE", "",
        "File holding the PostgreSQL password (first line; mode 0600, yours). libpq's own "
        "PGPASSFILE (~/.pgpass) and PGPASSWORD work too");
    password_file.check([&db](const Setting& s) {
      if (s.value.empty()) return;
      if (!is_postgres_url(db.value)) s.fail("only a postgresql:// database has a password");
      (void)read_secret_file(s);
    });
    auto& timeout = settings.add(
        cmd, "--database-timeout", "database-timeout", "GATEHOUSE_DATABASE_TIMEOUT", "5",
        "PostgreSQL: seconds to wait for the database (to connect, per statement, for a free "
        "connection) before answering 503");
    timeout.number(1, 3600);
    return std::pair<Setting*, Setting*>{&dir, &db};
  };
  auto open_store =
      [&](const Setting& data_dir, const Setting& database,
          const gatehouse::SqliteOptions& sqlite = {},
          gatehouse::PostgresOptions postgres = {}) -> std::shared_ptr<gatehouse::UserStore> {
    if (is_postgres_url(database.value)) {
      const Setting* pw = settings.find(database.command, "database-password-file");
      if (const Setting* t = settings.find(database.command, "database-timeout"); t != nullptr) {
        postgres.timeout = std::chrono::seconds(static_cast<long>(t->as_number()));
      }
      return gatehouse::open_postgres_store(
          database.value, pw != nullptr && !pw->value.empty() ? read_secret_file(*pw) : "",
          postgres);
    }
    gatehouse::ensure_private_dir(data_dir.value);
    auto file = database.value.empty() ? std::filesystem::path(data_dir.value) / "gatehouse.db"
                                       : std::filesystem::path(database.value);
    return gatehouse::open_sqlite_store(file, sqlite);
  };

  // The argon2id parameters for new hashes (OWASP's by default). A login whose hash
  // was made with others is rehashed with these.
  struct Argon2Settings {
    Setting* memory = nullptr;
    Setting* iterations = nullptr;
    Setting* parallelism = nullptr;
    [[nodiscard]] gatehouse::Argon2Params params() const {
      return {static_cast<std::uint32_t>(memory->as_number()),
              static_cast<std::uint32_t>(iterations->as_number()),
              static_cast<std::uint32_t>(parallelism->as_number())};
    }
  };
  auto argon2_options = [&](CLI::App* cmd) {
    const gatehouse::Argon2Params d;
    Argon2Settings a{&settings.add(cmd, "--argon2-memory-kib", "argon2-memory-kib",
                                   "GATEHOUSE_ARGON2_MEMORY_KIB", std::to_string(d.memory_kib),
                                   "argon2id memory for new hashes, KiB (8 per lane to 4194304)"),
                     &settings.add(cmd, "--argon2-iterations", "argon2-iterations",
                                   "GATEHOUSE_ARGON2_ITERATIONS", std::to_string(d.iterations),
                                   "argon2id passes for new hashes (1 to 1000)"),
                     &settings.add(cmd, "--argon2-parallelism", "argon2-parallelism",
                                   "GATEHOUSE_ARGON2_PARALLELISM", std::to_string(d.parallelism),
                                   "argon2id lanes for new hashes (1 to 255)")};
    // libargon2's own limits: at least one pass and one lane, 8 KiB of memory per lane.
    a.memory->number(8, 4u << 20);
    a.iterations->number(1, 1000);
    a.parallelism->number(1, 255);
    a.memory->check([p = a.parallelism](const Setting& s) {
      if (s.as_number() < 8 * p->as_number()) {
        s.fail("argon2id needs at least 8 KiB per lane (argon2-parallelism is " + p->value + ")");
      }
    });
    return a;
  };

  // ---- serve ----
  auto* serve =
      cli.add_subcommand("serve", "Serve /token, /users/me/, /docs ... (FastAPI's tutorial API)");
  auto [serve_dir, serve_db] = store_options(serve);
  const auto serve_argon2 = argon2_options(serve);
  auto& host =
      settings.add(serve, "--host", "host", "GATEHOUSE_HOST", "127.0.0.1", "Address to listen on");
  host.check(require_ip_address);
  auto& port =
      settings.add(serve, "--port", "port", "GATEHOUSE_PORT", "8000", "Port (0: any free port)");
  port.number(0, 65535);
  auto& minutes =
      settings.add(serve, "--access-token-expire-minutes", "access-token-expire-minutes",
                   "ACCESS_TOKEN_EXPIRE_MINUTES", "30", "Access token lifetime (1 to 525600)");
  minutes.number(1, 525600);
  auto& io_threads = settings.add(serve, "--io-threads", "io-threads", "GATEHOUSE_IO_THREADS", "0",
                                  "I/O threads, 0: one per core (up to 256)");
  io_threads.number(0, 256);
  auto& workers = settings.add(serve, "--workers", "workers", "GATEHOUSE_WORKERS", "0",
                               "Password-hashing threads, 0: one per core (up to 256)");
  workers.number(0, 256);
  auto& queue =
      settings.add(serve, "--worker-queue", "worker-queue", "GATEHOUSE_WORKER_QUEUE", "256",
                   "Logins waiting for a hashing thread before 503 (1 to 1000000)");
  queue.number(1, 1000000);
  auto& hash_priority = settings.add(
      serve, "--hash-priority", "hash-priority", "GATEHOUSE_HASH_PRIORITY", "adaptive",
      "CPU priority of the hashing threads: adaptive (idle, and a login hashing for over a "
      "second is raised step by step, nice 19, 15, then 10: token checks keep their cores, "
      "no login waits without bound), low (nice 10), normal, or idle (only CPU that everything "
      "else in the "
      "server's cgroup leaves idle: logins wait while anything else there is busy)");
  hash_priority.check([](const Setting& s) {
    if (s.value != "adaptive" && s.value != "idle" && s.value != "low" && s.value != "normal") {
      s.fail("must be adaptive, idle, low or normal");
    }
  });
  auto& per_client = settings.add(
      serve, "--max-connections-per-client", "max-connections-per-client",
      "GATEHOUSE_MAX_CONNECTIONS_PER_CLIENT", "256",
      "Connections one client address (IPv6: its /64) may hold; more get 503. 0: no cap. "
      "The trusted proxy 127.0.0.1 is not capped (up to 1000000)");
  per_client.number(0, 1000000);
  // uvicorn's --forwarded-allow-ips: the proxies whose X-Forwarded-For and
  // X-Forwarded-Proto are believed; anyone else's are ignored.
  auto& forwarded = settings.add(
      serve, "--forwarded-allow-ips", "forwarded-allow-ips", "GATEHOUSE_FORWARDED_ALLOW_IPS",
      "127.0.0.1",
      "Comma-separated addresses of the proxies whose X-Forwarded-For/-Proto are believed "
      "(\"*\": any; empty: none); they are not capped per client either");
  auto forwarded_list = [](const Setting& s) {
    std::vector<std::string> out;
    std::string_view rest = s.value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string item(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      if (item.empty()) continue;
      if (item != "*") {
        boost::system::error_code ec;
        const auto address = boost::asio::ip::make_address(item, ec);
        if (ec) s.fail("'" + item + "' is not an IPv4 or IPv6 address (nor *)");
        item = address.to_string();
      }
      out.push_back(std::move(item));
    }
    return out;
  };
  forwarded.check([&forwarded_list](const Setting& s) { (void)forwarded_list(s); });
  auto& web_dir = settings.add(serve, "--web-dir", "web-dir", "GATEHOUSE_WEB_DIR", "",
                               "Directory with the Swagger UI and ReDoc files");
  web_dir.check(require_directory);
  auto& user_cache =
      settings.add(serve, "--user-cache-kib", "user-cache-kib", "GATEHOUSE_USER_CACHE_KIB", "256",
                   "Bytes of users cached, KiB: per thread on SQLite, per process on PostgreSQL "
                   "(0: none; up to 1048576)");
  user_cache.number(0, 1u << 20);
  // Brute-force throttling (see docs/SECURITY.md): per username and per client address,
  // a score that leaks FAILURES per WINDOW; at FAILURES, blocks that double from
  // base-delay up to max-delay.
  auto& throttle = settings.add(serve, "", "throttle", "GATEHOUSE_THROTTLE", "true", "");
  auto& throttle_user_failures =
      settings.add(serve, "--throttle-user-failures", "throttle-user-failures",
                   "GATEHOUSE_THROTTLE_USER_FAILURES", "10",
                   "Failed logins of one username before it is throttled (0: no limit)");
  auto& throttle_user_window = settings.add(
      serve, "--throttle-user-window", "throttle-user-window", "GATEHOUSE_THROTTLE_USER_WINDOW",
      "3600", "Seconds in which a username's failure count drains completely");
  auto& throttle_client_failures =
      settings.add(serve, "--throttle-client-failures", "throttle-client-failures",
                   "GATEHOUSE_THROTTLE_CLIENT_FAILURES", "100",
                   "Failed logins from one client address before it is throttled (0: no limit)");
  auto& throttle_client_window =
      settings.add(serve, "--throttle-client-window", "throttle-client-window",
                   "GATEHOUSE_THROTTLE_CLIENT_WINDOW", "600",
                   "Seconds in which a client address's failure count drains completely");
  auto& throttle_base = settings.add(serve, "--throttle-base-delay", "throttle-base-delay",
                                     "GATEHOUSE_THROTTLE_BASE_DELAY", "1",
                                     "First block, seconds; doubles per failure");
  auto& throttle_max =
      settings.add(serve, "--throttle-max-delay", "throttle-max-delay",
                   "GATEHOUSE_THROTTLE_MAX_DELAY", "900", "Longest block, seconds");
  throttle_user_failures.number(0, 1000000);
  throttle_client_failures.number(0, 1000000);
  throttle_user_window.number(1, 31536000);
  throttle_client_window.number(1, 31536000);
  throttle_base.number(1, 86400);
  throttle_max.number(1, 86400);
  throttle_max.check([&throttle_base](const Setting& s) {
    if (s.as_number() < throttle_base.as_number()) {
      s.fail("must be at least throttle-base-delay (" + throttle_base.value + ")");
    }
  });
  bool throttle_flag = false;
  bool no_throttle = false;
  serve->add_flag("--throttle", throttle_flag,
                  "Throttle repeated failed logins (default) [env GATEHOUSE_THROTTLE=true/false]");
  serve->add_flag("--no-throttle", no_throttle, "Never throttle logins")->excludes("--throttle");
  auto& signing_alg =
      settings.add(serve, "--signing-alg", "signing-alg", "GATEHOUSE_SIGNING_ALG", "HS256",
                   "HS256 (SECRET_KEY, FastAPI's), or RS256, ES256, EdDSA (keys kept in the "
                   "store, published at /.well-known/jwks.json)");
  auto& issuer = settings.add(serve, "--issuer", "issuer", "GATEHOUSE_ISSUER", "",
                              "Issuer URL: RFC 9068 tokens (iss checked) and RFC 8414 metadata");
  auto& audience = settings.add(serve, "--audience", "audience", "GATEHOUSE_AUDIENCE", "",
                                "Audience: RFC 9068 tokens carry it, verification requires it");
  signing_alg.check([](const Setting& s) { (void)parse_alg(s); });
  issuer.check([](const Setting& s) { (void)parse_issuer(s); });
  auto& access_log = settings.add(serve, "", "access-log", "GATEHOUSE_ACCESS_LOG", "true", "");
  auto& metrics_setting = settings.add(serve, "", "metrics", "GATEHOUSE_METRICS", "true", "");
  auto& ops_in_openapi = settings.add(serve, "", "operations-in-openapi",
                                      "GATEHOUSE_OPERATIONS_IN_OPENAPI", "false", "");
  auto& send_request_id =
      settings.add(serve, "", "send-request-id", "GATEHOUSE_SEND_REQUEST_ID", "false", "");
  auto& log_level = settings.add(serve, "--log-level", "log-level", "GATEHOUSE_LOG_LEVEL", "info",
                                 "debug, info, warning or error; SIGHUP re-reads it");
  log_level.check([](const Setting& s) {
    if (!gatehouse::parse_log_level(s.value)) s.fail("must be debug, info, warning or error");
  });
  auto& demo = settings.add(serve, "", "demo-users", "GATEHOUSE_DEMO_USERS", "false", "");
  const std::string secret_key_help =
      "The HS256 key comes from SECRET_KEY, else from DATA_DIR/secret_key (made once, mode "
      "0600; refused unless it is yours and closed to group and others).";
  bool demo_users_flag = false;
  bool no_demo_users = false;
  bool access_log_flag = false;
  bool no_access_log = false;
  serve->add_flag("--demo-users", demo_users_flag,
                  "Seed the tutorial's demo users johndoe/secret and alice/secret2 (public "
                  "passwords) into a new store; never in production "
                  "[env GATEHOUSE_DEMO_USERS=true/false] (default: false)");
  serve
      ->add_flag("--no-demo-users", no_demo_users,
                 "Do not seed the demo users, whatever the environment or config file say")
      ->excludes("--demo-users");
  serve->add_flag("--access-log", access_log_flag,
                  "One JSON line per request on stderr, never a token or password (default) "
                  "[env GATEHOUSE_ACCESS_LOG=true/false]");
  serve->add_flag("--no-access-log", no_access_log, "No access log")->excludes("--access-log");
  bool metrics_flag = false;
  bool no_metrics = false;
  serve->add_flag("--metrics", metrics_flag,
                  "Count requests, logins, store calls and serve them at GET /metrics (default) "
                  "[env GATEHOUSE_METRICS=true/false]");
  serve->add_flag("--no-metrics", no_metrics, "No /metrics and no per-request counting");
  bool ops_in_openapi_flag = false;
  serve->add_flag("--operations-in-openapi", ops_in_openapi_flag,
                  "List /metrics, /healthz and /readyz in /openapi.json (default: not, as "
                  "FastAPI's document has none) [env GATEHOUSE_OPERATIONS_IN_OPENAPI]");
  bool send_request_id_flag = false;
  serve->add_flag("--send-request-id", send_request_id_flag,
                  "Send X-Request-Id on every answer (default: only to clients that sent one) "
                  "[env GATEHOUSE_SEND_REQUEST_ID]");
  auto& refresh_setting =
      settings.add(serve, "", "refresh-tokens", "GATEHOUSE_REFRESH_TOKENS", "false", "");
  auto& revocation_setting =
      settings.add(serve, "", "revocation", "GATEHOUSE_REVOCATION", "false", "");
  bool refresh_flag = false;
  bool revocation_flag = false;
  auto& clients_setting = settings.add(serve, "", "clients", "GATEHOUSE_CLIENTS", "false", "");
  bool clients_flag = false;
  serve->add_flag("--clients", clients_flag,
                  "Registered clients (gatehouse client add): grant_type=client_credentials on "
                  "/token with RFC 6749 error bodies, and POST /introspect (RFC 7662); on by "
                  "itself when the store holds clients [env GATEHOUSE_CLIENTS=true/false] "
                  "(default: false)");
  serve->add_flag("--refresh-tokens", refresh_flag,
                  "/token also hands out rotating refresh tokens (grant_type=refresh_token), "
                  "with RFC 6749 error bodies; implies --revocation "
                  "[env GATEHOUSE_REFRESH_TOKENS=true/false] (default: false)");
  serve->add_flag(
      "--revocation", revocation_flag,
      "POST /revoke (RFC 7009, logout): revoked access tokens are refused on every "
      "instance within a second [env GATEHOUSE_REVOCATION=true/false] (default: false)");
  auto& strict_setting = settings.add(serve, "", "strict", "GATEHOUSE_STRICT", "false", "");
  bool strict_flag = false;
  serve->add_flag("--strict", strict_flag,
                  "Drop FastAPI's quirks: /token answers RFC 6749 errors and refuses unknown or "
                  "unheld scopes (invalid_scope); disabled users get no token and their tokens "
                  "are refused everywhere; tokens need exp, canonical base64url and no crit "
                  "[env GATEHOUSE_STRICT=true/false] (default: false)");
  auto& refresh_idle =
      settings.add(serve, "--refresh-token-idle-seconds", "refresh-token-idle-seconds",
                   "GATEHOUSE_REFRESH_TOKEN_IDLE_SECONDS", "1209600",
                   "A refresh token not used for this long expires (14 days)");
  auto& refresh_absolute = settings.add(
      serve, "--refresh-token-absolute-seconds", "refresh-token-absolute-seconds",
      "GATEHOUSE_REFRESH_TOKEN_ABSOLUTE_SECONDS", "7776000",
      "Refresh tokens expire this long after the password login, however used (90 days)");
  auto& refresh_grace = settings.add(
      serve, "--refresh-grace-seconds", "refresh-grace-seconds", "GATEHOUSE_REFRESH_GRACE_SECONDS",
      "5",
      "A refresh token presented again this soon after its rotation gets the same successor "
      "(two tabs); later, its whole login is revoked");
  refresh_idle.number(1, 10u * 365 * 86400);
  refresh_absolute.number(1, 10u * 365 * 86400);
  refresh_grace.number(0, 3600);
  serve->footer(secret_key_help);
  serve->callback([&] {
    settings.resolve(config_file);
    auto parse_level = [&] {
      auto level = gatehouse::parse_log_level(log_level.value);
      if (!level) {
        throw ExitError(kExitUsage, "log-level must be debug, info, warning or error, got '" +
                                        log_level.value + "'");
      }
      return *level;
    };
    // JSON lines on stderr, written by a background thread; SIGHUP re-reads the level.
    auto logger =
        std::make_shared<gatehouse::Logger>(std::make_shared<gatehouse::FdSink>(2), parse_level());
    gatehouse::set_default_logger(logger);  // the key ring's warnings too, at this level
    auto reload = std::make_shared<gatehouse::ReloadRegistry>();
    auto level_hook = reload->add("log-level", [&, logger] {
      const auto before = logger->level();
      settings.resolve(config_file);
      const auto after = parse_level();
      logger->set_level(after);
      return before == after ? "unchanged (" + std::string(gatehouse::to_string(after)) + ")"
                             : std::string(gatehouse::to_string(before)) + " -> " +
                                   std::string(gatehouse::to_string(after));
    });
    // Every setting is checked before anything is opened or served.
    gatehouse::SqliteOptions sqlite;
    sqlite.user_cache_bytes = parse_number(user_cache, 1u << 20) * 1024;
    // The throttling settings (read again by SIGHUP).
    auto throttle_limits = [&] {
      gatehouse::ThrottleOptions limits;
      limits.enabled = (parse_bool(throttle) || throttle_flag) && !no_throttle;
      limits.user.failures =
          static_cast<std::uint32_t>(parse_number(throttle_user_failures, 1000000));
      limits.user.window = std::chrono::seconds(parse_number(throttle_user_window, 31536000));
      limits.client.failures =
          static_cast<std::uint32_t>(parse_number(throttle_client_failures, 1000000));
      limits.client.window = std::chrono::seconds(parse_number(throttle_client_window, 31536000));
      limits.base_delay = std::chrono::seconds(parse_number(throttle_base, 86400));
      limits.max_delay = std::chrono::seconds(parse_number(throttle_max, 86400));
      return limits;
    };
    const gatehouse::ThrottleOptions limits = throttle_limits();
    // PostgreSQL: a watcher LISTENs for changes, so users are cached per process, and
    // notices when the database stops answering (calls then fail at once with 503).
    gatehouse::PostgresOptions postgres_options;
    postgres_options.watch = true;
    postgres_options.user_cache_bytes = sqlite.user_cache_bytes;
    std::shared_ptr<gatehouse::UserStore> store =
        open_store(*serve_dir, *serve_db, sqlite, postgres_options);
    const bool postgres = is_postgres_url(serve_db->value);
    bool seed = demo.as_bool();
    if (demo_users_flag) seed = true;
    if (no_demo_users) seed = false;
    if (store->created() && seed) {
      for (const auto& u : gatehouse::demo_users()) store->add(u);
      logger->event(
          gatehouse::LogLevel::warning, "demo_users",
          {{"message",
            "gatehouse: warning: new store seeded with the tutorial's demo users johndoe "
            "and alice, whose passwords are public; never use --demo-users in production"}});
    }
    if (!store->has_users()) {
      logger->event(gatehouse::LogLevel::warning, "no_users",
                    {{"message",
                      "gatehouse: the store has no users yet, so every login fails; add one with "
                      "`gatehouse user add NAME` (same --data-dir/--database), or start with "
                      "--demo-users to try the tutorial's johndoe/secret"}});
    }
    const auto lifetime = minutes.as_number();
    const auto alg = parse_alg(signing_alg);
    const auto iss = parse_issuer(issuer);
    const std::optional<std::string> aud =
        audience.value.empty() ? std::nullopt : std::optional<std::string>(audience.value);

    // The keys: SECRET_KEY (HS256, FastAPI's), or the store's key ring.
    std::shared_ptr<gatehouse::KeySource> keys;
    gatehouse::Registration keys_hook;  // SIGHUP re-reads the store's key ring
    if (alg == gatehouse::Alg::HS256) {
      std::string secret;
      if (const char* k = std::getenv("SECRET_KEY"); k != nullptr && *k != '\0') {
        secret = k;
        if (secret.size() < 32) {
          std::cerr << "gatehouse: warning: SECRET_KEY is shorter than 32 bytes; HS256 wants at "
                       "least 32 random bytes (openssl rand -hex 32)\n";
        }
      } else if (postgres) {
        // Instances sharing one database share the key through it.
        secret = store->setting_or_init("secret_key", gatehouse::generate_secret_key());
      } else {
        secret = gatehouse::load_or_create_secret_key(serve_dir->value);
      }
      keys = gatehouse::StaticKeys::hs256(std::move(secret));
    } else {
      auto ring = std::make_shared<gatehouse::StoreKeyRing>(
          store, gatehouse::StoreKeyRing::Options{.token_lifetime_seconds =
                                                      static_cast<std::int64_t>(lifetime) * 60});
      ring->ensure_signing_key(alg);
      keys = ring;
      keys_hook = reload->add("keys", [ring] {
        ring->reload();
        const auto set = ring->keys();
        const auto& signing = set->signing_key();
        return std::to_string(set->entries().size()) + " key(s), signing with kid " +
               (signing ? signing->kid() : std::string("(none)"));
      });
    }
    gatehouse::VerifierOptions verify_options;
    verify_options.algorithms = {alg};
    if (alg != gatehouse::Alg::HS256) {
      // Tokens signed before a change of --signing-alg verify until they expire.
      verify_options.algorithms = {gatehouse::Alg::RS256, gatehouse::Alg::ES256,
                                   gatehouse::Alg::EdDSA};
    }
    verify_options.issuer = iss;
    verify_options.audience = aud;
    verify_options.rfc9068 = iss || aud;
    // python-jose ignores crit, and so does the FastAPI default; beyond it, RFC 7515.
    verify_options.reject_crit = alg != gatehouse::Alg::HS256 || verify_options.rfc9068;
    // Strict mode: RFC 7515/7519 instead of python-jose's leniency.
    const bool strict = parse_bool(strict_setting) || strict_flag;
    if (strict) {
      verify_options.reject_crit = true;
      verify_options.canonical_base64 = true;
      verify_options.strict_claims = true;
    }

    gatehouse::ServerOptions options;
    options.host = host.value;
    options.port = static_cast<std::uint16_t>(port.as_number());
    options.io_threads = static_cast<unsigned>(io_threads.as_number());
    options.worker_threads = static_cast<unsigned>(workers.as_number());
    options.worker_queue = queue.as_number();
    options.worker_priority =
        hash_priority.value == "idle"     ? gatehouse::ServerOptions::WorkerPriority::idle
        : hash_priority.value == "normal" ? gatehouse::ServerOptions::WorkerPriority::normal
        : hash_priority.value == "low"    ? gatehouse::ServerOptions::WorkerPriority::low
                                          : gatehouse::ServerOptions::WorkerPriority::adaptive;
    options.max_connections_per_client = per_client.as_number();
    options.forwarded_allow_ips = forwarded_list(forwarded);
    options.access_log = (access_log.as_bool() || access_log_flag) && !no_access_log;
    options.metrics = (parse_bool(metrics_setting) || metrics_flag) && !no_metrics;
    options.always_send_request_id = parse_bool(send_request_id) || send_request_id_flag;
    options.logger = logger;
    options.reload = reload;

    const bool refresh_on = parse_bool(refresh_setting) || refresh_flag;
    const bool revocation_on = refresh_on || parse_bool(revocation_setting) || revocation_flag;
    std::shared_ptr<gatehouse::RefreshTokens> refresh;
    std::shared_ptr<gatehouse::DenyList> deny_list;
    if (revocation_on) {
      auto token_store = std::dynamic_pointer_cast<gatehouse::TokenStore>(store);
      if (!token_store) throw ExitError(kExitRuntime, "this store cannot keep revocations");
      deny_list = std::make_shared<gatehouse::DenyList>(token_store);
      // On PostgreSQL revocations arrive by LISTEN/NOTIFY (a full read after a reconnect,
      // a safety-net poll every 30 s); on SQLite each instance reads new ones 4 times a second.
      deny_list->start(std::chrono::milliseconds(250));
      // Every check of a bearer token consults it (in memory).
      verify_options.revocations = deny_list;
      if (refresh_on) {
        gatehouse::RefreshTokenOptions ro;
        ro.idle_seconds = static_cast<std::int64_t>(parse_number(refresh_idle, 10u * 365 * 86400));
        ro.absolute_seconds =
            static_cast<std::int64_t>(parse_number(refresh_absolute, 10u * 365 * 86400));
        ro.grace_seconds = static_cast<std::int64_t>(parse_number(refresh_grace, 3600));
        if (ro.idle_seconds == 0 || ro.absolute_seconds == 0) {
          throw ExitError(kExitUsage, "refresh token lifetimes must be at least 1 second");
        }
        // The successor-derivation key, shared through the store by every instance.
        refresh = std::make_shared<gatehouse::RefreshTokens>(
            token_store,
            store->setting_or_init("refresh_token_key", gatehouse::generate_refresh_key()), ro);
      }
    }

    std::shared_ptr<gatehouse::ClientRegistry> clients;
    if (parse_bool(clients_setting) || clients_flag || !gatehouse::load_clients(*store).empty()) {
      clients = std::make_shared<gatehouse::ClientRegistry>(store);
      // Each instance re-reads the clients 4 times a second (a deleted one is refused).
      clients->start(std::chrono::milliseconds(250));
    }

    gatehouse::AppInfo info;
    info.web_dir = web_dir.value;
    gatehouse::App app(info);
    app.set_logger(logger);
    // User lookups are timed into /metrics. The throttle counters and token store are
    // found on the store itself (dynamic casts), so they get the unwrapped one.
    const std::shared_ptr<gatehouse::UserStore> raw_store = store;
    if (options.metrics) store = gatehouse::instrument_store(store, app.metrics());
    // The throttle exists even when it is off, so that SIGHUP can turn it on; off, it
    // answers at once and touches no counter.
    auto login_throttle = make_throttle(limits, raw_store);
    // Shared with the other instances through LISTEN/NOTIFY: failures and successes are
    // published in batches off the request path, keyed by an HMAC whose key lives in
    // the database; the check before each login stays in memory.
    std::shared_ptr<gatehouse::ThrottleRelay> throttle_relay;
    std::shared_ptr<void> throttle_subscription;  // unsubscribes when it goes (first)
    if (auto* feed = dynamic_cast<gatehouse::ChangeFeed*>(raw_store.get());
        feed != nullptr && feed->available()) {
      throttle_relay = std::make_shared<gatehouse::ThrottleRelay>(
          login_throttle,
          raw_store->setting_or_init("throttle_key", gatehouse::generate_refresh_key()),
          [feed](const std::string& payload) {
            feed->publish(gatehouse::ChangeFeed::kThrottle, payload);
          });
      const auto id = feed->subscribe(
          gatehouse::ChangeFeed::kThrottle,
          [relay = throttle_relay](std::string_view payload) { relay->receive(payload); }, {});
      throttle_subscription =
          std::shared_ptr<void>(nullptr, [feed, id](void*) { feed->unsubscribe(id); });
    }
    auto throttle_hook = reload->add("throttle", [&, login_throttle] {
      const auto before = login_throttle->options();
      settings.resolve(config_file);
      const auto after = throttle_limits();
      login_throttle->set_options(after);
      const auto text = describe_throttle(before);
      return text == describe_throttle(after) ? "unchanged (" + text + ")"
                                              : text + " -> " + describe_throttle(after);
    });
    gatehouse::install_operations(
        app, {.metrics = options.metrics,
              .include_in_schema = parse_bool(ops_in_openapi) || ops_in_openapi_flag});
    // /readyz: the store answers a query, the signing key is loaded.
    auto store_ready = app.readiness().add("store", [store] {
      // PostgreSQL: what the watcher knows (no round trip on the I/O thread).
      if (auto health = store->health()) return gatehouse::CheckResult{health->ok, health->detail};
      (void)store->setting("readyz-probe");
      return gatehouse::CheckResult{true, "reachable"};
    });
    options.store_queue_timeout = std::chrono::seconds(
        static_cast<long>(settings.find(serve_db->command, "database-timeout")->as_number()));
    auto key_ready = app.readiness().add("keys", [keys] {
      const auto set = keys->keys();
      const bool loaded = set && set->signing_key();
      return gatehouse::CheckResult{loaded, loaded ? "signing key loaded" : "no signing key"};
    });
    tutorial::install(
        app, {.users = store,
              .passwords = std::make_shared<gatehouse::PasswordHasher>(serve_argon2.params()),
              .verifier = std::make_shared<const gatehouse::Verifier>(verify_options, keys),
              .tokens = std::make_shared<const gatehouse::TokenIssuer>(
                  gatehouse::TokenIssuerOptions{
                      .lifetime_seconds = static_cast<std::int64_t>(lifetime) * 60,
                      .issuer = iss,
                      .audience = aud},
                  keys),
              .refresh = refresh,
              .deny_list = deny_list,
              .clients = clients,
              .strict = strict,
              .throttle = login_throttle});
    // Discovery documents, only when what they describe is on (the default
    // /openapi.json stays the FastAPI tutorial's).
    if (alg != gatehouse::Alg::HS256) gatehouse::install_jwks(app, keys);
    if (iss) {
      gatehouse::AuthorizationServerMetadata metadata;
      metadata.issuer = *iss;
      std::string base = *iss;
      while (!base.empty() && base.back() == '/') base.pop_back();
      metadata.token_endpoint = base + "/token";
      if (alg != gatehouse::Alg::HS256) metadata.jwks_uri = base + "/.well-known/jwks.json";
      for (const auto& scope : tutorial::scopes()) metadata.scopes_supported.push_back(scope.first);
      metadata.grant_types_supported = {"password"};
      if (refresh) metadata.grant_types_supported.emplace_back("refresh_token");
      if (clients) {
        metadata.grant_types_supported.emplace_back("client_credentials");
        metadata.extra["introspection_endpoint"] = base + "/introspect";
        metadata.extra["introspection_endpoint_auth_methods_supported"] =
            boost::json::array{"client_secret_basic", "client_secret_post"};
      }
      if (deny_list) {
        metadata.extra["revocation_endpoint"] = base + "/revoke";
        // Public clients revoke their own logins without credentials; registered
        // clients authenticate (RFC 7009 §2.1).
        boost::json::array methods{"none"};
        if (clients) {
          methods.emplace_back("client_secret_basic");
          methods.emplace_back("client_secret_post");
        }
        metadata.extra["revocation_endpoint_auth_methods_supported"] = std::move(methods);
      }
      // /token takes client_id but checks no client credentials: public clients.
      metadata.token_endpoint_auth_methods_supported = {"none"};
      if (clients) {
        // client_credentials: the client authenticates with its generated secret.
        metadata.token_endpoint_auth_methods_supported.emplace_back("client_secret_basic");
        metadata.token_endpoint_auth_methods_supported.emplace_back("client_secret_post");
      }
      metadata.access_token_signing_alg_values_supported = {std::string(gatehouse::to_string(alg))};
      gatehouse::install_metadata(app, std::move(metadata));
    }
    const std::string shown =
        host.value.find(':') != std::string::npos ? "[" + host.value + "]" : host.value;
    options.on_listening = [shown, logger](std::uint16_t p) {
      std::string base = "http://" + shown + ":" + std::to_string(p);
      logger->event(gatehouse::LogLevel::info, "listening",
                    {{"message", "gatehouse: listening on " + base + "  (docs: " + base + "/docs)"},
                     {"url", base}});
      logger->flush();  // whoever waits for this line sees it now
    };
    gatehouse::serve(app, options);
    logger->event(gatehouse::LogLevel::info, "stopped", {{"message", "gatehouse: stopped"}});
    logger->flush();
  });

  // ---- config check ----
  auto* config_cmd = cli.add_subcommand("config", "Check a config file");
  config_cmd->require_subcommand(1);
  auto* config_check = config_cmd->add_subcommand(
      "check",
      "Check FILE as `gatehouse --config FILE serve` reads it (with this environment): print "
      "every problem with its setting and exit 2, or print the effective settings (secrets "
      "masked) and exit 0. Run it as the server's user: file ownership is checked");
  std::string check_file;
  bool check_quiet = false;
  config_check->add_option("file", check_file, "The config file")->required();
  config_check->add_flag("--quiet", check_quiet, "Print problems only, not the settings");
  config_check->callback([&] {
    auto problems = settings.check(check_file, serve);
    check_data_files(*serve_dir, *serve_db, signing_alg, problems);
    if (!problems.empty()) {
      for (const auto& p : problems) std::cerr << "gatehouse: " << p << "\n";
      throw ExitError(kExitUsage, check_file + ": " + std::to_string(problems.size()) +
                                      (problems.size() == 1 ? " problem" : " problems"));
    }
    if (check_quiet) return;
    std::cout << "# " << check_file << " is valid; the settings `gatehouse serve` would use:\n";
    for (const Setting* s : settings.of(serve)) {
      const bool bare = (s->is_number || s->is_boolean) && !s->is_secret();
      std::cout << s->key << " = " << (bare ? s->value : s->shown()) << "  # "
                << (s->is_secret() ? "secret masked, " : "") << "from " << s->origin << "\n";
    }
  });

  // ---- migrate ----
  auto* migrate = cli.add_subcommand("migrate", "Create or upgrade the store's schema, then exit");
  auto [mig_dir, mig_db] = store_options(migrate);
  migrate->callback([&] {
    settings.resolve(config_file);
    open_store(*mig_dir, *mig_db);  // opening applies pending migrations
    std::cout << "schema is up to date\n";
  });

  // ---- user ... ----
  auto* user = cli.add_subcommand("user", "Manage users");
  user->require_subcommand(1);
  std::string username;
  bool password_stdin = false;

  auto* add =
      user->add_subcommand("add", "Add a user (password from a prompt, or --password-stdin)");
  auto [add_dir, add_db] = store_options(add);
  const auto add_argon2 = argon2_options(add);
  std::string email;
  std::string full_name;
  bool disabled = false;
  add->add_option("username", username, "User name")->required();
  add->add_option("--email", email, "E-mail address");
  add->add_option("--full-name", full_name, "Full name");
  add->add_flag("--disabled", disabled, "Create the user disabled");
  std::vector<std::string> allowed_scopes;
  add->add_option("--scope", allowed_scopes,
                  "A scope this user's tokens may carry (repeat; none: any requested scope)");
  add->add_flag("--password-stdin", password_stdin, "Read the password from standard input");
  add->callback([&] {
    settings.resolve(config_file);
    auto store = open_store(*add_dir, *add_db);
    if (store->find(username)) throw ExitError(kExitExists, "user already exists: " + username);
    gatehouse::User u;
    u.username = username;
    if (!email.empty()) u.email = email;
    if (!full_name.empty()) u.full_name = full_name;
    u.disabled = disabled;
    for (const auto& sc : allowed_scopes) {
      for (auto& part : gatehouse::split_scopes(sc)) u.scopes.push_back(std::move(part));
    }
    u.hashed_password =
        gatehouse::PasswordHasher(add_argon2.params()).hash(read_password(password_stdin, true));
    check_status(store->add(u), username);
    std::cout << "added " << username << "\n";
  });

  auto* list = user->add_subcommand("list", "List users");
  auto [list_dir, list_db] = store_options(list);
  bool as_json = false;
  list->add_flag("--json", as_json, "One JSON object per line");
  list->callback([&] {
    settings.resolve(config_file);
    auto users = open_store(*list_dir, *list_db)->list();
    for (const auto& u : users) {
      if (as_json) {
        std::cout << boost::json::serialize(user_json(u)) << "\n";
      } else {
        std::cout << u.username << "\t" << u.email.value_or("-") << "\t"
                  << u.full_name.value_or("-") << "\t" << (u.disabled ? "disabled" : "active")
                  << "\n";
      }
    }
  });

  auto* show = user->add_subcommand("show", "Show one user as JSON (never the hash)");
  auto [show_dir, show_db] = store_options(show);
  show->add_option("username", username, "User name")->required();
  show->callback([&] {
    settings.resolve(config_file);
    auto u = open_store(*show_dir, *show_db)->find(username);
    if (!u) throw ExitError(kExitNoUser, "no such user: " + username);
    std::cout << boost::json::serialize(user_json(*u)) << "\n";
  });

  auto simple = [&](const char* name, const char* help, auto action) {
    auto* cmd = user->add_subcommand(name, help);
    auto [dir, db] = store_options(cmd);
    cmd->add_option("username", username, "User name")->required();
    cmd->callback([&, dir = dir, db = db, action, name] {
      settings.resolve(config_file);
      auto store = open_store(*dir, *db);
      check_status(action(*store), username);
      std::cout << name << (std::string(name).back() == 'e' ? "d " : "ed ") << username << "\n";
    });
    return cmd;
  };
  simple("disable",
         "Disable a user: their logins still get tokens and /status/ still accepts their "
         "tokens, as in FastAPI's tutorial; /users/me/ and /users/me/items/ answer 400 "
         "Inactive user on the server's next request",
         [&](gatehouse::UserStore& s) { return s.set_disabled(username, true); });
  simple("enable", "Enable a user",
         [&](gatehouse::UserStore& s) { return s.set_disabled(username, false); });
  simple("delete", "Delete a user", [&](gatehouse::UserStore& s) { return s.remove(username); });
  Argon2Settings passwd_argon2;
  auto* passwd = simple("passwd", "Set a user's password (argon2id)", [&](gatehouse::UserStore& s) {
    if (!s.find(username)) return gatehouse::StoreStatus::not_found;
    return s.set_password_hash(username, gatehouse::PasswordHasher(passwd_argon2.params())
                                             .hash(read_password(password_stdin, true)));
  });
  passwd->add_flag("--password-stdin", password_stdin, "Read the password from standard input");
  passwd_argon2 = argon2_options(passwd);

  auto* import = user->add_subcommand("import", "Import users with their hashes from JSON or CSV");
  auto [imp_dir, imp_db] = store_options(import);
  std::string import_file;
  import->add_option("file", import_file, "JSON (list, or {name: user}) or CSV with a header line")
      ->required();
  import->callback([&] {
    settings.resolve(config_file);
  std::vector<gatehouse::User> users;
  try {
    users = gatehouse::tools::read_import_file(import_file);
  } catch (const gatehouse::tools::ImportError& e) {
    throw ExitError(kExitUsage, e.what());
  }
  auto store = open_store(*imp_dir, *imp_db);
  std::size_t added = 0;
  std::size_t skipped = 0;
  for (const auto& u : users) {
    if (store->add(u) == gatehouse::StoreStatus::ok) {
      ++added;
    } else {
      ++skipped;
      std::cerr << "gatehouse: skipped " << u.username << ": already exists\n";
    }
  }
  std::cout << "imported " << added << " users, skipped " << skipped << "\n";
});

// ---- key ..., client ... (key_commands.cpp, client_commands.cpp) ----
const CommandContext commands{
    settings, config_file, store_options,
    [&](const Setting& dir, const Setting& db) { return open_store(dir, db); }};
const KeyCommands key_commands(cli, commands);
const ClientCommands client_commands(cli, commands);

// ---- hash ----
auto* hash =
    cli.add_subcommand("hash", "Print a password hash (password on standard input, or a prompt)");
const auto hash_argon2 = argon2_options(hash);
std::string algorithm = "argon2id";
int cost = 12;
hash->add_option("--algorithm", algorithm, "argon2id or bcrypt")
    ->check(CLI::IsMember({"argon2id", "bcrypt"}))
    ->capture_default_str();
hash->add_option("--cost", cost, "bcrypt cost")->check(CLI::Range(4, 31))->capture_default_str();
hash->callback([&] {
  settings.resolve(config_file);
  std::string password = read_password(!isatty(STDIN_FILENO), false);
  if (algorithm == "bcrypt") {
    std::cout << gatehouse::PasswordHasher::hash_bcrypt(password, cost) << "\n";
  } else {
    std::cout << gatehouse::PasswordHasher(hash_argon2.params()).hash(password) << "\n";
  }
});

try {
  cli.parse(argc, argv);
} catch (const CLI::ParseError& e) {
  int code = cli.exit(e);
  return code == 0 ? 0 : kExitUsage;
} catch (const ExitError& e) {
  std::cerr << "gatehouse: " << e.what() << "\n";
  return e.code;
} catch (const gatehouse::UnsafeFileError& e) {
  std::cerr << "gatehouse: " << e.what() << "\n";
  return kExitUsage;
} catch (const std::exception& e) {
  std::cerr << "gatehouse: error: " << e.what() << "\n";
  return kExitRuntime;
}
return 0;
}
