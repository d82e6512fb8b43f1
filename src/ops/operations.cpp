// Readiness and reload registries, the operations routes, the timed store wrapper.
#include "gatehouse/operations.hpp"

#include <boost/json/serialize.hpp>

#include <chrono>

namespace gatehouse {

// ---------------------------------------------------------------- Readiness

Registration Readiness::add(std::string name, std::function<CheckResult()> check) {
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_++;
  checks_.emplace_back(id, std::make_pair(std::move(name), std::move(check)));
  return Registration([this, id] {
    std::lock_guard l(mutex_);
    std::erase_if(checks_, [id](const auto& c) { return c.first == id; });
  });
}

std::vector<std::pair<std::string, CheckResult>> Readiness::run() const {
  std::vector<std::pair<std::string, std::function<CheckResult()>>> checks;
  {
    std::lock_guard lock(mutex_);
    for (const auto& c : checks_) checks.push_back(c.second);
  }
  std::vector<std::pair<std::string, CheckResult>> out;
  for (const auto& [name, check] : checks) {
    try {
      out.emplace_back(name, check());
    } catch (const std::exception& e) {
      out.emplace_back(name, CheckResult{false, e.what()});
    }
  }
  return out;
}

// ---------------------------------------------------------------- ReloadRegistry

Registration ReloadRegistry::add(std::string name, std::function<std::string()> hook) {
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_++;
  hooks_.emplace_back(id, std::make_pair(std::move(name), std::move(hook)));
  return Registration([this, id] {
    std::lock_guard l(mutex_);
    std::erase_if(hooks_, [id](const auto& h) { return h.first == id; });
  });
}

std::vector<ReloadRegistry::Outcome> ReloadRegistry::reload() {
  std::lock_guard run_lock(run_mutex_);
  std::vector<std::pair<std::string, std::function<std::string()>>> hooks;
  {
    std::lock_guard lock(mutex_);
    for (const auto& h : hooks_) hooks.push_back(h.second);
  }
  std::vector<Outcome> out;
  for (const auto& [name, hook] : hooks) {
    try {
      out.push_back({name, true, hook()});
    } catch (const std::exception& e) {
      out.push_back({name, false, e.what()});
    }
  }
  return out;
}

// ---------------------------------------------------------------- routes

void install_operations(App& app, const OperationsOptions& options) {
  if (options.metrics) {
    app.get(options.metrics_path,
            {.name = "metrics", .include_in_schema = options.include_in_schema},
            [metrics = app.metrics()]() {
              Response r;
              r.body = metrics->render();
              r.content_type = std::string(kPrometheusContentType);
              return r;
            });
  }
  if (options.health) {
    app.get(options.healthz_path,
            {.name = "healthz", .include_in_schema = options.include_in_schema}, []() {
              return boost::json::value{{"status", "ok"}};
            });
    app.get(options.readyz_path, {.name = "readyz", .include_in_schema = options.include_in_schema},
            [&readiness = app.readiness()]() {
              bool ready = true;
              boost::json::object checks;
              for (auto& [name, result] : readiness.run()) {
                ready = ready && result.ok;
                checks[name] = boost::json::object{{"ok", result.ok}, {"detail", result.detail}};
              }
              return Response::json(ready ? 200 : 503,
                                    boost::json::object{{"status", ready ? "ready" : "not ready"},
                                                        {"checks", std::move(checks)}});
            });
  }
}

// ---------------------------------------------------------------- timed store

namespace {

class InstrumentedStore final : public UserStore {
 public:
  InstrumentedStore(std::shared_ptr<UserStore> inner, std::shared_ptr<Metrics> metrics)
      : inner_(std::move(inner)), metrics_(std::move(metrics)) {}

  UserPtr find(std::string_view username) override {
    return timed(StoreOp::find, [&] { return inner_->find(username); });
  }
  StoreStatus add(const User& user) override {
    return timed(StoreOp::add, [&] { return inner_->add(user); });
  }
  StoreStatus set_disabled(std::string_view username, bool disabled) override {
    return timed(StoreOp::set_disabled, [&] { return inner_->set_disabled(username, disabled); });
  }
  StoreStatus set_password_hash(std::string_view username, std::string_view hash) override {
    return timed(StoreOp::set_password_hash,
                 [&] { return inner_->set_password_hash(username, hash); });
  }
  StoreStatus replace_password_hash(std::string_view username, std::string_view old_hash,
                                    std::string_view new_hash) override {
    return timed(StoreOp::replace_password_hash,
                 [&] { return inner_->replace_password_hash(username, old_hash, new_hash); });
  }
  StoreStatus remove(std::string_view username) override {
    return timed(StoreOp::remove, [&] { return inner_->remove(username); });
  }
  std::vector<User> list() override {
    return timed(StoreOp::list, [&] { return inner_->list(); });
  }
  std::optional<std::string> setting(std::string_view name) override {
    return timed(StoreOp::setting, [&] { return inner_->setting(name); });
  }
  void set_setting(std::string_view name, std::string_view value) override {
    timed(StoreOp::set_setting, [&] {
      inner_->set_setting(name, value);
      return 0;
    });
  }
  std::string setting_or_init(std::string_view name, std::string_view value) override {
    return timed(StoreOp::setting_or_init, [&] { return inner_->setting_or_init(name, value); });
  }
  bool replace_setting(std::string_view name, std::optional<std::string_view> expected,
                       std::string_view value) override {
    return timed(StoreOp::replace_setting,
                 [&] { return inner_->replace_setting(name, expected, value); });
  }
  std::vector<StoredKey> signing_keys() override {
    return timed(StoreOp::signing_keys, [&] { return inner_->signing_keys(); });
  }
  bool rotate_signing_key(const StoredKey& key,
                          std::optional<std::string_view> expected_current) override {
    return timed(StoreOp::rotate_signing_key,
                 [&] { return inner_->rotate_signing_key(key, expected_current); });
  }
  StoreStatus retire_signing_key(std::string_view kid, std::int64_t at) override {
    return timed(StoreOp::retire_signing_key, [&] { return inner_->retire_signing_key(kid, at); });
  }
  // Read on every request: forwarded untimed.
  std::optional<std::uint64_t> change_marker() override { return inner_->change_marker(); }
  bool created() const override { return inner_->created(); }
  bool has_users() override { return inner_->has_users(); }
  std::vector<User> list_page(std::string_view after, std::size_t limit) override {
    return timed(StoreOp::list, [&] { return inner_->list_page(after, limit); });
  }
  std::optional<StoreHealth> health() const override { return inner_->health(); }

 private:
  template <class F>
  auto timed(StoreOp op, F&& f) -> decltype(f()) {
    const auto start = std::chrono::steady_clock::now();
    try {
      auto result = f();
      metrics_->store_op(op, std::chrono::steady_clock::now() - start, false);
      return result;
    } catch (const StoreWouldBlock&) {
      throw;  // not a failure: the call is made again on a store thread
    } catch (...) {
      metrics_->store_op(op, std::chrono::steady_clock::now() - start, true);
      throw;
    }
  }

  std::shared_ptr<UserStore> inner_;
  std::shared_ptr<Metrics> metrics_;
};

}  // namespace

std::shared_ptr<UserStore> instrument_store(std::shared_ptr<UserStore> store,
                                            std::shared_ptr<Metrics> metrics) {
  if (!store || !metrics) return store;
  return std::make_shared<InstrumentedStore>(std::move(store), std::move(metrics));
}

}  // namespace gatehouse
