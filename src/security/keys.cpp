// Keys bound to one JWS algorithm, on OpenSSL 3's EVP interface, and the store-backed
// key ring. Nothing here prints or throws private key material: errors name the
// algorithm or the kid, never the PEM.
#include "gatehouse/keys.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <boost/json/serialize.hpp>

#include <cstdio>
#include <stdexcept>

#include "gatehouse/jwt.hpp"
#include "gatehouse/log.hpp"
#include "gatehouse/store.hpp"
#include "security/base64url.hpp"

namespace gatehouse {

namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

// OpenSSL's error queue is per thread; a failure we answer ourselves must not leave
// entries behind for the next unrelated call to find.
[[noreturn]] void fail(const std::string& what) {
  ERR_clear_error();
  throw std::runtime_error(what);
}

std::string b64url(const unsigned char* data, std::size_t n) {
  return b64::encode_url(std::string_view(reinterpret_cast<const char*>(data), n));
}

std::string bn_param(const EVP_PKEY* pkey, const char* name, int pad_to = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1) fail("cannot read a public key parameter");
  BnPtr bn(raw);
  const int len = pad_to > 0 ? pad_to : BN_num_bytes(bn.get());
  std::string out(static_cast<std::size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  if (pad_to > 0 ? BN_bn2binpad(bn.get(), p, len) != len : BN_bn2bin(bn.get(), p) != len) {
    fail("cannot encode a public key parameter");
  }
  return b64::encode_url(out);
}

const char* digest_name(Alg alg) {
  switch (alg) {
    case Alg::RS256:
    case Alg::ES256:
      return "SHA256";
    default:
      return nullptr;  // Ed25519 signs the message itself
  }
}

bool matches(Alg alg, const EVP_PKEY* pkey) {
  switch (alg) {
    case Alg::RS256:
      return EVP_PKEY_is_a(pkey, "RSA") == 1 && EVP_PKEY_get_bits(pkey) >= 2048;
    case Alg::ES256: {
      if (EVP_PKEY_is_a(pkey, "EC") != 1) return false;
      char group[64];
      std::size_t len = 0;
      return EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            &len) == 1 &&
             std::string_view(group, len) == "prime256v1";
    }
    case Alg::EdDSA:
      return EVP_PKEY_is_a(pkey, "ED25519") == 1;
    case Alg::HS256:
      return false;
  }
  return false;
}

}  // namespace

std::string_view to_string(Alg alg) noexcept {
  switch (alg) {
    case Alg::HS256:
      return "HS256";
    case Alg::RS256:
      return "RS256";
    case Alg::ES256:
      return "ES256";
    case Alg::EdDSA:
      return "EdDSA";
  }
  return "HS256";
}

std::optional<Alg> alg_from_string(std::string_view name) noexcept {
  for (Alg a : {Alg::HS256, Alg::RS256, Alg::ES256, Alg::EdDSA}) {
    if (to_string(a) == name) return a;
  }
  return std::nullopt;
}

struct Key::Impl {
  std::shared_ptr<const jwt::Hs256Key> hmac;  // HS256
  PkeyPtr pkey;                               // the others
  bool has_private = false;
};

Key::Key(Alg alg, std::unique_ptr<Impl> impl) : alg_(alg), impl_(std::move(impl)) {
  if (!impl_->pkey) return;
  // The public JWK (RFC 7517/7518/8037), and its RFC 7638 thumbprint as the kid: the
  // required members in lexicographic order, no whitespace, SHA-256, base64url.
  std::string canonical;
  EVP_PKEY* pkey = impl_->pkey.get();
  switch (alg) {
    case Alg::RS256: {
      const auto n = bn_param(pkey, OSSL_PKEY_PARAM_RSA_N);
      const auto e = bn_param(pkey, OSSL_PKEY_PARAM_RSA_E);
      jwk_ = {{"kty", "RSA"}, {"n", n}, {"e", e}};
      canonical = R"({"e":")" + e + R"(","kty":"RSA","n":")" + n + "\"}";
      break;
    }
    case Alg::ES256: {
      const auto x = bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32);
      const auto y = bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
      jwk_ = {{"kty", "EC"}, {"crv", "P-256"}, {"x", x}, {"y", y}};
      canonical = R"({"crv":"P-256","kty":"EC","x":")" + x + R"(","y":")" + y + "\"}";
      break;
    }
    case Alg::EdDSA: {
      unsigned char raw[32];
      std::size_t len = sizeof raw;
      if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != 32) {
        fail("cannot read the Ed25519 public key");
      }
      const auto x = b64url(raw, len);
      jwk_ = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", x}};
      canonical = R"({"crv":"Ed25519","kty":"OKP","x":")" + x + "\"}";
      break;
    }
    case Alg::HS256:
      break;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if (EVP_Digest(canonical.data(), canonical.size(), digest, &dlen, EVP_sha256(), nullptr) != 1) {
    fail("SHA-256 failed");
  }
  kid_ = b64url(digest, dlen);
  jwk_["kid"] = kid_;
  jwk_["alg"] = to_string(alg);
  jwk_["use"] = "sig";
}

Key::~Key() = default;

std::shared_ptr<const Key> Key::hs256(std::string secret, std::string kid) {
  return hs256(std::make_shared<const jwt::Hs256Key>(std::move(secret)), std::move(kid));
}

std::shared_ptr<const Key> Key::hs256(std::shared_ptr<const jwt::Hs256Key> secret,
                                      std::string kid) {
  if (!secret) throw std::invalid_argument("no HS256 secret");
  auto impl = std::make_unique<Impl>();
  impl->hmac = std::move(secret);
  impl->has_private = true;
  std::shared_ptr<Key> key(new Key(Alg::HS256, std::move(impl)));
  key->kid_ = std::move(kid);
  return key;
}

std::shared_ptr<const Key> Key::generate(Alg alg) {
  EVP_PKEY* raw = nullptr;
  switch (alg) {
    case Alg::HS256:
      return hs256(generate_secret_key());
    case Alg::RS256:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
      break;
    case Alg::ES256:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case Alg::EdDSA:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  if (raw == nullptr) fail("cannot generate an " + std::string(to_string(alg)) + " key");
  auto impl = std::make_unique<Impl>();
  impl->pkey.reset(raw);
  impl->has_private = true;
  return std::shared_ptr<const Key>(new Key(alg, std::move(impl)));
}

std::shared_ptr<const Key> Key::from_private_pem(Alg alg, std::string_view pem) {
  if (alg == Alg::HS256) throw std::invalid_argument("HS256 keys are secrets, not PEM");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail("out of memory");
  // A passphrase callback that refuses: an encrypted key is an error, never a prompt.
  auto no_passphrase = [](char*, int, int, void*) { return 0; };
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr);
  ERR_clear_error();
  if (raw == nullptr) {
    throw std::invalid_argument("not a PEM private key for " + std::string(to_string(alg)));
  }
  PkeyPtr pkey(raw);
  if (!matches(alg, pkey.get())) {
    throw std::invalid_argument("the private key is not a key for " + std::string(to_string(alg)));
  }
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  impl->has_private = true;
  return std::shared_ptr<const Key>(new Key(alg, std::move(impl)));
}

namespace {

std::string jwk_bytes(const boost::json::object& jwk, const char* member) {
  const auto* v = jwk.if_contains(member);
  if (v == nullptr || !v->is_string()) {
    throw std::invalid_argument(std::string("JWK member ") + member + " missing");
  }
  auto bytes = b64::decode_jose(v->get_string());
  if (!bytes || bytes->empty()) {
    throw std::invalid_argument(std::string("JWK member ") + member + " is not base64url");
  }
  return *bytes;
}

std::string_view jwk_string(const boost::json::object& jwk, const char* member) {
  const auto* v = jwk.if_contains(member);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

EVP_PKEY* public_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    pkey = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  ERR_clear_error();
  return pkey;
}

}  // namespace

std::shared_ptr<const Key> Key::from_public_jwk(const boost::json::object& jwk) {
  const auto kty = jwk_string(jwk, "kty");
  const auto crv = jwk_string(jwk, "crv");
  Alg alg = Alg::HS256;
  EVP_PKEY* raw = nullptr;
  if (kty == "RSA") {
    alg = Alg::RS256;
    const auto n = jwk_bytes(jwk, "n");
    const auto e = jwk_bytes(jwk, "e");
    BnPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                         static_cast<int>(n.size()), nullptr));
    BnPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                         static_cast<int>(e.size()), nullptr));
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    if (bld != nullptr && bn_n && bn_e &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n.get()) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e.get()) == 1) {
      raw = public_from_params("RSA", bld);
    }
    OSSL_PARAM_BLD_free(bld);
  } else if (kty == "EC" && crv == "P-256") {
    alg = Alg::ES256;
    const auto x = jwk_bytes(jwk, "x");
    const auto y = jwk_bytes(jwk, "y");
    if (x.size() != 32 || y.size() != 32) throw std::invalid_argument("P-256 x and y are 32 bytes");
    std::string point = "\x04" + x + y;  // an uncompressed point
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    char group[] = "prime256v1";
    if (bld != nullptr &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size()) == 1) {
      raw = public_from_params("EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
  } else if (kty == "OKP" && crv == "Ed25519") {
    alg = Alg::EdDSA;
    const auto x = jwk_bytes(jwk, "x");
    if (x.size() != 32) throw std::invalid_argument("Ed25519 x is 32 bytes");
    raw = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                      reinterpret_cast<const unsigned char*>(x.data()), x.size());
    ERR_clear_error();
  } else {
    throw std::invalid_argument("unsupported JWK (RSA, EC P-256 or OKP Ed25519 expected)");
  }
  if (raw == nullptr) throw std::invalid_argument("the JWK is not a valid public key");
  PkeyPtr pkey(raw);
  if (const auto named = jwk_string(jwk, "alg"); !named.empty() && named != to_string(alg)) {
    throw std::invalid_argument("the JWK's alg does not fit its key type");
  }
  if (!matches(alg, pkey.get())) throw std::invalid_argument("the JWK's key is too weak");
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  std::shared_ptr<Key> key(new Key(alg, std::move(impl)));
  if (const auto kid = jwk_string(jwk, "kid"); !kid.empty()) {
    key->kid_ = std::string(kid);
    key->jwk_["kid"] = key->kid_;
  }
  return key;
}

bool Key::can_sign() const noexcept { return impl_->has_private; }

std::string Key::sign(std::string_view input) const {
  if (impl_->hmac) {
    unsigned char out[32];
    impl_->hmac->sign(input, out);
    return std::string(reinterpret_cast<const char*>(out), sizeof out);
  }
  if (!impl_->has_private) fail("key " + kid_ + " cannot sign");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, digest_name(alg_), nullptr, nullptr,
                            impl_->pkey.get(), nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()) != 1) {
    fail("signing with key " + kid_ + " failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data,
                     input.size()) != 1) {
    fail("signing with key " + kid_ + " failed");
  }
  sig.resize(len);
  if (alg_ != Alg::ES256) return sig;
  // RFC 7518 §3.4: ES256 signatures are R || S, 32 bytes each, not DER.
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  if (ecdsa == nullptr) fail("signing with key " + kid_ + " failed");
  std::string rs(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(rs.data());
  const bool ok = BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), out, 32) == 32 &&
                  BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), out + 32, 32) == 32;
  ECDSA_SIG_free(ecdsa);
  if (!ok) fail("signing with key " + kid_ + " failed");
  return rs;
}

bool Key::verify(std::string_view input, std::string_view signature) const {
  if (impl_->hmac) {
    unsigned char expected[32];
    impl_->hmac->sign(input, expected);
    return signature.size() == sizeof expected &&
           CRYPTO_memcmp(signature.data(), expected, sizeof expected) == 0;
  }
  std::string der;
  if (alg_ == Alg::ES256) {
    if (signature.size() != 64) return false;
    ECDSA_SIG* ecdsa = ECDSA_SIG_new();
    const auto* s = reinterpret_cast<const unsigned char*>(signature.data());
    BIGNUM* r = BN_bin2bn(s, 32, nullptr);
    BIGNUM* ss = BN_bin2bn(s + 32, 32, nullptr);
    if (ecdsa == nullptr || r == nullptr || ss == nullptr || ECDSA_SIG_set0(ecdsa, r, ss) != 1) {
      BN_free(r);
      BN_free(ss);
      ECDSA_SIG_free(ecdsa);
      ERR_clear_error();
      return false;
    }
    unsigned char* buf = nullptr;
    const int n = i2d_ECDSA_SIG(ecdsa, &buf);
    ECDSA_SIG_free(ecdsa);
    if (n <= 0) {
      ERR_clear_error();
      return false;
    }
    der.assign(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
    OPENSSL_free(buf);
    signature = der;
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  const bool ok =
      ctx &&
      EVP_DigestVerifyInit_ex(ctx.get(), nullptr, digest_name(alg_), nullptr, nullptr,
                              impl_->pkey.get(), nullptr) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) == 1;
  ERR_clear_error();
  return ok;
}

std::string Key::private_pem() const {
  if (!impl_->pkey || !impl_->has_private) fail("key " + kid_ + " has no private PEM");
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    fail("cannot write key " + kid_);
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string Key::public_pem() const {
  if (!impl_->pkey) return {};
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), impl_->pkey.get()) != 1) {
    fail("cannot write key " + kid_);
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// ---- key sets -------------------------------------------------------------------------

const Key* KeySet::find(std::optional<std::string_view> kid, Alg alg,
                        std::int64_t now) const noexcept {
  const Key* fallback = nullptr;
  for (const auto& e : keys_) {
    if (e.verify_until && *e.verify_until < now) continue;
    if (kid && !e.key->kid().empty() && e.key->kid() == *kid) return e.key.get();
    if (e.key->kid().empty() && e.key->alg() == alg && fallback == nullptr) {
      fallback = e.key.get();
    }
  }
  return fallback;
}

boost::json::object KeySet::jwks(std::int64_t now) const {
  boost::json::array keys;
  for (const auto& e : keys_) {
    if (e.verify_until && *e.verify_until < now) continue;
    if (!e.key->public_jwk().empty()) keys.emplace_back(e.key->public_jwk());
  }
  return {{"keys", std::move(keys)}};
}

KeySet KeySet::from_jwks(const boost::json::object& jwks) {
  const auto* keys = jwks.if_contains("keys");
  if (keys == nullptr || !keys->is_array()) throw std::invalid_argument("not a JWK Set");
  std::vector<KeyEntry> entries;
  for (const auto& k : keys->get_array()) {
    if (!k.is_object()) throw std::invalid_argument("not a JWK Set");
    const auto& jwk = k.get_object();
    if (const auto* use = jwk.if_contains("use"); use != nullptr && *use != "sig") continue;
    const auto* kty = jwk.if_contains("kty");
    if (kty == nullptr || !kty->is_string() || (*kty != "RSA" && *kty != "EC" && *kty != "OKP")) {
      continue;
    }
    entries.push_back({Key::from_public_jwk(jwk), std::nullopt});
  }
  return KeySet(std::move(entries), nullptr);
}

std::shared_ptr<StaticKeys> StaticKeys::hs256(std::string secret) {
  return hs256(std::make_shared<const jwt::Hs256Key>(std::move(secret)));
}

std::shared_ptr<StaticKeys> StaticKeys::hs256(std::shared_ptr<const jwt::Hs256Key> secret) {
  auto key = Key::hs256(std::move(secret));
  return std::make_shared<StaticKeys>(KeySet({KeyEntry{key, std::nullopt}}, key));
}

// ---- the store's keys -------------------------------------------------------------------

StoreKeyRing::StoreKeyRing(std::shared_ptr<UserStore> store, Options options)
    : store_(std::move(store)), options_(std::move(options)) {
  if (!options_.clock) options_.clock = jwt::now_seconds;
  reload();
}

std::int64_t StoreKeyRing::now() const { return options_.clock(); }

void StoreKeyRing::reload() {
  std::lock_guard lock(reload_mutex_);
  reload_locked();
}

void StoreKeyRing::reload_locked() {
  // The marker is read before the keys, so a change made while they are read is seen
  // as a change on the next request.
  const auto marker = store_->change_marker();
  const auto rows = store_->signing_keys();
  const auto previous = std::atomic_load(&set_);
  std::vector<KeyEntry> entries;
  std::shared_ptr<const Key> signing;
  for (const auto& row : rows) {
    if (row.retired_at) continue;
    const auto alg = alg_from_string(row.alg);
    if (!alg || !is_asymmetric(*alg)) continue;
    std::shared_ptr<const Key> key;
    if (previous) {  // keys already parsed are kept, not parsed again
      for (const auto& e : previous->entries()) {
        if (e.key->kid() == row.kid && e.key->alg() == *alg) key = e.key;
      }
    }
    if (!key) {
      try {
        key = Key::from_private_pem(*alg, row.private_pem);
      } catch (const std::exception&) {
        default_logger()->event(
            LogLevel::warning, "signing_key_skipped",
            {{"message", "gatehouse: warning: signing key " + row.kid + " cannot be read; skipped"},
             {"kid", row.kid}});
        continue;
      }
      if (key->kid() != row.kid) {
        default_logger()->event(LogLevel::warning, "signing_key_skipped",
                                {{"message", "gatehouse: warning: signing key " + row.kid +
                                                 " does not match its kid; skipped"},
                                 {"kid", row.kid}});
        continue;
      }
    }
    std::optional<std::int64_t> until;
    // The last token a superseded key signed expires a lifetime after it was superseded;
    // a minute more covers instances that noticed the rotation a little late.
    if (row.superseded_at) until = *row.superseded_at + options_.token_lifetime_seconds + 60;
    if (row.current()) signing = key;
    entries.push_back({std::move(key), until});
  }
  std::atomic_store(&set_, std::make_shared<const KeySet>(std::move(entries), std::move(signing)));
  marker_.store(marker.value_or(0));
  loaded_at_ms_.store(steady_ms());
}

std::shared_ptr<const KeySet> StoreKeyRing::keys() {
  auto stale = [this](const std::optional<std::uint64_t>& marker) {
    return marker ? *marker != marker_.load()
                  : steady_ms() - loaded_at_ms_.load() >= options_.poll_interval.count();
  };
  if (stale(store_->change_marker())) {
    // One thread reloads; the others waiting here find the set fresh and go on, so a
    // stale set costs one store read, not one per thread.
    std::lock_guard lock(reload_mutex_);
    const auto marker = store_->change_marker();
    if (!stale(marker)) return std::atomic_load(&set_);
    try {
      reload_locked();
    } catch (const std::exception&) {
      // The store cannot answer now: go on with the keys we have, try again later.
      if (!std::atomic_load(&set_)) throw;
      if (marker) marker_.store(*marker);
      loaded_at_ms_.store(steady_ms());
    }
  }
  return std::atomic_load(&set_);
}

std::shared_ptr<const KeySet> StoreKeyRing::keys_after_miss() {
  const auto t = steady_ms();
  auto last = miss_reload_at_ms_.load();
  if (t - last >= 1000 && miss_reload_at_ms_.compare_exchange_strong(last, t)) {
    try {
      reload();  // takes the lock
    } catch (const std::exception&) {
    }
  }
  return keys();
}

void StoreKeyRing::ensure_signing_key(Alg alg) {
  if (!is_asymmetric(alg)) throw std::invalid_argument("the store keeps RS256/ES256/EdDSA keys");
  for (int attempt = 0; attempt < 5; ++attempt) {
    const auto rows = store_->signing_keys();
    const StoredKey* current = nullptr;
    for (const auto& r : rows) {
      if (r.current()) current = &r;
    }
    if (current != nullptr && current->alg == to_string(alg)) {
      reload();
      const auto set = std::atomic_load(&set_);
      if (set->signing_key() && set->signing_key()->kid() == current->kid) return;
    }
    const auto key = Key::generate(alg);
    StoredKey record{key->kid(), std::string(to_string(alg)), key->private_pem(), now(), {}, {}};
    store_->rotate_signing_key(record, current != nullptr ? std::string_view(current->kid) : "");
  }
  throw std::runtime_error("could not settle on a signing key (other processes keep rotating)");
}

std::shared_ptr<const Key> rotate_key(UserStore& store, Alg alg, std::int64_t now) {
  if (!is_asymmetric(alg)) {
    throw std::invalid_argument("key rotation needs RS256, ES256 or EdDSA (HS256 is SECRET_KEY)");
  }
  auto key = Key::generate(alg);
  StoredKey record{key->kid(), std::string(to_string(alg)), key->private_pem(), now, {}, {}};
  store.rotate_signing_key(record, std::nullopt);
  return key;
}

}  // namespace gatehouse
