// FastAPI's OAuth2 security tutorial as a program of its own: the tutorial app
// (tutorial.hpp / tutorial.cpp in the gatehouse sources, written only against the
// public headers) on a SQLite store holding the demo users, with SECRET_KEY as the
// HS256 key, as FastAPI's app.py has it.
//
//   SECRET_KEY=... ./tutorial_example 8000 /tmp/tutorial-data &
//   curl -d 'username=johndoe&password=secret&scope=me' localhost:8000/token
#include <gatehouse/gatehouse.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "tutorial.hpp"

int main(int argc, char** argv) {
  const char* secret = std::getenv("SECRET_KEY");
  if (secret == nullptr || argc < 3) {
    std::cerr << "usage: SECRET_KEY=... tutorial_example PORT DATA_DIR\n";
    return 2;
  }
  const std::filesystem::path data = argv[2];
  std::filesystem::create_directories(data);
  std::filesystem::permissions(data, std::filesystem::perms::owner_all);
  std::shared_ptr<gatehouse::UserStore> users = gatehouse::open_sqlite_store(data / "tutorial.db");
  if (users->created()) {
    for (const auto& user : gatehouse::demo_users()) users->add(user);
  }

  gatehouse::App app;
  tutorial::install(app, {.users = users,
                          .passwords = std::make_shared<gatehouse::PasswordHasher>(),
                          .secret_key = std::make_shared<const gatehouse::jwt::Hs256Key>(secret)});

  gatehouse::ServerOptions options;
  options.port = static_cast<std::uint16_t>(std::stoi(argv[1]));
  gatehouse::serve(app, options);
}
