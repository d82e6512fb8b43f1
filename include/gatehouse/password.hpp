// Password hashing: argon2id (libargon2) for new hashes; bcrypt (libxcrypt's crypt_rn)
// and argon2id verified, so hashes made by passlib/bcrypt or pwdlib/argon2-cffi keep
// working unchanged. Every call here is CPU-heavy on purpose: call it from the worker
// pool (RouteOptions::offload), never from an I/O thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace gatehouse {

struct Argon2Params {
  // OWASP's recommendation for argon2id: 19 MiB, 2 passes, 1 lane.
  std::uint32_t memory_kib = 19 * 1024;
  std::uint32_t iterations = 2;
  std::uint32_t parallelism = 1;
};

class PasswordHasher {
 public:
  // Longer passwords, and passwords with a NUL byte, never match (passlib's limit).
  static constexpr std::size_t kMaxPasswordBytes = 4096;

  explicit PasswordHasher(Argon2Params params = {});

  // True when `password` matches `hash` ($2a$/$2b$/$2y$ bcrypt or $argon2id$).
  // Unknown hash formats and malformed hashes never match.
  [[nodiscard]] bool verify(std::string_view password, std::string_view hash) const;
  // True when `hash` should be replaced by hash(password) after a successful login:
  // bcrypt, or argon2id with other parameters than the configured ones.
  [[nodiscard]] bool needs_rehash(std::string_view hash) const;
  // A new argon2id hash in the PHC string format, with a random salt.
  [[nodiscard]] std::string hash(std::string_view password) const;
  // A new bcrypt ($2b$) hash of the given cost, for compatibility with passlib users.
  [[nodiscard]] static std::string hash_bcrypt(std::string_view password, int cost = 12);
  // Spends as long as verifying a real demo hash, so that a login for an unknown user
  // takes as long as one for a known user with a wrong password.
  void dummy_verify(std::string_view password) const;
  // After a failed check for a known user that began at `started`, sleeps until it has
  // taken as long as dummy_verify() takes, so a user whose hash is cheaper to check
  // (argon2id, a low bcrypt cost) is not told apart from an unknown one by timing.
  void equalize_failure(std::chrono::steady_clock::time_point started) const;
  // Sets the hash dummy_verify() checks against (e.g. one of the store's own hashes).
  void set_dummy_hash(std::string hash) { dummy_hash_ = std::move(hash); }

  [[nodiscard]] const Argon2Params& params() const noexcept { return params_; }

 private:
  Argon2Params params_;
  std::string dummy_hash_;
  mutable std::atomic<std::int64_t> dummy_ns_{0};  // the last dummy_verify's duration
};

}  // namespace gatehouse
