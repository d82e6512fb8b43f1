// Signing keys: what signs gatehouse's tokens and what verifies them.
//
// A Key is bound to one algorithm when it is made (RFC 8725 §3.1): an RS256 key never
// verifies an HS256 token, whatever the token's header says. HS256 keys are shared
// secrets (the FastAPI-compatible default, SECRET_KEY); RS256, ES256 and EdDSA
// (Ed25519) keys are OpenSSL 3 EVP_PKEYs whose public halves are published as a JWK Set.
// The kid of an asymmetric key is its RFC 7638 JWK thumbprint (SHA-256, base64url).
//
// A KeySource hands out the current KeySet (the key that signs and the keys that
// verify). StaticKeys is a fixed set; StoreKeyRing keeps the store's keys and follows
// `gatehouse key rotate|retire` made by any process.
#pragma once

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse {

class UserStore;
namespace jwt {
class Hs256Key;
}

// A key or data file that belongs to another user or is open to group or others.
struct UnsafeFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The HS256 secret kept in `dir`/secret_key: read if present, otherwise 32 random
// bytes (hex) are written to a temporary file (0600, synced), published under that name
// with link() (never replacing a key another process published first), the directory
// synced, and the key read back. Throws UnsafeFileError when the file is not this
// user's or is open to group or others, std::runtime_error on I/O errors.
std::string load_or_create_secret_key(const std::filesystem::path& dir);

// Throws UnsafeFileError unless `fd` (opened from `file`) is a regular file owned by this
// process's effective user with no permission bits for group or others.
void require_private_file(int fd, const std::filesystem::path& file);

// 32 random bytes as 64 hex characters: a new HS256 secret.
std::string generate_secret_key();

// Creates `dir` and every missing parent with mode 0700, whatever the umask.
void ensure_private_dir(const std::filesystem::path& dir);

// The JWS algorithms gatehouse signs and verifies with (RFC 7518 §3.1, RFC 8037).
enum class Alg { HS256, RS256, ES256, EdDSA };
// "HS256", "RS256", "ES256", "EdDSA": the JOSE names.
std::string_view to_string(Alg alg) noexcept;
// The JOSE name, exactly (case matters, as in a token header); nullopt for any other.
std::optional<Alg> alg_from_string(std::string_view name) noexcept;
// True for the algorithms whose public keys can be published (all but HS256).
constexpr bool is_asymmetric(Alg alg) noexcept { return alg != Alg::HS256; }

// One key, bound to one algorithm. Immutable and safe to share between threads.
// Private material is never part of an error message or of anything this class logs.
class Key {
 public:
  // An HS256 shared secret. `kid` may be empty: a key without kid verifies tokens
  // whatever kid they name (python-jose ignores kid, and so must the default).
  static std::shared_ptr<const Key> hs256(std::string secret, std::string kid = {});
  // The same, around an HMAC key already prepared (jwt.hpp).
  static std::shared_ptr<const Key> hs256(std::shared_ptr<const jwt::Hs256Key> secret,
                                          std::string kid = {});
  // A new random key (RSA 2048, P-256 or Ed25519); kid = its JWK thumbprint.
  static std::shared_ptr<const Key> generate(Alg alg);
  // A private key from PKCS#8 PEM (as private_pem() writes it). Throws
  // std::invalid_argument, without quoting the PEM, if it is not a key for `alg`.
  static std::shared_ptr<const Key> from_private_pem(Alg alg, std::string_view pem);
  // A verify-only key from a public JWK (RFC 7517/7518/8037): kty RSA (2048 bits or
  // more), EC with crv P-256, or OKP with crv Ed25519. The algorithm is the JWK's `alg`
  // when given (it must fit the key type), else the one its key type implies; the kid
  // is the JWK's, else its thumbprint. Throws std::invalid_argument otherwise.
  static std::shared_ptr<const Key> from_public_jwk(const boost::json::object& jwk);

  ~Key();
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;

  [[nodiscard]] Alg alg() const noexcept { return alg_; }
  [[nodiscard]] const std::string& kid() const noexcept { return kid_; }
  [[nodiscard]] bool can_sign() const noexcept;

  // The JWS signature of `signing_input` (for ES256 the 64-byte r||s of RFC 7518 §3.4).
  // Throws std::runtime_error when the key cannot sign.
  [[nodiscard]] std::string sign(std::string_view signing_input) const;
  // Checks a JWS signature in constant time (HS256) or with the public key.
  [[nodiscard]] bool verify(std::string_view signing_input, std::string_view signature) const;

  // The public JWK: kty, crv/n/e/x/y, kid, alg, use "sig". Empty for HS256.
  [[nodiscard]] const boost::json::object& public_jwk() const noexcept { return jwk_; }
  // The private key as PKCS#8 PEM, for the store only. Throws for HS256 and
  // verify-only keys.
  [[nodiscard]] std::string private_pem() const;
  // The public key as SubjectPublicKeyInfo PEM (empty for HS256).
  [[nodiscard]] std::string public_pem() const;

  struct Impl;

 private:
  Key(Alg alg, std::unique_ptr<Impl> impl);
  Alg alg_;
  std::string kid_;
  boost::json::object jwk_;
  std::unique_ptr<Impl> impl_;
};

// A key as the current set holds it: the instant after which it no longer verifies
// (a superseded key verifies until the last token it signed has expired).
struct KeyEntry {
  std::shared_ptr<const Key> key;
  std::optional<std::int64_t> verify_until;  // seconds since the epoch; none: no limit
};

// The keys in force at one moment: at most one that signs, any number that verify.
class KeySet {
 public:
  KeySet() = default;
  KeySet(std::vector<KeyEntry> keys, std::shared_ptr<const Key> signing)
      : keys_(std::move(keys)), signing_(std::move(signing)) {}

  // The key new tokens are signed with, or nullptr.
  [[nodiscard]] const std::shared_ptr<const Key>& signing_key() const noexcept { return signing_; }
  // The key that verifies a token with this kid (nullopt: the header had none) and
  // alg at `now`: the key with that kid; else a key without kid for that alg (the
  // FastAPI default, which ignores kid). nullptr when none. The caller checks that
  // the key's alg is the token's: keys are bound to one algorithm.
  [[nodiscard]] const Key* find(std::optional<std::string_view> kid, Alg alg,
                                std::int64_t now) const noexcept;
  // The public keys that verify at `now`, as a JWK Set (RFC 7517 §5): {"keys":[...]}.
  [[nodiscard]] boost::json::object jwks(std::int64_t now) const;
  // Verify-only keys from a JWK Set such as /.well-known/jwks.json (how a resource
  // server written with gatehouse checks tokens from another gatehouse). Keys whose
  // `use` is not "sig" or whose type it does not know are skipped; a malformed set
  // throws std::invalid_argument.
  [[nodiscard]] static KeySet from_jwks(const boost::json::object& jwks);
  [[nodiscard]] const std::vector<KeyEntry>& entries() const noexcept { return keys_; }

 private:
  std::vector<KeyEntry> keys_;
  std::shared_ptr<const Key> signing_;
};

// Where the verifier and the token issuer get their keys. keys() is called on every
// request, so it must be cheap; implementations are thread-safe.
class KeySource {
 public:
  virtual ~KeySource() = default;
  [[nodiscard]] virtual std::shared_ptr<const KeySet> keys() = 0;
  // Called when a token names a kid the current set does not have: a source that can
  // reload (a new key made by another instance) may do so, rate-limited. Default: keys().
  [[nodiscard]] virtual std::shared_ptr<const KeySet> keys_after_miss() { return keys(); }
};

// A fixed set of keys.
class StaticKeys final : public KeySource {
 public:
  explicit StaticKeys(KeySet set) : set_(std::make_shared<const KeySet>(std::move(set))) {}
  // The FastAPI default: one HS256 secret without kid that signs and verifies.
  static std::shared_ptr<StaticKeys> hs256(std::string secret);
  static std::shared_ptr<StaticKeys> hs256(std::shared_ptr<const jwt::Hs256Key> secret);
  [[nodiscard]] std::shared_ptr<const KeySet> keys() override { return set_; }

 private:
  std::shared_ptr<const KeySet> set_;
};

// A signing key as the store keeps it.
struct StoredKey {
  std::string kid;
  std::string alg;          // "RS256", "ES256", "EdDSA"
  std::string private_pem;  // PKCS#8; never logged, never shown
  std::int64_t created_at = 0;
  std::optional<std::int64_t> superseded_at;  // when another key took over signing
  std::optional<std::int64_t> retired_at;     // refused from then on
  [[nodiscard]] bool current() const noexcept { return !superseded_at && !retired_at; }
};

// The store's signing keys, kept current: the current key signs; a superseded key
// verifies until `token_lifetime` (plus a minute) after it was superseded; a retired
// key verifies nothing. A change made by any process (`gatehouse key rotate`, another
// instance) is seen on the next request when the store can tell that something
// changed (SQLite), otherwise within `poll_interval` (PostgreSQL), and at once on
// reload() (SIGHUP) and when a token names an unknown kid (at most once a second).
class StoreKeyRing final : public KeySource {
 public:
  struct Options {
    std::int64_t token_lifetime_seconds = 1800;
    std::chrono::milliseconds poll_interval{1000};
    std::function<std::int64_t()> clock;  // seconds since the epoch; default: system clock
  };
  StoreKeyRing(std::shared_ptr<UserStore> store, Options options);

  // Makes sure the store's current key is an `alg` key, making one (and superseding
  // the old) if not. Safe when several instances start at once: one key wins.
  void ensure_signing_key(Alg alg);
  // Reads the keys from the store now.
  void reload();

  [[nodiscard]] std::shared_ptr<const KeySet> keys() override;
  [[nodiscard]] std::shared_ptr<const KeySet> keys_after_miss() override;

 private:
  [[nodiscard]] std::int64_t now() const;
  void reload_locked();  // with reload_mutex_ held
  std::shared_ptr<UserStore> store_;
  Options options_;
  std::mutex reload_mutex_;
  std::shared_ptr<const KeySet> set_;  // read and written with std::atomic_load/store
  std::atomic<std::uint64_t> marker_{0};
  std::atomic<std::int64_t> loaded_at_ms_{0};  // steady clock
  std::atomic<std::int64_t> miss_reload_at_ms_{0};
};

// Makes a key of `alg` and makes it the store's signing key (`gatehouse key rotate`).
// Returns it. The previous key verifies until its tokens have expired.
std::shared_ptr<const Key> rotate_key(UserStore& store, Alg alg, std::int64_t now);

}  // namespace gatehouse
