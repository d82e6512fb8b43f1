// The Verifier's ordered checks (see verifier.hpp), the token issuer, and the one
// mapping from Failure to FastAPI's answers.
#include "gatehouse/verifier.hpp"

#include <openssl/rand.h>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>

#include "gatehouse/jwt.hpp"
#include "security/base64url.hpp"
#include "security/claims.hpp"

namespace gatehouse {

namespace {

bool ascii_iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

// Header fields in sorted order, as python-jose writes them (json.dumps sort_keys).
std::string header_json(Alg alg, std::string_view kid, bool at_jwt) {
  boost::json::object h;
  h["alg"] = to_string(alg);
  if (!kid.empty()) h["kid"] = kid;
  h["typ"] = at_jwt ? "at+jwt" : "JWT";
  std::string out;
  jwt::dump_python_json(h, out);
  return out;
}

}  // namespace

std::string_view to_string(Failure f) noexcept {
  switch (f) {
    case Failure::malformed:
      return "malformed token";
    case Failure::bad_header:
      return "invalid header";
    case Failure::alg_not_allowed:
      return "algorithm not allowed";
    case Failure::unknown_key:
      return "unknown key";
    case Failure::wrong_type:
      return "wrong token type";
    case Failure::bad_signature:
      return "signature verification failed";
    case Failure::bad_payload:
      return "invalid payload";
    case Failure::expired:
      return "token expired";
    case Failure::not_yet_valid:
      return "token not yet valid";
    case Failure::bad_claim:
      return "invalid claim";
    case Failure::audience_present:
      return "audience not accepted";
    case Failure::wrong_audience:
      return "wrong audience";
    case Failure::wrong_issuer:
      return "wrong issuer";
    case Failure::revoked:
      return "token revoked";
    case Failure::not_authenticated:
      return "not authenticated";
    case Failure::unknown_user:
      return "unknown user";
    case Failure::missing_scope:
      return "missing scope";
    case Failure::inactive_user:
      return "inactive user";
  }
  return "invalid token";
}

HttpException to_http_exception(Failure f, const SecurityScopes& scopes) {
  switch (f) {
    case Failure::inactive_user:
      return HttpException(400, "Inactive user");
    case Failure::not_authenticated:
      // OAuth2PasswordBearer's own 401: no scope in the challenge.
      return HttpException(401, "Not authenticated", {{"WWW-Authenticate", "Bearer"}});
    default:
      break;
  }
  // The challenge advertises the scopes the whole dependency chain asked for.
  std::string challenge = "Bearer";
  if (!scopes.empty()) challenge = "Bearer scope=\"" + scopes.scope_str() + "\"";
  return HttpException(
      401,
      f == Failure::missing_scope ? "Not enough permissions" : "Could not validate credentials",
      {{"WWW-Authenticate", std::move(challenge)}});
}

bool VerifiedToken::has_scope(std::string_view scope) const noexcept {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

std::optional<Failure> detail::check_registered_claims(const boost::json::object& claims,
                                                       std::int64_t now,
                                                       const VerifierOptions& options) {
  using jwt::detail::python_int;
  if (options.strict_claims) {
    // RFC 7519 §2: a NumericDate is a JSON number; §4.1.4: exp, required here.
    if (!claims.contains("exp")) return Failure::bad_claim;
    for (const char* name : {"iat", "nbf", "exp"}) {
      const auto* v = claims.if_contains(name);
      if (v != nullptr && !(v->is_int64() || v->is_uint64() || v->is_double())) {
        return Failure::bad_claim;
      }
    }
  }
  const auto leeway = static_cast<long double>(options.leeway_seconds);
  const auto t = static_cast<long double>(now);
  if (const auto* iat = claims.if_contains("iat")) {
    if (!python_int(*iat)) return Failure::bad_claim;
  }
  if (const auto* nbf = claims.if_contains("nbf")) {
    auto v = python_int(*nbf);
    if (!v) return Failure::bad_claim;
    if (*v > t + leeway) return Failure::not_yet_valid;
  }
  if (const auto* exp = claims.if_contains("exp")) {
    auto v = python_int(*exp);
    if (!v) return Failure::bad_claim;
    if (*v < t - leeway) return Failure::expired;
  }
  const auto* aud = claims.if_contains("aud");
  if (!options.audience) {
    // jose with no expected audience refuses any token that names one.
    if (aud != nullptr) return Failure::audience_present;
  } else {
    bool named = false;
    if (aud != nullptr && aud->is_string()) {
      named = aud->get_string() == *options.audience;
    } else if (aud != nullptr && aud->is_array()) {
      for (const auto& a : aud->get_array()) {
        if (!a.is_string()) return Failure::bad_claim;
        if (a.get_string() == *options.audience) named = true;
      }
    }
    if (!named) return Failure::wrong_audience;
  }
  if (options.issuer) {
    const auto* iss = claims.if_contains("iss");
    if (iss == nullptr || !iss->is_string() || iss->get_string() != *options.issuer) {
      return Failure::wrong_issuer;
    }
  }
  if (const auto* sub = claims.if_contains("sub"); sub != nullptr && !sub->is_string()) {
    return Failure::bad_claim;
  }
  if (const auto* jti = claims.if_contains("jti"); jti != nullptr && !jti->is_string()) {
    return Failure::bad_claim;
  }
  // jose: an at_hash claim needs an access token to compare against; there is none.
  if (claims.contains("at_hash")) return Failure::bad_claim;
  return std::nullopt;
}

// ---------------------------------------------------------------- the cache

namespace {

constexpr std::size_t kCacheShards = 16;
constexpr std::size_t kMaxCachedToken = 4096;

// Equal-length byte strings compared in time that depends on their length only, eight
// bytes at a time (CRYPTO_memcmp takes one byte at a time: a fifth of a cache hit).
bool same_bytes(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  std::uint64_t diff = 0;
  std::size_t i = 0;
  for (; i + 8 <= a.size(); i += 8) {
    std::uint64_t x = 0;
    std::uint64_t y = 0;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    diff |= x ^ y;
  }
  for (; i < a.size(); ++i) {
    diff |= static_cast<std::uint64_t>(static_cast<unsigned char>(a[i]) ^
                                       static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

}  // namespace

struct Verifier::Cache {
  struct Slot {
    std::string token;
    std::shared_ptr<const VerifiedToken> verified;
    Provenance provenance;
  };
  struct alignas(64) Shard {
    std::mutex mutex;
    std::vector<Slot> slots;
  };
  explicit Cache(std::size_t entries) : per_shard((entries + kCacheShards - 1) / kCacheShards) {
    for (auto& s : shards) s.slots.resize(per_shard);
  }
  std::size_t per_shard;
  std::array<Shard, kCacheShards> shards;
};

Verifier::Verifier(VerifierOptions options, std::shared_ptr<KeySource> keys)
    : options_(std::move(options)), keys_(std::move(keys)) {
  if (!options_.clock) options_.clock = jwt::now_seconds;
  if (!keys_) throw std::invalid_argument("a Verifier needs a key source");
  if (options_.cache_entries != 0) cache_ = std::make_shared<Cache>(options_.cache_entries);
}

std::shared_ptr<const Verifier> Verifier::hs256(std::string secret) {
  return std::make_shared<const Verifier>(VerifierOptions{}, StaticKeys::hs256(std::move(secret)));
}

Result<VerifiedToken, Failure> Verifier::verify(std::string_view token) const {
  return verify_impl(token, nullptr);
}

Result<VerifiedToken, Failure> Verifier::verify_impl(std::string_view token,
                                                     Provenance* provenance) const {
  // 1. jose: rsplit('.', 1) for the signature, then split('.', 1) for header/payload.
  const auto last_dot = token.rfind('.');
  if (last_dot == std::string_view::npos) return Err{Failure::malformed};
  const auto signing_input = token.substr(0, last_dot);
  const auto first_dot = signing_input.find('.');
  if (first_dot == std::string_view::npos) return Err{Failure::malformed};

  // 2. The header.
  // The decoded segments go into this thread's buffers (no allocation per token once
  // they have grown); each is only read during this call.
  using Decode = bool (*)(std::string_view, std::string&);
  const Decode decode = options_.canonical_base64 ? static_cast<Decode>(b64::decode_url_canonical)
                                                  : static_cast<Decode>(b64::decode_jose);
  thread_local std::string header_json_text;
  thread_local std::string payload_json;
  thread_local std::string signature;
  if (!decode(signing_input.substr(0, first_dot), header_json_text)) {
    return Err{Failure::malformed};
  }
  boost::json::parse_options opts;
  opts.max_depth = 1000;
  boost::system::error_code ec;
  // The header lives only during this call: parsed into a stack buffer, no malloc.
  unsigned char scratch[2048];
  boost::json::monotonic_resource header_mr(scratch, sizeof scratch);
  auto header = boost::json::parse(header_json_text, ec, &header_mr, opts);
  if (ec || !header.is_object()) return Err{Failure::bad_header};
  const auto& h = header.get_object();
  if (options_.reject_crit && h.contains("crit")) return Err{Failure::bad_header};

  // 3. RFC 8725 §3.1: the algorithm must be one we allow, before any cryptography.
  const auto* alg_value = h.if_contains("alg");
  if (alg_value == nullptr || !alg_value->is_string()) return Err{Failure::alg_not_allowed};
  const auto alg = alg_from_string(alg_value->get_string());
  if (!alg || std::find(options_.algorithms.begin(), options_.algorithms.end(), *alg) ==
                  options_.algorithms.end()) {
    return Err{Failure::alg_not_allowed};
  }

  // 4. The key named by kid (python-jose ignores kid; so does a kid-less key).
  std::optional<std::string_view> kid;
  if (const auto* k = h.if_contains("kid"); k != nullptr && k->is_string()) kid = k->get_string();
  const auto now = options_.clock();
  auto keys = keys_->keys();
  const Key* key = keys->find(kid, *alg, now);
  if (key == nullptr && kid) {
    keys = keys_->keys_after_miss();  // a key made elsewhere since we last looked?
    key = keys->find(kid, *alg, now);
  }
  if (key == nullptr) return Err{Failure::unknown_key};
  // 5. A key verifies only the algorithm it was made for.
  if (key->alg() != *alg) return Err{Failure::alg_not_allowed};

  // 6. RFC 9068 §4: typ at+jwt (media types compare case-insensitively).
  if (options_.rfc9068) {
    const auto* typ = h.if_contains("typ");
    if (typ == nullptr || !typ->is_string() ||
        !(ascii_iequals(typ->get_string(), "at+jwt") ||
          ascii_iequals(typ->get_string(), "application/at+jwt"))) {
      return Err{Failure::wrong_type};
    }
  }

  // 7. The signature.
  if (!decode(signing_input.substr(first_dot + 1), payload_json)) return Err{Failure::malformed};
  if (!decode(token.substr(last_dot + 1), signature)) return Err{Failure::malformed};
  if (!key->verify(signing_input, signature)) return Err{Failure::bad_signature};

  // 8. The payload.
  auto payload = boost::json::parse(payload_json, ec, {}, opts);
  if (ec || !payload.is_object()) return Err{Failure::bad_payload};

  // 9-11. Registered claims.
  if (auto failure = detail::check_registered_claims(payload.get_object(), now, options_)) {
    return Err{*failure};
  }

  // 12. The tutorial's TokenData: sub required, scopes a list of strings.
  auto data = jwt::TokenData::from_claims(payload.get_object());
  if (!data) return Err{Failure::bad_claim};
  if (options_.strict_claims) {
    if (const auto* scopes = payload.get_object().if_contains("scopes")) {
      for (const auto& s : scopes->get_array()) {
        if (!s.is_string()) return Err{Failure::bad_claim};
      }
    }
  }
  VerifiedToken out;
  out.subject = std::move(data->username);
  out.scopes = std::move(data->scopes);
  out.alg = *alg;
  out.kid = key->kid();
  out.signing_input = std::string(signing_input);
  out.claims = std::move(payload.get_object());
  if (options_.rfc9068 && !out.claims.contains("scopes")) {
    if (const auto* scope = out.claims.if_contains("scope")) {
      if (!scope->is_string()) return Err{Failure::bad_claim};
      out.scopes = split_scopes(scope->get_string());
    }
  }
  // 13. RFC 7009: revoked before it expired.
  if (options_.revocations && options_.revocations->revoked(out)) return Err{Failure::revoked};
  if (provenance != nullptr) {
    provenance->key = key;
    provenance->keys = std::move(keys);
    if (kid) provenance->header_kid = std::string(*kid);
  }
  return out;
}

Result<std::shared_ptr<const VerifiedToken>, Failure> Verifier::verify_shared(
    std::string_view token) const {
  if (!cache_ || token.size() > kMaxCachedToken) {
    auto r = verify_impl(token, nullptr);
    if (!r) return Err{r.error()};
    return std::make_shared<const VerifiedToken>(std::move(*r));
  }
  const std::size_t h = std::hash<std::string_view>{}(token);
  auto& shard = cache_->shards[h % kCacheShards];
  const std::size_t index = (h / kCacheShards) % cache_->per_shard;
  // Only the bytes are remembered. What can change while they stay the same is looked
  // at again: the key set and the key's time window (here), the clock's claims and the
  // revocation list (below). A slot whose key no longer holds is verified again in full.
  const auto now = options_.clock();
  const auto keys = keys_->keys();
  std::shared_ptr<const VerifiedToken> hit;
  {
    std::lock_guard lock(shard.mutex);
    const auto& slot = shard.slots[index];
    // The whole token, compared in constant time: a near miss says nothing about how near.
    if (slot.verified && same_bytes(slot.token, token) && slot.provenance.keys == keys) {
      const auto& kid = slot.provenance.header_kid;
      if (keys->find(kid ? std::optional<std::string_view>(*kid) : std::nullopt, slot.verified->alg,
                     now) == slot.provenance.key) {
        hit = slot.verified;
      }
    }
  }
  if (hit) {
    if (auto failure = detail::check_registered_claims(hit->claims, now, options_)) {
      return Err{*failure};
    }
    if (options_.revocations && options_.revocations->revoked(*hit)) {
      return Err{Failure::revoked};
    }
    return hit;
  }
  Provenance provenance;
  auto r = verify_impl(token, &provenance);
  if (!r) return Err{r.error()};
  auto verified = std::make_shared<const VerifiedToken>(std::move(*r));
  {
    std::lock_guard lock(shard.mutex);
    auto& slot = shard.slots[index];
    slot.token.assign(token);
    slot.verified = verified;
    slot.provenance = std::move(provenance);
  }
  return verified;
}

std::optional<Failure> Verifier::check_scopes(const VerifiedToken& token,
                                              const SecurityScopes& required) {
  for (const auto& scope : required.scopes()) {
    if (!token.has_scope(scope)) return Failure::missing_scope;
  }
  return std::nullopt;
}

TokenIssuer::TokenIssuer(TokenIssuerOptions options, std::shared_ptr<KeySource> keys)
    : options_(std::move(options)), keys_(std::move(keys)) {
  if (!options_.clock) options_.clock = jwt::now_seconds;
  if (!keys_) throw std::invalid_argument("a TokenIssuer needs a key source");
}

std::optional<Alg> TokenIssuer::signing_alg() const {
  const auto keys = keys_->keys();
  const auto& key = keys->signing_key();
  if (!key || !key->can_sign()) return std::nullopt;
  return key->alg();
}

std::string TokenIssuer::issue(boost::json::object claims,
                               const std::optional<std::string>& client_id) const {
  const auto keys = keys_->keys();
  const auto& key = keys->signing_key();
  if (!key || !key->can_sign()) throw std::runtime_error("there is no signing key");
  const auto now = options_.clock();
  claims["exp"] = now + options_.lifetime_seconds;
  const bool profile = rfc9068();
  if (profile) {
    // RFC 9068 §2.2.
    if (options_.issuer) claims["iss"] = *options_.issuer;
    if (options_.audience) claims["aud"] = *options_.audience;
    claims["iat"] = now;
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no randomness for a jti");
    claims["jti"] = b64::encode_url(std::string_view(reinterpret_cast<const char*>(raw), 16));
    if (client_id) claims["client_id"] = *client_id;
    if (const auto* scopes = claims.if_contains("scopes");
        scopes != nullptr && scopes->is_array()) {
      std::string joined;
      for (const auto& s : scopes->get_array()) {
        if (!s.is_string()) continue;
        if (!joined.empty()) joined += ' ';
        joined += s.get_string();
      }
      claims["scope"] = joined;
    }
  }
  std::string payload;
  jwt::dump_python_json(claims, payload);
  std::string token = b64::encode_url(header_json(key->alg(), key->kid(), profile));
  token += '.';
  b64::encode_url(payload, token);
  const auto signature = key->sign(token);
  token += '.';
  b64::encode_url(signature, token);
  return token;
}

}  // namespace gatehouse
