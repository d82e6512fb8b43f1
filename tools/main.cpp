// The gatehouse command: settings from flags, environment and a config file (in that
// order of precedence, checked at start-up: tools/settings.cpp), then library calls.
// Exit codes a script can rely on: 0 success · 1 runtime error · 2 usage error (a bad
// argument or setting, or an unsafe file) · 3 no such user · 4 user exists
#include <termios.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <openssl/crypto.h>
#include <sqlite3.h>
#include <boost/json.hpp>
#include <boost/version.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "build_info.hpp"
#include "gatehouse/gatehouse.hpp"
#include "gatehouse/keys.hpp"
#include "importer.hpp"
#include "settings.hpp"
#include "tutorial.hpp"

namespace {

using namespace gatehouse::cli;

bool is_postgres_url(const std::string& db) {
  return db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0;
}

// Reads a password: from standard input (one line) or from the terminal without echo.
std::string read_password(bool from_stdin, bool confirm) {
  std::string password;
  if (from_stdin) {
    if (!std::getline(std::cin, password))
      throw ExitError(kExitUsage, "no password on standard input");
    if (!password.empty() && password.back() == '\r') password.pop_back();
  } else {
    if (!isatty(STDIN_FILENO)) {
      throw ExitError(kExitUsage, "no terminal to ask for a password; use --password-stdin");
    }
    auto ask = [](const char* prompt) {
      std::cerr << prompt << std::flush;
      termios old{};
      tcgetattr(STDIN_FILENO, &old);
      termios quiet = old;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
      std::string line;
      std::getline(std::cin, line);
      tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
      std::cerr << "\n";
      return line;
    };
    password = ask("Password: ");
    if (confirm && ask("Repeat password: ") != password) {
      throw ExitError(kExitUsage, "the passwords do not match");
    }
  }
  if (password.empty()) throw ExitError(kExitUsage, "the password is empty");
  if (password.size() > gatehouse::PasswordHasher::kMaxPasswordBytes ||
      password.find('\0') != std::string::npos) {
    throw ExitError(kExitUsage, "the password is longer than 4096 bytes or contains a NUL byte");
  }
  return password;
}

void check_status(gatehouse::StoreStatus status, const std::string& username) {
  if (status == gatehouse::StoreStatus::not_found)
    throw ExitError(kExitNoUser, "no such user: " + username);
  if (status == gatehouse::StoreStatus::exists)
    throw ExitError(kExitExists, "user already exists: " + username);
}

boost::json::object user_json(const gatehouse::User& u) {
  boost::json::object o;
  o["username"] = u.username;
  o["email"] = u.email ? boost::json::value(*u.email) : nullptr;
  o["full_name"] = u.full_name ? boost::json::value(*u.full_name) : nullptr;
  o["disabled"] = u.disabled;
  std::string scheme = u.hashed_password.substr(0, u.hashed_password.find('$', 1) + 1);
  o["hash_scheme"] = scheme;
  boost::json::array scopes;
  for (const auto& sc : u.scopes) scopes.emplace_back(sc);
  o["scopes"] = std::move(scopes);
  return o;
}

// The users of an import file (gatehouse::tools::parse_import), or a usage error.
std::vector<gatehouse::User> read_import_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ExitError(kExitUsage, "cannot read " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    return gatehouse::tools::parse_import(buf.str(), path);
  } catch (const gatehouse::tools::ImportError& e) {
    throw ExitError(kExitUsage, e.what());
  }
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
      "setting, or an unsafe file), 3 no such user, 4 user exists.");
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
    return std::pair<Setting*, Setting*>{&dir, &db};
  };
  auto open_store = [&](const Setting& data_dir,
                        const Setting& database) -> std::shared_ptr<gatehouse::UserStore> {
    if (is_postgres_url(database.value)) {
      const Setting* pw = settings.find(database.command, "database-password-file");
      return gatehouse::open_postgres_store(
          database.value, pw != nullptr && !pw->value.empty() ? read_secret_file(*pw) : "");
    }
    gatehouse::ensure_private_dir(data_dir.value);
    auto file = database.value.empty() ? std::filesystem::path(data_dir.value) / "gatehouse.db"
                                       : std::filesystem::path(database.value);
    return gatehouse::open_sqlite_store(file);
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
  auto& per_client = settings.add(
      serve, "--max-connections-per-client", "max-connections-per-client",
      "GATEHOUSE_MAX_CONNECTIONS_PER_CLIENT", "256",
      "Connections one client address (IPv6: its /64) may hold; more get 503. 0: no cap. "
      "The trusted proxy 127.0.0.1 is not capped (up to 1000000)");
  per_client.number(0, 1000000);
  auto& web_dir = settings.add(serve, "--web-dir", "web-dir", "GATEHOUSE_WEB_DIR", "",
                               "Directory with the Swagger UI and ReDoc files");
  web_dir.check(require_directory);
  auto& access_log = settings.add(serve, "", "access-log", "GATEHOUSE_ACCESS_LOG", "true", "");
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
  serve->footer(secret_key_help);
  serve->callback([&] {
    settings.resolve(config_file);
    auto store = open_store(*serve_dir, *serve_db);
    const bool postgres = is_postgres_url(serve_db->value);
    bool seed = demo.as_bool();
    if (demo_users_flag) seed = true;
    if (no_demo_users) seed = false;
    if (store->created() && seed) {
      for (const auto& u : gatehouse::demo_users()) store->add(u);
      std::cerr
          << "gatehouse: warning: new store seeded with the tutorial's demo users johndoe and "
             "alice, whose passwords are public; never use --demo-users in production\n";
    }
    if (!store->has_users()) {
      std::cerr << "gatehouse: the store has no users yet, so every login fails; add one with "
                   "`gatehouse user add NAME` (same --data-dir/--database), or start with "
                   "--demo-users to try the tutorial's johndoe/secret\n";
    }
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
    const auto lifetime = minutes.as_number();

    gatehouse::ServerOptions options;
    options.host = host.value;
    options.port = static_cast<std::uint16_t>(port.as_number());
    options.io_threads = static_cast<unsigned>(io_threads.as_number());
    options.worker_threads = static_cast<unsigned>(workers.as_number());
    options.worker_queue = queue.as_number();
    options.max_connections_per_client = per_client.as_number();
    options.access_log = (access_log.as_bool() || access_log_flag) && !no_access_log;

    gatehouse::AppInfo info;
    info.web_dir = web_dir.value;
    gatehouse::App app(info);
    tutorial::install(
        app, {.users = store,
              .secret_key = std::make_shared<gatehouse::jwt::Hs256Key>(secret),
              .passwords = std::make_shared<gatehouse::PasswordHasher>(serve_argon2.params()),
              .access_token_expire_minutes = static_cast<int>(lifetime)});
    const std::string shown =
        host.value.find(':') != std::string::npos ? "[" + host.value + "]" : host.value;
    options.on_listening = [shown](std::uint16_t p) {
      std::string base = "http://" + shown + ":" + std::to_string(p);
      std::cerr << "gatehouse: listening on " << base << "  (docs: " << base << "/docs)"
                << std::endl;
    };
    gatehouse::serve(app, options);
    std::cerr << "gatehouse: stopped" << std::endl;
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
  auto users = read_import_file(import_file);
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
