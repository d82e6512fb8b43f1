// HS256 JSON Web Tokens (RFC 7519 / RFC 7515 compact form) on OpenSSL 3.
//
// Tokens are byte-compatible with python-jose, which FastAPI's tutorial uses: the
// header is {"alg":"HS256","typ":"JWT"}, the payload is serialised as Python's
// json.dumps(separators=(",", ":")) does (ASCII-only, \uXXXX escapes), and decoding
// accepts what jose accepts. The algorithm is pinned: the header's `alg` must be
// HS256, whatever else it says, before any signature is computed (RFC 8725 §3.1).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/storage_ptr.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/result.hpp"

namespace gatehouse::jwt {

// Why a token was refused. Every one of them answers 401 at the HTTP edge.
enum class Error {
  malformed,         // not three base64url segments
  bad_header,        // header is not a JSON object
  alg_not_allowed,   // alg missing or not HS256 (none, HS512, RS256, ...)
  bad_signature,     // HMAC does not match
  bad_payload,       // payload is not a JSON object
  expired,           // exp in the past
  not_yet_valid,     // nbf in the future
  bad_claim,         // exp/nbf/iat not an integer, sub/jti not a string
  audience_present,  // an aud claim, which gatehouse does not accept by default
};
std::string_view to_string(Error e) noexcept;

// An HMAC-SHA256 key, prepared once. The secret is held in memory only here.
class Hs256Key {
 public:
  explicit Hs256Key(std::string secret);
  ~Hs256Key();
  Hs256Key(const Hs256Key&) = delete;
  Hs256Key& operator=(const Hs256Key&) = delete;

  // HMAC-SHA256 of `data` into out (32 bytes).
  void sign(std::string_view data, unsigned char out[32]) const;

 private:
  std::string secret_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Encodes `claims` as a compact HS256 JWS.
std::string encode(const Hs256Key& key, const boost::json::object& claims);

// Verifies a compact JWS with the pinned algorithm and the registered claims jose
// checks by default: exp (not before now), nbf (not after now), iat (an integer),
// sub and jti (strings), and no aud. Returns the claims.
Result<boost::json::object, Error> decode(const Hs256Key& key, std::string_view token,
                                          std::int64_t now, boost::json::storage_ptr sp = {});

// What the tutorial's TokenData model keeps of the claims: `sub` and `scopes`
// (a list; strings, and numbers or booleans coerced to strings as pydantic v1 does).
struct TokenData {
  std::string username;
  std::vector<std::string> scopes;

  // Fails when sub is missing or scopes is present but not such a list.
  static Result<TokenData, Error> from_claims(const boost::json::object& claims);
};

// Seconds since the epoch, now.
std::int64_t now_seconds() noexcept;

// Python's json.dumps(value, separators=(",", ":")) with ensure_ascii, appended to out.
void dump_python_json(const boost::json::value& value, std::string& out);

}  // namespace gatehouse::jwt
