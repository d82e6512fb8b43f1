// Password hashing: argon2id (libargon2) for new hashes; bcrypt (libxcrypt's crypt_rn)
// and argon2id verified, so hashes made by passlib/bcrypt or pwdlib/argon2-cffi keep
// working unchanged. Every call here is CPU-heavy on purpose: call it from the worker
// pool (RouteOptions::offload), never from an I/O thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

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
  // Spends as long as verifying a bcrypt-12 hash (or set_dummy_hash's), so that the
  // work done for an unknown user is that done for a known one.
  void dummy_verify(std::string_view password) const;
  // Sets the hash dummy_verify() checks against (e.g. one of the store's own hashes).
  void set_dummy_hash(std::string hash) { dummy_hash_ = std::move(hash); }

  // ---- failure timing ----
  // A failed login must take as long whoever the user is and whatever the password:
  // it is answered no sooner than failure_floor() after it started. The floor is the
  // costliest verification the store can require, measured, times kFloorMargin: each
  // hash parameter set (bcrypt cost, argon2 type/m/t/p) is timed once, by calibrate()
  // for the hashes it is given and by note_verify() for one first seen at a login.
  static constexpr double kFloorMargin = 1.5;
  // Times the dummy hash, the configured argon2id parameters and every parameter set
  // among `hashes` not timed yet, and raises the floor to cover them.
  void calibrate(const std::vector<std::string>& hashes) const;
  // Records that verify(password, hash) took `took`; a parameter set not seen before
  // raises the floor (an observed cost: load may inflate it, never lower it). Ignored
  // for a password verify() refuses without hashing (NUL byte, over 4096 bytes).
  void note_verify(std::string_view password, std::string_view hash,
                   std::chrono::nanoseconds took) const;
  [[nodiscard]] std::chrono::nanoseconds failure_floor() const noexcept {
    return std::chrono::nanoseconds(floor_ns_.load(std::memory_order_relaxed));
  }
  // When a failed login that began at `started` may be answered.
  [[nodiscard]] std::chrono::steady_clock::time_point failure_deadline(
      std::chrono::steady_clock::time_point started) const noexcept {
    return started + failure_floor();
  }
  // Blocks until failure_deadline(started): for callers that answer on the thread
  // that hashed. A server should rather hold the answer (RequestContext::
  // respond_not_before) and free the thread.
  void equalize_failure(std::chrono::steady_clock::time_point started) const;
  // The key under which a hash's cost is remembered: "bcrypt$12", "argon2id$m=..,t=..,p=..";
  // empty for a format verify() never accepts.
  [[nodiscard]] static std::string cost_key(std::string_view hash);

  [[nodiscard]] const Argon2Params& params() const noexcept { return params_; }

 private:
  Argon2Params params_;
  std::string dummy_hash_;
  // Time to verify one hash of the given cost key (a hash is made to time it).
  [[nodiscard]] std::chrono::nanoseconds measure(const std::string& key) const;
  void raise_floor(std::chrono::nanoseconds cost) const;

  mutable std::atomic<std::int64_t> floor_ns_{0};
  mutable std::mutex costs_mutex_;
  mutable std::set<std::string> timed_;  // cost keys already measured (at most kMaxCostKeys)
  static constexpr std::size_t kMaxCostKeys = 64;
};

}  // namespace gatehouse
