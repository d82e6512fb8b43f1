// Refresh tokens, the access-token deny-list and POST /revoke (see lifecycle.hpp).
#include "gatehouse/lifecycle.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <limits>
#include <stdexcept>

#include "gatehouse/clients.hpp"
#include "gatehouse/jwt.hpp"
#include "security/base64url.hpp"

namespace gatehouse {

namespace {

// SHA-256 with the implementation fetched once and a context per thread: EVP_Digest
// would look the algorithm up in the provider and allocate a context on every call,
// and this runs on every verification while the deny-list holds entries.
void sha256_into(std::string_view data, unsigned char out[32]) {
  static EVP_MD* const md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) throw std::runtime_error("OpenSSL has no SHA-256");
    return m;
  }();
  struct Ctx {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Ctx() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Ctx t;
  unsigned int len = 0;
  if (t.ctx == nullptr || EVP_DigestInit_ex2(t.ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(t.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(t.ctx, out, &len) != 1 || len != 32) {
    throw std::runtime_error("SHA-256 failed");
  }
}

std::string sha256_raw(std::string_view data) {
  std::array<unsigned char, 32> md{};
  sha256_into(data, md.data());
  return std::string(reinterpret_cast<const char*>(md.data()), md.size());
}

std::string hex(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string unhex(std::string_view text) {
  auto v = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  if (text.size() % 2 != 0) return out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = v(text[i]);
    const int lo = v(text[i + 1]);
    if (hi < 0 || lo < 0) return {};
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("the random number generator failed");
  }
  return out;
}

std::function<std::int64_t()> or_system_clock(std::function<std::int64_t()> clock) {
  return clock ? std::move(clock) : std::function<std::int64_t()>(jwt::now_seconds);
}

// Refresh tokens are 43 base64url characters; anything much longer is not one.
constexpr std::size_t kMaxTokenBytes = 4096;

}  // namespace

// ---- DenyList ------------------------------------------------------------------------

DenyList::DenyList(std::shared_ptr<TokenStore> store, std::function<std::int64_t()> clock)
    : store_(std::move(store)), clock_(or_system_clock(std::move(clock))) {
  if (!store_) throw std::invalid_argument("DenyList needs a token store");
}

DenyList::~DenyList() {
  if (feed_ != nullptr) feed_->unsubscribe(subscription_);
  poller_.stop();
}

std::string DenyList::key(const VerifiedToken& token) {
  return hex(sha256_raw(token.signing_input));
}

bool DenyList::denied(const VerifiedToken& token) const {
  if (empty_.load(std::memory_order_acquire)) return false;
  std::array<unsigned char, 32> k{};  // on the stack: no allocation per check
  sha256_into(token.signing_input, k.data());
  const std::string_view key(reinterpret_cast<const char*>(k.data()), k.size());
  std::shared_lock lock(mutex_);
  return denied_.find(key) != denied_.end();
}

void DenyList::apply(const std::string& raw_key, std::int64_t expires_at) {
  std::unique_lock lock(mutex_);
  denied_[raw_key] = expires_at;
  empty_.store(false, std::memory_order_release);
}

void DenyList::deny(const VerifiedToken& token) {
  std::int64_t exp = std::numeric_limits<std::int64_t>::max();
  if (auto it = token.claims.find("exp"); it != token.claims.end() && it->value().is_int64()) {
    exp = it->value().as_int64();
  } else if (it != token.claims.end() && it->value().is_uint64()) {
    exp = static_cast<std::int64_t>(
        std::min<std::uint64_t>(it->value().as_uint64(), std::numeric_limits<std::int64_t>::max()));
  }
  const std::string raw = sha256_raw(token.signing_input);
  store_->deny_access_token(hex(raw), exp);
  apply(raw, exp);
}

void DenyList::sync() {
  std::lock_guard guard(sync_mutex_);
  const std::int64_t now = clock_();
  last_sync_ = now;
  for (auto& d : store_->denied_since(seen_, now)) {
    const std::string raw = unhex(d.key);
    if (raw.size() == 32) apply(raw, d.expires_at);
    seen_ = std::max(seen_, d.seq);
  }
  if (now - last_prune_ >= 60) {
    last_prune_ = now;
    {
      std::unique_lock lock(mutex_);
      std::erase_if(denied_, [now](const auto& kv) { return kv.second < now; });
      empty_.store(denied_.empty(), std::memory_order_release);
    }
    store_->prune_tokens(now);
  }
}

void DenyList::receive(std::string_view payload) {
  const auto space = payload.find(' ');
  if (space != 64) return;
  const std::string raw = unhex(payload.substr(0, 64));
  const std::string_view exp_text = payload.substr(65);
  std::int64_t exp = 0;
  const auto [end, ec] = std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
  if (raw.size() != 32 || ec != std::errc() || end != exp_text.data() + exp_text.size()) return;
  apply(raw, exp);
}

void DenyList::round() {
  if (feed_ == nullptr) {
    sync();
    return;
  }
  if (resync_.exchange(false)) {
    try {
      {
        std::lock_guard guard(sync_mutex_);
        seen_ = 0;  // denied_since(0) reads every unexpired denial
      }
      sync();
    } catch (...) {
      resync_ = true;  // the next round tries again
      throw;
    }
    return;
  }
  std::int64_t last = 0;
  {
    std::lock_guard guard(sync_mutex_);
    last = last_sync_;
  }
  if (clock_() - last >= kSafetyPollSeconds) sync();
}

void DenyList::start(std::chrono::milliseconds interval) {
  if (feed_ == nullptr) {
    if (auto* feed = dynamic_cast<ChangeFeed*>(store_.get());
        feed != nullptr && feed->available()) {
      // Subscribed before the first read: a denial committed in between arrives anyway.
      subscription_ = feed->subscribe(
          ChangeFeed::kRevocations, [this](std::string_view payload) { receive(payload); },
          [this] {
            resync_ = true;
            poller_.wake();
          });
      feed_ = feed;
    }
  }
  sync();
  // A round that fails (the store is unreachable) is tried again at the next one.
  poller_.start(interval, [this] { round(); });
}

// ---- TokenStore -----------------------------------------------------------------------

std::vector<TokenStore::RotateOutcome> TokenStore::rotate_refresh_tokens(
    const std::vector<RotateRequest>& batch, std::int64_t now, std::int64_t idle_seconds,
    std::int64_t grace_seconds) {
  std::vector<RotateOutcome> out(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    try {
      out[i].status = rotate_refresh_token(batch[i].hash, batch[i].successor_hash, batch[i].scope,
                                           now, idle_seconds, grace_seconds, out[i].successor);
    } catch (...) {
      out[i] = RotateOutcome{};
      out[i].error = std::current_exception();
    }
  }
  return out;
}

// ---- RefreshTokens -------------------------------------------------------------------

// Group commit: rotations queue here while the store commits the previous batch; the
// thread then takes them all and commits them in one transaction (one disk flush),
// and only then answers each. Under load a batch holds about as many rotations as
// arrived during one commit; alone, a rotation waits for nothing but its own commit.
class RefreshTokens::Committer {
 public:
  struct Job {
    TokenStore::RotateRequest request;
    std::string successor;
    RotationDone done;
  };

  Committer(std::shared_ptr<TokenStore> store, const RefreshTokenOptions& options)
      : store_(std::move(store)), options_(options), thread_([this] { run(); }) {}
  ~Committer() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();  // run() answers every queued job before it returns
  }
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  void submit(Job job) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

 private:
  // A bound on one transaction; more simply wait for the next.
  static constexpr std::size_t kMaxBatch = 1024;

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      std::vector<Job> jobs;
      if (queue_.size() <= kMaxBatch) {
        jobs.swap(queue_);
      } else {
        jobs.assign(std::make_move_iterator(queue_.begin()),
                    std::make_move_iterator(queue_.begin() + kMaxBatch));
        queue_.erase(queue_.begin(), queue_.begin() + kMaxBatch);
      }
      lock.unlock();
      commit(jobs);
      lock.lock();
    }
  }

  void commit(std::vector<Job>& jobs) {
    std::vector<TokenStore::RotateRequest> batch;
    batch.reserve(jobs.size());
    for (auto& j : jobs) batch.push_back(std::move(j.request));
    std::vector<TokenStore::RotateOutcome> outcomes;
    std::exception_ptr failed;
    try {
      outcomes = store_->rotate_refresh_tokens(batch, options_.clock(), options_.idle_seconds,
                                               options_.grace_seconds);
      if (outcomes.size() != jobs.size()) throw std::logic_error("rotation batch miscounted");
    } catch (...) {
      failed = std::current_exception();
    }
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      Rotation r;
      std::exception_ptr error = failed;
      if (!failed) {
        error = outcomes[i].error;
        r.status = outcomes[i].status;
        if (!error && (r.status == RotateStatus::rotated || r.status == RotateStatus::replayed)) {
          r.token = std::move(jobs[i].successor);
          r.record = std::move(outcomes[i].successor);
        }
      }
      if (error) r.status = RotateStatus::unknown;
      try {
        jobs[i].done(std::move(r), error);
      } catch (...) {
        // A callback that throws must not cost the others their answers.
      }
    }
  }

  std::shared_ptr<TokenStore> store_;
  RefreshTokenOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Job> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the rest is built
};

std::string generate_refresh_key() { return b64::encode_url(random_bytes(32)); }

RefreshTokens::RefreshTokens(std::shared_ptr<TokenStore> store, std::string key,
                             RefreshTokenOptions options)
    : store_(std::move(store)), key_(std::move(key)), options_(std::move(options)) {
  if (!store_) throw std::invalid_argument("RefreshTokens needs a token store");
  if (key_.size() < 32) throw std::invalid_argument("the refresh key is too short");
  options_.clock = or_system_clock(std::move(options_.clock));
  if (store_->batches_rotations()) committer_ = std::make_shared<Committer>(store_, options_);
}

std::string RefreshTokens::hash(std::string_view token) { return hex(sha256_raw(token)); }

std::string RefreshTokens::issue(const std::string& username, const std::string& scope) const {
  const std::int64_t now = options_.clock();
  const std::string token = b64::encode_url(random_bytes(32));
  RefreshTokenRecord r;
  r.hash = hash(token);
  r.family = hex(random_bytes(16));
  r.username = username;
  r.scope = scope;
  r.family_expires_at = now + options_.absolute_seconds;
  r.expires_at = std::min(now + options_.idle_seconds, r.family_expires_at);
  store_->add_refresh_token(r);
  return token;
}

std::optional<RefreshTokenRecord> RefreshTokens::find(std::string_view token) const {
  if (token.empty() || token.size() > kMaxTokenBytes) return std::nullopt;
  return store_->find_refresh_token(hash(token), options_.clock());
}

// The successor is derived, not drawn: a replay within the grace period, on any
// instance, gets the same one, and the store keeps only hashes.
std::string RefreshTokens::successor_of(std::string_view token) const {
  std::array<unsigned char, 32> mac{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
           reinterpret_cast<const unsigned char*>(token.data()), token.size(), mac.data(),
           &len) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return b64::encode_url(std::string_view(reinterpret_cast<const char*>(mac.data()), len));
}

void RefreshTokens::rotate_later(std::string_view token, const std::string& scope,
                                 RotationDone done) const {
  if (!committer_ || token.empty() || token.size() > kMaxTokenBytes) {
    Rotation r;
    std::exception_ptr error;
    try {
      r = rotate(token, scope);
    } catch (...) {
      r = Rotation{};
      error = std::current_exception();
    }
    done(std::move(r), error);
    return;
  }
  Committer::Job job;
  job.successor = successor_of(token);
  job.request = {hash(token), hash(job.successor), scope};
  job.done = std::move(done);
  committer_->submit(std::move(job));
}

RefreshTokens::Rotation RefreshTokens::rotate(std::string_view token,
                                              const std::string& scope) const {
  Rotation out;
  if (token.empty() || token.size() > kMaxTokenBytes) return out;
  out.token = successor_of(token);
  out.status =
      store_->rotate_refresh_token(hash(token), hash(out.token), scope, options_.clock(),
                                   options_.idle_seconds, options_.grace_seconds, out.record);
  if (out.status != RotateStatus::rotated && out.status != RotateStatus::replayed) {
    out.token.clear();
  }
  return out;
}

bool RefreshTokens::revoke(std::string_view token) const {
  auto r = find(token);  // a spent token names its family too: revoking it logs out
  return r && store_->revoke_refresh_family(r->family);
}

// ---- POST /revoke --------------------------------------------------------------------

Response oauth_error(std::string_view error, std::string_view description) {
  return Response::json(400,
                        boost::json::object{{"error", error}, {"error_description", description}},
                        {{"Cache-Control", "no-store"}, {"Pragma", "no-cache"}});
}

namespace {

std::optional<std::string> form_text(RequestContext& ctx, std::string_view name);

struct RevokeForm {
  std::optional<std::string> token;
  std::optional<std::string> token_type_hint;
};

Dependency<RevokeForm> revoke_form() {
  return Dependency<RevokeForm>([](const SecurityScopes&, Binding& binding) {
    static const std::vector<Field> fields{Field{"token", "string", true},
                                           Field{"token_type_hint"}};
    binding.add_form_fields(fields);
    return Dependency<RevokeForm>::Resolver([](RequestContext& ctx) -> Outcome<RevokeForm> {
      RevokeForm form;
      form.token = form_text(ctx, "token");
      form.token_type_hint = form_text(ctx, "token_type_hint");
      return form;
    });
  });
}

std::optional<std::string> form_text(RequestContext& ctx, std::string_view name) {
  const FormField* f = ctx.form().get(name);
  if (f == nullptr || f->is_file || f->value.empty()) return std::nullopt;
  return f->value;
}

}  // namespace

Dependency<TokenRequest> TokenRequest::dependency() {
  return Dependency<TokenRequest>([](const SecurityScopes&, Binding& binding) {
    static const std::vector<Field> fields{Field{"grant_type", "string", true},
                                           Field{"username"},
                                           Field{"password"},
                                           Field{"refresh_token"},
                                           Field{"scope"},
                                           Field{"client_id"},
                                           Field{"client_secret"}};
    binding.add_form_fields(fields);
    binding.set_blocking();  // a password grant hashes: the route runs on the worker pool
    return Dependency<TokenRequest>::Resolver([](RequestContext& ctx) -> Outcome<TokenRequest> {
      TokenRequest r;
      r.grant_type = form_text(ctx, "grant_type");
      r.username = form_text(ctx, "username");
      r.password = form_text(ctx, "password");
      r.refresh_token = form_text(ctx, "refresh_token");
      if (const FormField* f = ctx.form().get("scope"); f != nullptr && !f->is_file) {
        r.scopes = split_scopes(f->value);
      }
      r.client_id = form_text(ctx, "client_id");
      r.client_secret = form_text(ctx, "client_secret");
      return r;
    });
  });
}

Route& install_revoke(App& app, std::shared_ptr<const Verifier> verifier,
                      std::shared_ptr<DenyList> deny_list, std::shared_ptr<RefreshTokens> refresh,
                      std::shared_ptr<const ClientRegistry> clients) {
  if (!verifier || !deny_list)
    throw std::invalid_argument("install_revoke needs a verifier and a deny-list");
  // Revocations by token type and client in /metrics.
  std::shared_ptr<Metrics> metrics = app.metrics();
  Counter* access_revoked = &metrics->tokens_revoked("access_token");
  Counter* refresh_revoked = &metrics->tokens_revoked("refresh_token");
  return app.post(
      "/revoke", {.name = "revoke_token", .offload = true, .summary = "Revoke a token (RFC 7009)"},
      [verifier, deny_list, refresh, clients, metrics, access_revoked, refresh_revoked](
          RequestContext& ctx, const RevokeForm& form) -> Response {
        const Headers no_store{{"Cache-Control", "no-store"}, {"Pragma", "no-cache"}};
        // RFC 7009 §2.1: the client's credentials first, then the token's owner.
        ClientAuthentication auth;
        if (clients) {
          auth = authenticate_client(ctx, *clients);
          if (auth.attempted && !auth.client) return invalid_client(auth);
        }
        if (!form.token || form.token->empty()) {
          return oauth_error("invalid_request", "the token parameter is required");
        }
        const std::string& token = *form.token;
        // Found tokens, with the client each was issued to ("" for none).
        std::optional<VerifiedToken> access;
        std::optional<RefreshTokenRecord> refreshing;
        auto find_access = [&] {
          if (token.size() > 64 * 1024) return false;
          auto verified = verifier->verify(token);
          if (!verified) return false;  // garbage, or refused already (expired, foreign, revoked)
          access = std::move(*verified);
          return true;
        };
        auto find_refresh = [&] {
          if (!refresh) return false;
          refreshing = refresh->find(token);  // a spent one names its family too
          return refreshing.has_value();
        };
        // RFC 7009 §2.1: the hint only says where to look first.
        if (form.token_type_hint && *form.token_type_hint == "access_token") {
          if (!find_access()) find_refresh();
        } else {
          if (!find_refresh()) find_access();
        }
        if (!access && !refreshing) return Response::json(200, boost::json::object{}, no_store);
        if (clients) {
          std::string owner;  // refresh tokens come from password logins: no client
          if (access) {
            const auto* cid = access->claims.if_contains("client_id");
            if (cid != nullptr && cid->is_string()) owner = std::string(cid->get_string());
          }
          if (auth.client) {
            if (owner != auth.client->id) {
              return Response::json(
                  400,
                  boost::json::object{
                      {"error", "unauthorized_client"},
                      {"error_description", "The token was not issued to this client"}},
                  no_store);
            }
          } else if (!owner.empty()) {
            // A client's token: only that client, authenticated, may revoke it.
            return invalid_client(auth);
          }
        }
        if (access) {
          deny_list->deny(*access);
          // A client's token names its registered id (signed here): a bounded label.
          const auto* cid = access->claims.if_contains("client_id");
          if (cid != nullptr && cid->is_string()) {
            metrics->tokens_revoked("access_token", cid->get_string()).inc();
          } else {
            access_revoked->inc();
          }
        }
        if (refreshing && refresh->revoke(token)) refresh_revoked->inc();
        return Response::json(200, boost::json::object{}, no_store);
      },
      Depends(revoke_form()));
}

}  // namespace gatehouse
