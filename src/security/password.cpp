// Password hashing on libargon2 and libxcrypt. See password.hpp.
#include "gatehouse/password.hpp"

#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/mman.h>

#include <charconv>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace gatehouse {

namespace {

// bcrypt-12 of a random string nobody knows: what an unknown user's login verifies.
constexpr const char* kDefaultDummyHash =
    "$2b$12$fPPwcfI1oxs0g/MZ6Av5pO28dfMIkrNvwXcN3CWzdPKzH2RB9zXNu";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool is_bcrypt(std::string_view hash) {
  return starts_with(hash, "$2a$") || starts_with(hash, "$2b$") || starts_with(hash, "$2y$");
}

bool acceptable_password(std::string_view password) {
  // passlib refuses a NUL byte and passwords over 4096 bytes; here they simply never
  // match (and crypt() could not see past a NUL anyway).
  return password.size() <= PasswordHasher::kMaxPasswordBytes &&
         password.find('\0') == std::string_view::npos;
}

bool verify_bcrypt(std::string_view password, std::string_view hash) {
  // crypt_rn needs C strings and a large scratch area: one per thread.
  thread_local std::unique_ptr<crypt_data> data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  // bcrypt reads at most 72 bytes of a password; libxcrypt refuses phrases over 512
  // bytes outright, so pass only what bcrypt would read (what passlib/bcrypt check).
  std::string phrase(password.substr(0, 72));
  std::string setting(hash);
  const char* out = crypt_rn(phrase.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  OPENSSL_cleanse(phrase.data(), phrase.size());
  bool ok = out != nullptr && out[0] != '*' && std::strlen(out) == hash.size() &&
            CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return ok;
}

bool verify_argon2(std::string_view password, std::string_view hash) {
  argon2_type type = Argon2_id;
  if (starts_with(hash, "$argon2id$")) {
    type = Argon2_id;
  } else if (starts_with(hash, "$argon2i$")) {
    type = Argon2_i;
  } else if (starts_with(hash, "$argon2d$")) {
    type = Argon2_d;
  } else {
    return false;
  }
  std::string encoded(hash);
  return argon2_verify(encoded.c_str(), password.data(), password.size(), type) == ARGON2_OK;
}

// Reads "m=...,t=...,p=..." out of an argon2 PHC string.
bool argon2_params_of(std::string_view hash, Argon2Params& out) {
  auto pos = hash.find("$m=");
  if (pos == std::string_view::npos) return false;
  auto rest = hash.substr(pos + 1);
  rest = rest.substr(0, rest.find('$'));
  std::uint32_t m = 0, t = 0, p = 0;
  for (std::size_t start = 0; start < rest.size();) {
    auto comma = rest.find(',', start);
    auto item = rest.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.size() > 2 && item[1] == '=') {
      std::uint32_t v = 0;
      std::from_chars(item.data() + 2, item.data() + item.size(), v);
      if (item[0] == 'm') m = v;
      if (item[0] == 't') t = v;
      if (item[0] == 'p') p = v;
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  out = Argon2Params{m, t, p};
  return m != 0 && t != 0 && p != 0;
}

}  // namespace

PasswordHasher::PasswordHasher(Argon2Params params)
    : params_(params), dummy_hash_(kDefaultDummyHash) {}

bool PasswordHasher::verify(std::string_view password, std::string_view hash) const {
  if (!acceptable_password(password)) return false;
  if (is_bcrypt(hash)) return verify_bcrypt(password, hash);
  if (starts_with(hash, "$argon2")) return verify_argon2(password, hash);
  return false;
}

bool PasswordHasher::needs_rehash(std::string_view hash) const {
  if (!starts_with(hash, "$argon2id$")) return false;  // bcrypt is kept: see DECISIONS.md
  Argon2Params current;
  if (!argon2_params_of(hash, current)) return true;
  return current.memory_kib != params_.memory_kib || current.iterations != params_.iterations ||
         current.parallelism != params_.parallelism;
}

std::string PasswordHasher::hash(std::string_view password) const {
  unsigned char salt[16];
  if (RAND_bytes(salt, sizeof salt) != 1) throw std::runtime_error("no randomness for a salt");
  constexpr std::size_t kHashLen = 32;
  std::size_t len = argon2_encodedlen(params_.iterations, params_.memory_kib, params_.parallelism,
                                      sizeof salt, kHashLen, Argon2_id);
  std::vector<char> encoded(len);
  int rc = argon2id_hash_encoded(params_.iterations, params_.memory_kib, params_.parallelism,
                                 password.data(), password.size(), salt, sizeof salt, kHashLen,
                                 encoded.data(), encoded.size());
  if (rc != ARGON2_OK) throw std::runtime_error(std::string("argon2: ") + argon2_error_message(rc));
  return std::string(encoded.data());
}

std::string PasswordHasher::hash_bcrypt(std::string_view password, int cost) {
  if (!acceptable_password(password))
    throw std::invalid_argument("password cannot be hashed with bcrypt");
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0, setting,
                       sizeof setting) == nullptr) {
    throw std::runtime_error("crypt_gensalt_rn failed");
  }
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  std::string phrase(password.substr(0, 72));
  const char* out = crypt_rn(phrase.c_str(), setting, data.get(), sizeof(crypt_data));
  OPENSSL_cleanse(phrase.data(), phrase.size());
  if (out == nullptr || out[0] == '*') throw std::runtime_error("bcrypt failed");
  return out;
}

void PasswordHasher::dummy_verify(std::string_view password) const {
  // Refused as fast as verify() refuses it for a real user (the floor covers both).
  if (!acceptable_password(password)) return;
  (void)verify(password, dummy_hash_);
}

std::string PasswordHasher::cost_key(std::string_view hash) {
  if (is_bcrypt(hash)) {
    if (hash.size() < 7 || hash[6] != '$') return {};
    return "bcrypt$" + std::string(hash.substr(4, 2));
  }
  for (std::string_view type : {"argon2id", "argon2i", "argon2d"}) {
    if (hash.size() <= type.size() + 1 || hash[0] != '$' || hash.substr(1, type.size()) != type ||
        hash[type.size() + 1] != '$') {
      continue;
    }
    Argon2Params p;
    if (!argon2_params_of(hash, p)) return {};
    return std::string(type) + "$m=" + std::to_string(p.memory_kib) +
           ",t=" + std::to_string(p.iterations) + ",p=" + std::to_string(p.parallelism);
  }
  return {};
}

std::chrono::nanoseconds PasswordHasher::measure(const std::string& key) const {
  // Making a hash with a cost's parameters costs what verifying one does.
  const auto start = std::chrono::steady_clock::now();
  if (starts_with(key, "bcrypt$")) {
    int cost = 0;
    std::from_chars(key.data() + 7, key.data() + key.size(), cost);
    // bcrypt-17 and up take seconds to minutes; such a hash is not timed (a login with
    // it would show its own cost anyway, and note_verify() then raises the floor).
    if (cost < 4 || cost > 16) return std::chrono::nanoseconds(0);
    // A salt setting verified as if it were a hash: crypt_rn does the whole work, in
    // the thread's own scratch area (verify_bcrypt's), so nothing is allocated.
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0, setting,
                         sizeof setting) == nullptr) {
      return std::chrono::nanoseconds(0);
    }
    (void)verify_bcrypt("gatehouse calibration", setting);
  } else {
    Argon2Params p;
    const auto dollar = key.find('$');
    std::string phc = "$";
    phc += key;
    phc += '$';
    if (dollar == std::string::npos || !argon2_params_of(phc, p)) {
      return std::chrono::nanoseconds(0);
    }
    const std::string type = key.substr(0, dollar);
    const argon2_type t = type == "argon2i" ? Argon2_i : type == "argon2d" ? Argon2_d : Argon2_id;
    unsigned char salt[16] = {};
    unsigned char out[32];
    unsigned char password[] = "gatehouse calibration";
    argon2_context ctx{};
    ctx.out = out;
    ctx.outlen = sizeof out;
    ctx.pwd = password;
    ctx.pwdlen = sizeof password - 1;
    ctx.salt = salt;
    ctx.saltlen = sizeof salt;
    ctx.t_cost = p.iterations;
    ctx.m_cost = p.memory_kib;
    ctx.lanes = p.parallelism;
    ctx.threads = p.parallelism;
    ctx.version = ARGON2_VERSION_13;
    // The memory comes straight from mmap, not malloc: a one-off allocation of the
    // configured size (19 MiB by default) would raise glibc's dynamic mmap threshold
    // and leave later large buffers in the heap arenas.
    ctx.allocate_cbk = [](std::uint8_t** memory, std::size_t bytes) -> int {
      void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) return ARGON2_MEMORY_ALLOCATION_ERROR;
      *memory = static_cast<std::uint8_t*>(m);
      return ARGON2_OK;
    };
    ctx.free_cbk = [](std::uint8_t* memory, std::size_t bytes) { ::munmap(memory, bytes); };
    ctx.flags = ARGON2_DEFAULT_FLAGS;
    if (argon2_ctx(&ctx, t) != ARGON2_OK) return std::chrono::nanoseconds(0);
  }
  return std::chrono::steady_clock::now() - start;
}

void PasswordHasher::raise_floor(std::chrono::nanoseconds cost) const {
  const auto want = static_cast<std::int64_t>(static_cast<double>(cost.count()) * kFloorMargin);
  auto current = floor_ns_.load(std::memory_order_relaxed);
  while (want > current && !floor_ns_.compare_exchange_weak(current, want)) {
  }
}

void PasswordHasher::calibrate(const std::vector<std::string>& hashes) const {
  std::set<std::string> keys;
  keys.insert(cost_key(dummy_hash_));
  keys.insert("argon2id$m=" + std::to_string(params_.memory_kib) + ",t=" +
              std::to_string(params_.iterations) + ",p=" + std::to_string(params_.parallelism));
  for (const auto& h : hashes) {
    if (auto k = cost_key(h); !k.empty()) keys.insert(std::move(k));
  }
  std::lock_guard lock(costs_mutex_);
  for (const auto& key : keys) {
    if (key.empty() || timed_.count(key) != 0 || timed_.size() >= kMaxCostKeys) continue;
    timed_.insert(key);
    raise_floor(measure(key));
  }
}

void PasswordHasher::note_verify(std::string_view password, std::string_view hash,
                                 std::chrono::nanoseconds took) const {
  if (!acceptable_password(password)) return;  // nothing was hashed: no cost learnt
  std::string key = cost_key(hash);
  if (key.empty()) return;
  std::lock_guard lock(costs_mutex_);
  if (timed_.count(key) != 0) return;
  if (timed_.size() < kMaxCostKeys) timed_.insert(std::move(key));
  raise_floor(took);
}

void PasswordHasher::equalize_failure(std::chrono::steady_clock::time_point started) const {
  if (floor_ns_.load(std::memory_order_relaxed) == 0) calibrate({});
  std::this_thread::sleep_until(failure_deadline(started));
}

}  // namespace gatehouse
