// `gatehouse key ...`: rotating, listing and retiring signing keys (store_commands.hpp).
#include <boost/json.hpp>

#include <iostream>

#include "cli_values.hpp"
#include "gatehouse/jwt.hpp"
#include "gatehouse/keys.hpp"
#include "store_commands.hpp"

namespace gatehouse::cli {

KeyCommands::KeyCommands(CLI::App& cli, CommandContext ctx) : ctx_(std::move(ctx)) {
  auto* key = cli.add_subcommand("key", "Manage the RS256/ES256/EdDSA signing keys in the store");
  key->require_subcommand(1);

  auto* rotate = key->add_subcommand(
      "rotate",
      "Make a new signing key; it signs at once, the old one verifies until its tokens expire");
  auto [rot_dir, rot_db] = ctx_.store_options(rotate);
  auto* rot_alg =
      &ctx_.settings.add(rotate, "--signing-alg", "signing-alg", "GATEHOUSE_SIGNING_ALG", "HS256",
                         "RS256, ES256 or EdDSA (as serve's)");
  rot_alg->check([](const Setting& s) { (void)parse_alg(s); });
  rotate->callback([=, this] {
    ctx_.settings.resolve(ctx_.config_file);
    const auto alg = parse_alg(*rot_alg);
    if (alg == gatehouse::Alg::HS256) {
      throw ExitError(kExitUsage,
                      "rotation is for RS256, ES256 and EdDSA keys: set --signing-alg (HS256 "
                      "signs with SECRET_KEY)");
    }
    auto store = ctx_.open_store(*rot_dir, *rot_db);
    auto made = gatehouse::rotate_key(*store, alg, gatehouse::jwt::now_seconds());
    std::cout << "new signing key " << made->kid() << " (" << gatehouse::to_string(alg)
              << "); the previous key verifies until its tokens expire\n";
  });

  auto* klist = key->add_subcommand("list", "List the signing keys (never their private parts)");
  auto [kl_dir, kl_db] = ctx_.store_options(klist);
  klist->add_flag("--json", keys_json_, "One JSON object per line");
  klist->callback([=, this] {
    ctx_.settings.resolve(ctx_.config_file);
    for (const auto& k : ctx_.open_store(*kl_dir, *kl_db)->signing_keys()) {
      const char* status = k.retired_at ? "retired" : k.superseded_at ? "superseded" : "current";
      if (keys_json_) {
        boost::json::object o{
            {"kid", k.kid}, {"alg", k.alg}, {"status", status}, {"created_at", k.created_at}};
        o["superseded_at"] = k.superseded_at ? boost::json::value(*k.superseded_at) : nullptr;
        o["retired_at"] = k.retired_at ? boost::json::value(*k.retired_at) : nullptr;
        std::cout << boost::json::serialize(o) << "\n";
      } else {
        std::cout << k.kid << "\t" << k.alg << "\t" << status << "\t" << utc_time(k.created_at);
        if (k.retired_at) {
          std::cout << "\tretired " << utc_time(*k.retired_at);
        } else if (k.superseded_at) {
          std::cout << "\tsuperseded " << utc_time(*k.superseded_at);
        }
        std::cout << "\n";
      }
    }
  });

  auto* retire = key->add_subcommand(
      "retire", "Retire a superseded key: tokens it signed are refused from now on");
  auto [ret_dir, ret_db] = ctx_.store_options(retire);
  retire->add_option("kid", kid_, "The key's kid (see key list)")->required();
  retire->callback([=, this] {
    ctx_.settings.resolve(ctx_.config_file);
    auto store = ctx_.open_store(*ret_dir, *ret_db);
    for (const auto& k : store->signing_keys()) {
      if (k.kid == kid_ && k.current()) {
        throw ExitError(kExitUsage, kid_ + " is the signing key: rotate first, then retire it");
      }
    }
    if (store->retire_signing_key(kid_, gatehouse::jwt::now_seconds()) !=
        gatehouse::StoreStatus::ok) {
      throw ExitError(kExitNoUser, "no such key (or retired already): " + kid_);
    }
    std::cout << "retired " << kid_ << "\n";
  });
}

}  // namespace gatehouse::cli
