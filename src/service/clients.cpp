// Registered clients, client authentication and POST /introspect (see clients.hpp).
#include "gatehouse/clients.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <stdexcept>

#include "gatehouse/jwt.hpp"
#include "gatehouse/security.hpp"
#include "http/form.hpp"
#include "security/base64url.hpp"

namespace gatehouse {

namespace {

constexpr std::string_view kClientsSetting = "oauth_clients";
constexpr std::size_t kMaxSecretBytes = 1024;
constexpr std::size_t kMaxTokenBytes = 64 * 1024;

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("the random number generator failed");
  }
  return out;
}

std::string to_hex(const unsigned char* data, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 0x0f];
  }
  return out;
}

// Standard base64 (RFC 4648 §4, padded), strictly: nullopt on anything else.
std::optional<std::string> decode_base64(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0 || in.size() > 8192) return std::nullopt;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '+' || c == '/';
    if (!alpha && !(c == '=' && i + 2 >= in.size())) return std::nullopt;
  }
  std::size_t pad = 0;
  if (in.back() == '=') ++pad;
  if (in.size() >= 2 && in[in.size() - 2] == '=') {
    if (in.back() != '=') return std::nullopt;
    ++pad;
  }
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

boost::json::array to_array(const std::vector<std::string>& words) {
  boost::json::array a;
  for (const auto& w : words) a.emplace_back(w);
  return a;
}

std::vector<std::string> from_array(const boost::json::value* v) {
  std::vector<std::string> out;
  if (v == nullptr || !v->is_array()) return out;
  for (const auto& e : v->as_array()) {
    if (e.is_string()) out.emplace_back(e.as_string());
  }
  return out;
}

std::vector<Client> parse_clients(std::string_view text) {
  std::vector<Client> out;
  boost::system::error_code ec;
  auto doc = boost::json::parse(text, ec);
  if (ec || !doc.is_array()) throw std::runtime_error("the stored clients are not readable");
  for (const auto& v : doc.as_array()) {
    if (!v.is_object()) continue;
    const auto& o = v.as_object();
    Client c;
    if (const auto* id = o.if_contains("id"); id && id->is_string()) c.id = id->as_string();
    if (const auto* h = o.if_contains("secret_hash"); h && h->is_string())
      c.secret_hash = h->as_string();
    if (const auto* t = o.if_contains("created_at"); t && t->is_int64())
      c.created_at = t->as_int64();
    c.grants = from_array(o.if_contains("grants"));
    c.scopes = from_array(o.if_contains("scopes"));
    c.permissions = from_array(o.if_contains("permissions"));
    if (!c.id.empty() && !c.secret_hash.empty()) out.push_back(std::move(c));
  }
  return out;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

std::optional<std::string> form_text(RequestContext& ctx, std::string_view name) {
  const FormField* f = ctx.form().get(name);
  if (f == nullptr || f->is_file || f->value.empty()) return std::nullopt;
  return f->value;
}

struct IntrospectForm {
  std::optional<std::string> token;
  std::optional<std::string> token_type_hint;
};

}  // namespace

bool Client::allows_grant(std::string_view grant) const {
  return std::find(grants.begin(), grants.end(), grant) != grants.end();
}

bool Client::may(std::string_view permission) const {
  return std::find(permissions.begin(), permissions.end(), permission) != permissions.end();
}

std::string generate_client_secret() { return b64::encode_url(random_bytes(32)); }

std::string client_secret_key(UserStore& store) {
  return store.setting_or_init("client_secret_key", b64::encode_url(random_bytes(32)));
}

std::string hash_client_secret(std::string_view key, std::string_view secret) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), mac.data(),
           &len) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return to_hex(mac.data(), len);
}

bool client_secret_matches(std::string_view key, std::string_view secret,
                           std::string_view stored_hash) {
  if (secret.empty() || secret.size() > kMaxSecretBytes) return false;
  const std::string computed = hash_client_secret(key, secret);
  // Both are 64 hex characters for any well-formed stored hash; the length says
  // nothing about the secret.
  if (computed.size() != stored_hash.size()) return false;
  return CRYPTO_memcmp(computed.data(), stored_hash.data(), computed.size()) == 0;
}

bool valid_client_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '~' || c == '-';
  });
}

namespace {

std::string serialize_clients(const std::vector<Client>& clients) {
  boost::json::array a;
  for (const auto& c : clients) {
    a.emplace_back(boost::json::object{{"id", c.id},
                                       {"secret_hash", c.secret_hash},
                                       {"grants", to_array(c.grants)},
                                       {"scopes", to_array(c.scopes)},
                                       {"permissions", to_array(c.permissions)},
                                       {"created_at", c.created_at}});
  }
  return boost::json::serialize(a);
}

std::vector<Client> sorted_clients(const std::optional<std::string>& text) {
  if (!text) return {};
  auto clients = parse_clients(*text);
  std::sort(clients.begin(), clients.end(),
            [](const Client& a, const Client& b) { return a.id < b.id; });
  return clients;
}

}  // namespace

std::vector<Client> load_clients(UserStore& store) {
  return sorted_clients(store.setting(kClientsSetting));
}

void save_clients(UserStore& store, const std::vector<Client>& clients) {
  store.set_setting(kClientsSetting, serialize_clients(clients));
}

void modify_clients(UserStore& store, const std::function<void(std::vector<Client>&)>& change) {
  // Each retry means another writer committed in between; a few hundred in a row would
  // mean something is rewriting the list in a loop.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto before = store.setting(kClientsSetting);
    auto clients = sorted_clients(before);
    change(clients);
    const auto after = serialize_clients(clients);
    if (store.replace_setting(kClientsSetting,
                              before ? std::optional<std::string_view>(*before) : std::nullopt,
                              after)) {
      return;
    }
  }
  throw std::runtime_error("the clients kept changing while this change was being stored");
}

ClientRegistry::ClientRegistry(std::shared_ptr<UserStore> store)
    : store_(std::move(store)), clients_(std::make_shared<const Map>()) {
  if (!store_) throw std::invalid_argument("ClientRegistry needs a store");
  key_ = client_secret_key(*store_);
  mac_ = std::make_shared<const jwt::Hs256Key>(key_);
  sync();
}

// hash_client_secret's HMAC-SHA256 with the key set up once per thread (no provider
// lookup, no key schedule, no allocation per request), compared in constant time.
bool ClientRegistry::matches(std::string_view secret, std::string_view stored_hash) const {
  if (secret.empty() || secret.size() > kMaxSecretBytes) return false;
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char mac[32];
  mac_->sign(secret, mac);
  char computed[64];
  for (std::size_t i = 0; i < 32; ++i) {
    computed[2 * i] = kHex[mac[i] >> 4];
    computed[2 * i + 1] = kHex[mac[i] & 0x0f];
  }
  if (stored_hash.size() != sizeof computed) return false;
  return CRYPTO_memcmp(computed, stored_hash.data(), sizeof computed) == 0;
}

ClientRegistry::~ClientRegistry() { poller_.stop(); }

std::shared_ptr<const Client> ClientRegistry::authenticate(std::string_view id,
                                                           std::string_view secret) const {
  std::shared_ptr<const Map> clients;
  {
    std::shared_lock lock(mutex_);
    clients = clients_;
  }
  auto it = clients->find(std::string(id));
  if (it == clients->end()) {
    // The same HMAC as for a known client, so an unknown id is not told apart by time.
    static constexpr std::string_view kNoHash =
        "0000000000000000000000000000000000000000000000000000000000000000";
    (void)matches(secret, kNoHash);
    return nullptr;
  }
  if (!matches(secret, it->second->secret_hash)) return nullptr;
  return it->second;
}

std::shared_ptr<const Client> ClientRegistry::find(std::string_view id) const {
  std::shared_ptr<const Map> clients;
  {
    std::shared_lock lock(mutex_);
    clients = clients_;
  }
  auto it = clients->find(std::string(id));
  return it == clients->end() ? nullptr : it->second;
}

void ClientRegistry::sync() {
  std::lock_guard sync_lock(sync_mutex_);
  std::string raw = store_->setting(kClientsSetting).value_or("[]");
  if (raw == raw_) return;
  auto map = std::make_shared<Map>();
  for (auto& c : parse_clients(raw)) {
    auto id = c.id;
    (*map)[id] = std::make_shared<const Client>(std::move(c));
  }
  {
    std::unique_lock lock(mutex_);
    clients_ = std::move(map);
  }
  raw_ = std::move(raw);
}

void ClientRegistry::start(std::chrono::milliseconds interval) {
  // A round that fails (the store is unreachable) keeps serving the clients last read.
  poller_.start(interval, [this] { sync(); });
}

ClientAuthentication authenticate_client(RequestContext& ctx, const ClientRegistry& registry) {
  ClientAuthentication auth;
  std::optional<std::string> id;
  std::optional<std::string> secret;
  if (auto header = ctx.request().header("authorization")) {
    std::string_view h = *header;
    if (h.size() > 6 && (h.substr(0, 6) == "Basic " || h.substr(0, 6) == "basic ")) {
      auth.basic = true;
      auth.attempted = true;
      auto decoded = decode_base64(h.substr(6));
      if (!decoded) return auth;
      const auto colon = decoded->find(':');
      if (colon == std::string::npos) return auth;
      id = http::unquote_plus(std::string_view(*decoded).substr(0, colon));
      secret = http::unquote_plus(std::string_view(*decoded).substr(colon + 1));
    }
  }
  auto form_id = form_text(ctx, "client_id");
  auto form_secret = form_text(ctx, "client_secret");
  if (form_secret) {
    auth.attempted = true;
    // RFC 6749 §2.3: one authentication method per request.
    if (auth.basic) return auth;
    id = form_id;
    secret = form_secret;
  }
  if (!id || !secret) return auth;
  auth.client = registry.authenticate(*id, *secret);
  return auth;
}

Response invalid_client(const ClientAuthentication& auth) {
  Headers headers{{"Cache-Control", "no-store"}, {"Pragma", "no-cache"}};
  if (auth.basic || !auth.attempted)
    headers.emplace_back("WWW-Authenticate", "Basic realm=\"gatehouse\"");
  return Response::json(401,
                        boost::json::object{{"error", "invalid_client"},
                                            {"error_description", "Client authentication failed"}},
                        std::move(headers));
}

Route& install_introspect(App& app, std::shared_ptr<const ClientRegistry> clients,
                          std::shared_ptr<const Verifier> verifier,
                          std::shared_ptr<DenyList> deny_list,
                          std::shared_ptr<RefreshTokens> refresh,
                          std::shared_ptr<UserStore> users) {
  if (!clients || !verifier)
    throw std::invalid_argument("install_introspect needs clients and a verifier");
  auto form = Dependency<IntrospectForm>([](const SecurityScopes&, Binding& binding) {
    static const std::vector<Field> fields{Field{"token", "string", true},
                                           Field{"token_type_hint"}};
    binding.add_form_fields(fields);
    return Dependency<IntrospectForm>::Resolver([](RequestContext& ctx) -> Outcome<IntrospectForm> {
      return IntrospectForm{form_text(ctx, "token"), form_text(ctx, "token_type_hint")};
    });
  });
  return app.post(
      "/introspect", {.name = "introspect_token", .summary = "Introspect a token (RFC 7662)"},
      [clients, verifier, deny_list, refresh, users](RequestContext& ctx,
                                                     const IntrospectForm& f) -> Response {
        auto auth = authenticate_client(ctx, *clients);
        if (!auth.client) return invalid_client(auth);
        const Headers headers{{"Cache-Control", "no-store"}, {"Pragma", "no-cache"}};
        if (!auth.client->may(kIntrospectPermission)) {
          return Response::json(
              403,
              boost::json::object{{"error", "unauthorized_client"},
                                  {"error_description", "This client may not introspect tokens"}},
              headers);
        }
        // A user's token is active while its user exists and is enabled.
        auto user_active = [&](std::string_view username) {
          if (!users) return true;
          auto user = users->find(username);
          return user != nullptr && !user->disabled;
        };
        if (!f.token) return oauth_error("invalid_request", "the token parameter is required");
        const std::string& token = *f.token;
        auto access = [&]() -> std::optional<boost::json::object> {
          if (token.size() > kMaxTokenBytes) return std::nullopt;
          auto verified = verifier->verify(token);
          if (!verified) return std::nullopt;
          // (The verifier may check the deny-list itself; then this is not repeated.)
          if (deny_list && verifier->options().revocations.get() != deny_list.get() &&
              deny_list->denied(*verified)) {
            return std::nullopt;
          }
          if (verified->claims.contains("gty")) {
            // A client's own token: active while the client is registered.
            const auto* cid = verified->claims.if_contains("client_id");
            if (cid == nullptr || !cid->is_string() || !clients->find(cid->get_string())) {
              return std::nullopt;
            }
          } else if (!user_active(verified->subject)) {
            return std::nullopt;
          }
          boost::json::object o{{"active", true},
                                {"scope", join(verified->scopes)},
                                {"sub", verified->subject},
                                {"token_type", "Bearer"}};
          for (const char* claim : {"exp", "iat", "iss", "aud", "jti"}) {
            if (const auto* v = verified->claims.if_contains(claim)) o[claim] = *v;
          }
          const auto* cid = verified->claims.if_contains("client_id");
          if (cid != nullptr && cid->is_string()) o["client_id"] = *cid;
          // A token of a user, not one a client got for itself (client_credentials).
          if (!verified->claims.contains("gty")) {
            o["username"] = verified->subject;
          }
          return o;
        };
        auto refreshing = [&]() -> std::optional<boost::json::object> {
          if (!refresh || token.size() > 256) return std::nullopt;
          auto record = refresh->find(token);
          if (!record || record->spent || !user_active(record->username)) return std::nullopt;
          return boost::json::object{
              {"active", true},
              {"scope", record->scope},
              {"sub", record->username},
              {"username", record->username},
              {"exp", std::min(record->expires_at, record->family_expires_at)},
              {"token_type", "refresh_token"}};
        };
        const bool refresh_first = f.token_type_hint && *f.token_type_hint == "refresh_token";
        std::optional<boost::json::object> answer = refresh_first ? refreshing() : access();
        if (!answer) answer = refresh_first ? access() : refreshing();
        if (!answer) answer = boost::json::object{{"active", false}};
        return Response::json(200, *answer, headers);
      },
      Depends(form));
}

}  // namespace gatehouse
