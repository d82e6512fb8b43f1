// The gatehouse command: flags, environment, then library calls.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

#include "gatehouse/gatehouse.hpp"
#include "gatehouse/keys.hpp"
#include "tutorial.hpp"

namespace {

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

struct Common {
  std::string data_dir = env_or("GATEHOUSE_DATA_DIR", "gatehouse-data");
};

std::shared_ptr<gatehouse::UserStore> open_store(const Common& common) {
  gatehouse::ensure_private_dir(common.data_dir);
  return gatehouse::open_sqlite_store(std::filesystem::path(common.data_dir) / "gatehouse.db");
}

int parse_minutes(const std::string& text) {
  try {
    std::size_t used = 0;
    int v = std::stoi(text, &used);
    if (used != text.size() || v <= 0) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    throw std::runtime_error("ACCESS_TOKEN_EXPIRE_MINUTES must be a positive whole number, got '" +
                             text + "'");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"gatehouse: an OAuth2 password-flow token server with FastAPI's behaviour"};
  cli.require_subcommand(1);
  Common common;

  // ---- serve ----
  auto* serve = cli.add_subcommand("serve", "Serve the tutorial API: /token, /users/me/, /docs, ...");
  gatehouse::ServerOptions options;
  options.host = env_or("GATEHOUSE_HOST", "127.0.0.1");
  options.port = static_cast<std::uint16_t>(std::stoi(env_or("GATEHOUSE_PORT", "8000")));
  bool no_demo_users = false;
  bool no_access_log = false;
  std::string web_dir;
  serve->add_option("--host", options.host, "Address to listen on")->capture_default_str();
  serve->add_option("--port", options.port, "Port to listen on (0: any free port)")->capture_default_str();
  serve->add_option("--data-dir", common.data_dir,
                    "Directory for the database and key file (created 0700; env GATEHOUSE_DATA_DIR)")
      ->capture_default_str();
  serve->add_option("--io-threads", options.io_threads, "I/O threads (0: one per core)");
  serve->add_option("--workers", options.worker_threads, "Password-hashing threads (0: one per core)");
  serve->add_option("--worker-queue", options.worker_queue,
                    "Logins waiting for a hashing thread before 503")->capture_default_str();
  serve->add_flag("--no-demo-users", no_demo_users, "Do not seed johndoe and alice into a new store");
  serve->add_flag("--no-access-log", no_access_log, "Do not write one JSON line per request to stderr");
  serve->add_option("--web-dir", web_dir, "Directory with the Swagger UI and ReDoc files");
  serve->footer(
      "Environment: SECRET_KEY (HS256 key; without it a random key is kept in DATA_DIR/secret_key),\n"
      "ACCESS_TOKEN_EXPIRE_MINUTES (token lifetime, default 30).");
  serve->callback([&] {
    auto store = open_store(common);
    if (store->created() && !no_demo_users) {
      for (const auto& u : gatehouse::demo_users()) store->add(u);
      std::cerr << "gatehouse: new store seeded with the tutorial's demo users johndoe and alice "
                   "(well-known passwords; use --no-demo-users in production)\n";
    }
    std::string secret = env_or("SECRET_KEY", "");
    if (secret.empty()) secret = gatehouse::load_or_create_secret_key(common.data_dir);
    const int minutes = parse_minutes(env_or("ACCESS_TOKEN_EXPIRE_MINUTES", "30"));

    gatehouse::AppInfo info;
    info.web_dir = web_dir;
    gatehouse::App app(info);
    tutorial::install(app, {.users = std::move(store),
                            .secret_key = std::make_shared<gatehouse::jwt::Hs256Key>(secret),
                            .passwords = std::make_shared<gatehouse::PasswordHasher>(),
                            .access_token_expire_minutes = minutes});
    options.access_log = !no_access_log;
    const std::string host = options.host;
    options.on_listening = [host](std::uint16_t port) {
      std::string base = "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                         ":" + std::to_string(port);
      std::cerr << "gatehouse: listening on " << base << "  (docs: " << base << "/docs)" << std::endl;
    };
    gatehouse::serve(app, options);
    std::cerr << "gatehouse: stopped" << std::endl;
  });

  // ---- hash ----
  auto* hash = cli.add_subcommand("hash", "Print a password hash read from standard input");
  std::string algorithm = "argon2id";
  int cost = 12;
  hash->add_option("--algorithm", algorithm, "argon2id or bcrypt")
      ->check(CLI::IsMember({"argon2id", "bcrypt"}))
      ->capture_default_str();
  hash->add_option("--cost", cost, "bcrypt cost")->check(CLI::Range(4, 31))->capture_default_str();
  hash->callback([&] {
    std::string password;
    std::getline(std::cin, password);
    if (password.empty()) throw std::runtime_error("no password on standard input");
    if (algorithm == "bcrypt") {
      std::cout << gatehouse::PasswordHasher::hash_bcrypt(password, cost) << "\n";
    } else {
      std::cout << gatehouse::PasswordHasher().hash(password) << "\n";
    }
  });

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "gatehouse: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
