// The command's subcommands that manage what the store holds besides users, each group
// in its own unit: `key` (signing keys) and `client` (registered OAuth2 clients). main.cpp
// builds a CommandContext and keeps the groups alive while the command line is parsed
// and the chosen subcommand runs.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gatehouse/store.hpp"
#include "settings.hpp"

namespace gatehouse::cli {

// What the subcommands share with main.cpp.
struct CommandContext {
  Settings& settings;
  const std::string& config_file;  // --config / GATEHOUSE_CONFIG
  // Adds the store's settings (--data-dir, --database...) to a command; returns its
  // data-dir and database settings.
  std::function<std::pair<Setting*, Setting*>(CLI::App*)> store_options;
  // Opens the store those two settings name.
  std::function<std::shared_ptr<gatehouse::UserStore>(const Setting&, const Setting&)> open_store;
};

// `gatehouse key rotate|list|retire`.
class KeyCommands {
 public:
  KeyCommands(CLI::App& cli, CommandContext ctx);

 private:
  CommandContext ctx_;
  std::string kid_;
  bool keys_json_ = false;
};

// `gatehouse client add|list|show|delete`.
class ClientCommands {
 public:
  ClientCommands(CLI::App& cli, CommandContext ctx);

 private:
  CommandContext ctx_;
  std::string client_id_;
  std::vector<std::string> grants_;
  std::vector<std::string> scopes_;
  std::vector<std::string> permissions_;
  std::string chosen_secret_;
  bool clients_json_ = false;
};

}  // namespace gatehouse::cli
