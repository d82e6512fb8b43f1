// `gatehouse client ...`: registering, listing, showing and deleting OAuth2 clients
// (store_commands.hpp).
#include <boost/json.hpp>

#include <algorithm>
#include <iostream>

#include "cli_values.hpp"
#include "gatehouse/clients.hpp"
#include "gatehouse/jwt.hpp"
#include "gatehouse/security.hpp"
#include "store_commands.hpp"

namespace gatehouse::cli {

ClientCommands::ClientCommands(CLI::App& cli, CommandContext ctx) : ctx_(std::move(ctx)) {
  auto* client =
      cli.add_subcommand("client", "Manage registered OAuth2 clients (client_credentials)");
  client->require_subcommand(1);
  auto client_json = [](const gatehouse::Client& c) {
    boost::json::array grants;
    for (const auto& g : c.grants) grants.emplace_back(g);
    boost::json::array scopes;
    for (const auto& sc : c.scopes) scopes.emplace_back(sc);
    boost::json::array permissions;
    for (const auto& p : c.permissions) permissions.emplace_back(p);
    return boost::json::object{{"client_id", c.id},
                               {"grants", std::move(grants)},
                               {"scopes", std::move(scopes)},
                               {"permissions", std::move(permissions)},
                               {"created_at", c.created_at}};
  };

  auto* cadd = client->add_subcommand(
      "add", "Register a client; its secret is generated and printed once (never stored)");
  auto [cadd_dir, cadd_db] = ctx_.store_options(cadd);
  cadd->add_option("client_id", client_id_, "Client id (letters, digits, . _ ~ -)")->required();
  cadd->add_option("--grant", grants_,
                   "A grant this client may use (repeat; default: client_credentials)")
      ->check(CLI::IsMember({"client_credentials"}));
  cadd->add_option("--scope", scopes_, "A scope its tokens may carry (repeat)");
  cadd->add_option("--permission", permissions_,
                   "What else it may do (repeat): introspect (call POST /introspect); default: "
                   "nothing")
      ->check(CLI::IsMember({std::string(gatehouse::kIntrospectPermission)}));
  cadd->add_option("--secret", chosen_secret_,
                   "Refused: client secrets are always generated (256 random bits)");
  cadd->callback([=, this] {
    ctx_.settings.resolve(ctx_.config_file);
    if (!chosen_secret_.empty()) {
      throw ExitError(kExitUsage,
                      "a chosen client secret is refused: gatehouse generates each secret (256 "
                      "random bits) so that a fast hash is safe to store it; omit --secret");
    }
    if (!gatehouse::valid_client_id(client_id_)) {
      throw ExitError(kExitUsage, "a client id is 1 to 128 letters, digits, '.', '_', '~' or '-'");
    }
    auto store = ctx_.open_store(*cadd_dir, *cadd_db);
    gatehouse::Client c;
    c.id = client_id_;
    c.grants = grants_.empty() ? std::vector<std::string>{"client_credentials"} : grants_;
    for (const auto& sc : scopes_) {
      for (auto& part : gatehouse::split_scopes(sc)) {
        if (std::find(c.scopes.begin(), c.scopes.end(), part) == c.scopes.end())
          c.scopes.push_back(std::move(part));
      }
    }
    for (const auto& p : permissions_) {
      if (std::find(c.permissions.begin(), c.permissions.end(), p) == c.permissions.end())
        c.permissions.push_back(p);
    }
    c.created_at = gatehouse::jwt::now_seconds();
    const std::string secret = gatehouse::generate_client_secret();
    c.secret_hash = gatehouse::hash_client_secret(gatehouse::client_secret_key(*store), secret);
    // Compare-and-set: a client added or deleted meanwhile by another process is kept.
    gatehouse::modify_clients(*store, [&](std::vector<gatehouse::Client>& all) {
      for (const auto& other : all) {
        if (other.id == client_id_)
          throw ExitError(kExitExists, "client already exists: " + client_id_);
      }
      all.push_back(c);
    });
    std::cout << "added client " << client_id_ << "\n"
              << "client_secret: " << secret << "\n"
              << "(shown once: gatehouse keeps only a keyed hash of it)\n";
  });

  auto* clist = client->add_subcommand("list", "List the registered clients (never their secrets)");
  auto [clist_dir, clist_db] = ctx_.store_options(clist);
  clist->add_flag("--json", clients_json_, "One JSON object per line");
  clist->callback([=, this] {
    ctx_.settings.resolve(ctx_.config_file);
    for (const auto& c : gatehouse::load_clients(*ctx_.open_store(*clist_dir, *clist_db))) {
      if (clients_json_) {
        std::cout << boost::json::serialize(client_json(c)) << "\n";
      } else {
        std::string scopes_text;
        for (const auto& sc : c.scopes) scopes_text += (scopes_text.empty() ? "" : " ") + sc;
        std::string permissions_text;
        for (const auto& p : c.permissions)
          permissions_text += (permissions_text.empty() ? "" : " ") + p;
        std::cout << c.id << "\t" << (scopes_text.empty() ? "-" : scopes_text) << "\t"
                  << utc_time(c.created_at) << "\t"
                  << (permissions_text.empty() ? "-" : permissions_text) << "\n";
      }
    }
  });

  auto* cshow = client->add_subcommand("show", "Show one client as JSON (never its secret)");
  auto [cshow_dir, cshow_db] = ctx_.store_options(cshow);
  cshow->add_option("client_id", client_id_, "Client id")->required();
  cshow->callback([=, this] {
    ctx_.settings.resolve(ctx_.config_file);
    for (const auto& c : gatehouse::load_clients(*ctx_.open_store(*cshow_dir, *cshow_db))) {
      if (c.id == client_id_) {
        std::cout << boost::json::serialize(client_json(c)) << "\n";
        return;
      }
    }
    throw ExitError(kExitNoUser, "no such client: " + client_id_);
  });

  auto* cdel = client->add_subcommand(
      "delete", "Delete a client (running servers refuse it within a second)");
  auto [cdel_dir, cdel_db] = ctx_.store_options(cdel);
  cdel->add_option("client_id", client_id_, "Client id")->required();
  cdel->callback([=, this] {
    ctx_.settings.resolve(ctx_.config_file);
    auto store = ctx_.open_store(*cdel_dir, *cdel_db);
    gatehouse::modify_clients(*store, [&](std::vector<gatehouse::Client>& all) {
      if (std::erase_if(all, [&](const gatehouse::Client& c) { return c.id == client_id_; }) == 0)
        throw ExitError(kExitNoUser, "no such client: " + client_id_);
    });
    std::cout << "deleted client " << client_id_ << "\n";
  });
}

}  // namespace gatehouse::cli
