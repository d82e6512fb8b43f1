// Helpers shared by the unit tests: an in-memory UserStore, and requests built for
// App::handle without a network.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gatehouse/app.hpp"
#include "gatehouse/http.hpp"
#include "gatehouse/store.hpp"

namespace testing_support {

// A UserStore in memory, which also records password-hash updates.
class FakeUserStore final : public gatehouse::UserStore {
 public:
  FakeUserStore() = default;
  explicit FakeUserStore(const std::vector<gatehouse::User>& users) {
    for (const auto& u : users) users_[u.username] = u;
  }

  gatehouse::UserPtr find(std::string_view username) override {
    std::lock_guard lock(mutex_);
    auto it = users_.find(std::string(username));
    if (it == users_.end()) return nullptr;
    return std::make_shared<const gatehouse::User>(it->second);
  }
  gatehouse::StoreStatus add(const gatehouse::User& user) override {
    std::lock_guard lock(mutex_);
    return users_.emplace(user.username, user).second ? gatehouse::StoreStatus::ok
                                                      : gatehouse::StoreStatus::exists;
  }
  gatehouse::StoreStatus set_disabled(std::string_view username, bool disabled) override {
    std::lock_guard lock(mutex_);
    auto it = users_.find(std::string(username));
    if (it == users_.end()) return gatehouse::StoreStatus::not_found;
    it->second.disabled = disabled;
    return gatehouse::StoreStatus::ok;
  }
  gatehouse::StoreStatus set_password_hash(std::string_view username,
                                           std::string_view hash) override {
    std::lock_guard lock(mutex_);
    auto it = users_.find(std::string(username));
    if (it == users_.end()) return gatehouse::StoreStatus::not_found;
    it->second.hashed_password = std::string(hash);
    ++hash_updates;
    return gatehouse::StoreStatus::ok;
  }
  gatehouse::StoreStatus remove(std::string_view username) override {
    std::lock_guard lock(mutex_);
    return users_.erase(std::string(username)) == 1 ? gatehouse::StoreStatus::ok
                                                    : gatehouse::StoreStatus::not_found;
  }
  std::vector<gatehouse::User> list() override {
    std::lock_guard lock(mutex_);
    std::vector<gatehouse::User> out;
    for (const auto& [name, u] : users_) out.push_back(u);
    return out;
  }
  gatehouse::StoreStatus replace_password_hash(std::string_view username, std::string_view old_hash,
                                               std::string_view new_hash) override {
    std::lock_guard lock(mutex_);
    auto it = users_.find(std::string(username));
    if (it == users_.end() || it->second.hashed_password != old_hash) {
      return gatehouse::StoreStatus::not_found;
    }
    it->second.hashed_password = std::string(new_hash);
    ++hash_updates;
    return gatehouse::StoreStatus::ok;
  }
  std::string setting_or_init(std::string_view name, std::string_view value) override {
    std::lock_guard lock(mutex_);
    return settings_.try_emplace(std::string(name), std::string(value)).first->second;
  }
  bool replace_setting(std::string_view name, std::optional<std::string_view> expected,
                       std::string_view value) override {
    std::lock_guard lock(mutex_);
    auto it = settings_.find(std::string(name));
    if (!expected) {
      if (it != settings_.end()) return false;
      settings_.emplace(std::string(name), std::string(value));
      return true;
    }
    if (it == settings_.end() || it->second != *expected) return false;
    it->second = std::string(value);
    return true;
  }
  std::optional<std::string> setting(std::string_view name) override {
    std::lock_guard lock(mutex_);
    auto it = settings_.find(std::string(name));
    if (it == settings_.end()) return std::nullopt;
    return it->second;
  }
  void set_setting(std::string_view name, std::string_view value) override {
    std::lock_guard lock(mutex_);
    settings_[std::string(name)] = std::string(value);
  }
  std::vector<gatehouse::StoredKey> signing_keys() override {
    std::lock_guard lock(mutex_);
    ++key_reads;
    return keys_;
  }
  bool rotate_signing_key(const gatehouse::StoredKey& key,
                          std::optional<std::string_view> expected_current) override {
    std::lock_guard lock(mutex_);
    std::string current;
    for (const auto& k : keys_) {
      if (k.current()) current = k.kid;
    }
    if (expected_current && *expected_current != current) return false;
    for (auto& k : keys_) {
      if (k.current()) k.superseded_at = key.created_at;
    }
    auto stored = key;
    stored.superseded_at.reset();
    stored.retired_at.reset();
    keys_.push_back(std::move(stored));
    ++changes_;
    return true;
  }
  gatehouse::StoreStatus retire_signing_key(std::string_view kid, std::int64_t at) override {
    std::lock_guard lock(mutex_);
    for (auto& k : keys_) {
      if (k.kid == kid && !k.retired_at) {
        k.retired_at = at;
        if (!k.superseded_at) k.superseded_at = at;
        ++changes_;
        return gatehouse::StoreStatus::ok;
      }
    }
    return gatehouse::StoreStatus::not_found;
  }
  std::optional<std::uint64_t> change_marker() override {
    std::lock_guard lock(mutex_);
    if (!detect_changes) return std::nullopt;
    return changes_;
  }
  bool created() const override { return false; }

  int hash_updates = 0;
  int key_reads = 0;           // signing_keys() calls
  bool detect_changes = true;  // whether change_marker() tells (SQLite) or not (PostgreSQL)

 private:
  std::mutex mutex_;
  std::map<std::string, gatehouse::User> users_;
  std::map<std::string, std::string> settings_;
  std::vector<gatehouse::StoredKey> keys_;
  std::uint64_t changes_ = 0;
};

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

// Request::HeaderLookup over a gatehouse::Headers vector: the first match, any case.
inline std::optional<std::string_view> lookup_header(const void* fields, std::string_view name) {
  const auto* headers = static_cast<const gatehouse::Headers*>(fields);
  for (const auto& [k, v] : *headers) {
    if (iequals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

struct Call {
  std::string method = "GET";
  std::string target = "/";
  gatehouse::Headers headers;
  std::string body;
  std::string scheme = "http";
};

// Runs `call` through app.handle() as the server would: path = target before '?'.
inline gatehouse::Response handle(const gatehouse::App& app, const Call& call) {
  const auto q = call.target.find('?');
  gatehouse::Request request(call.method, call.target, call.target.substr(0, q), call.body,
                             &call.headers, &lookup_header);
  request.set_scheme(call.scheme);
  return app.handle(request);
}

// The value of response header `name` (exact case), or nullopt.
inline std::optional<std::string> header_of(const gatehouse::Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

}  // namespace testing_support
