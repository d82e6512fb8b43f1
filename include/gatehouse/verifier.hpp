// Access-token verification as one configured object, and the one mapping of its
// failures to FastAPI's answers.
//
// A Verifier is configured once (the allowed algorithms, the keys by kid, the issuer,
// the audience, a leeway and a clock) and used for every request. verify() runs the
// checks in a fixed order and ends in a value or one Failure:
//
//   1. split the compact JWS (three base64url segments)         malformed
//   2. the header is a JSON object (without crit, if so configured) bad_header
//   3. its alg is one of the allowed algorithms                 alg_not_allowed
//      (checked before any cryptography: the token never picks the algorithm)
//   4. a key for its kid (a kid-less key for that alg: the FastAPI default)
//                                                               unknown_key
//   5. that key is bound to the same alg                        alg_not_allowed
//   6. typ is at+jwt, when the RFC 9068 profile asks for it     wrong_type
//   7. the signature                                            bad_signature
//   8. the payload is a JSON object                             bad_payload
//   9. iat/nbf/exp as python-jose reads them (± leeway)         bad_claim, not_yet_valid,
//                                                               expired
//  10. aud: refused when no audience is configured (jose),      audience_present,
//      must name the audience otherwise                         wrong_audience
//  11. iss equals the issuer, when one is configured            wrong_issuer
//  12. sub a string (required), jti a string, no at_hash,
//      scopes a list of strings (pydantic v1's coercion)        bad_claim
//  13. not on the revocation list, when one is configured      revoked
//
// Strict options (gatehouse serve --strict) drop python-jose's leniencies: every
// segment canonical base64url (malformed), exp required and exp/nbf/iat JSON numbers,
// scopes strings only (bad_claim).
//
// Scopes required by a route are checked by check_scopes(); the user behind `sub` by
// the caller (see auth.hpp for ready dependencies). to_http_exception() turns any
// Failure into exactly what FastAPI's tutorial answers.
#pragma once

#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/http.hpp"
#include "gatehouse/keys.hpp"
#include "gatehouse/result.hpp"
#include "gatehouse/security.hpp"

namespace gatehouse {

// Why a request was not authorized. Closed: every check ends in one of these.
enum class Failure {
  // The token itself (each answers 401 "Could not validate credentials").
  malformed,         // not three base64url segments
  bad_header,        // the header is not a JSON object
  alg_not_allowed,   // alg not allowed, or not the alg of the key it names
  unknown_key,       // no key with that kid (or a retired or expired one)
  wrong_type,        // typ is not at+jwt although the RFC 9068 profile requires it
  bad_signature,     // the signature does not verify
  bad_payload,       // the payload is not a JSON object
  expired,           // exp in the past
  not_yet_valid,     // nbf in the future
  bad_claim,         // exp/nbf/iat not integers, sub missing or not a string, ...
  audience_present,  // an aud claim while no audience is configured
  wrong_audience,    // aud missing or not naming the configured audience
  wrong_issuer,      // iss missing or not the configured issuer
  revoked,           // on the revocation list (RFC 7009): refused like a bad token
  // After the token.
  not_authenticated,  // no bearer token (401 "Not authenticated")
  unknown_user,       // sub names no user (401 "Could not validate credentials")
  missing_scope,      // a required scope is not in the token (401 "Not enough permissions")
  inactive_user,      // the user is disabled (400 "Inactive user")
};
// A short English name for logs ("token expired"); never any part of the token.
std::string_view to_string(Failure f) noexcept;

// FastAPI's answer to `f` where the dependency chain required `scopes`: 401 with
// `WWW-Authenticate: Bearer scope="..."` (or `Bearer` without scopes) and the
// tutorial's detail text, or 400 "Inactive user" without a challenge.
HttpException to_http_exception(Failure f, const SecurityScopes& scopes);

// What a verified token says.
struct VerifiedToken {
  std::string subject;              // sub
  std::vector<std::string> scopes;  // `scopes` (a list), or the RFC 9068 `scope` string split
  boost::json::object claims;       // every claim as sent
  Alg alg = Alg::HS256;             // the algorithm it was verified with
  std::string kid;                  // the kid of the key that verified it ("" for none)
  // The signed part, header.payload, exactly as received. The signature covers these
  // bytes, so they identify the token however its signature is spelled: base64 is
  // decoded leniently, and an ECDSA signature (r, s) also verifies as (r, n - s).
  // The deny-list keys on it (a token without jti is still found).
  std::string signing_input;

  [[nodiscard]] bool has_scope(std::string_view scope) const noexcept;
};

// Access tokens revoked before they expire; DenyList (lifecycle.hpp) is one. Called
// on every verification of a token that passed every other check, so it must be cheap.
class RevocationList {
 public:
  virtual ~RevocationList() = default;
  [[nodiscard]] virtual bool revoked(const VerifiedToken& token) const = 0;
};

struct VerifierOptions {
  // The algorithms a token may use; anything else is refused before any cryptography.
  std::vector<Alg> algorithms{Alg::HS256};
  // When set, `iss` must equal it.
  std::optional<std::string> issuer;
  // When set, `aud` (a string or a list) must name it; when unset a token with any
  // `aud` is refused, as python-jose does.
  std::optional<std::string> audience;
  // RFC 9068 §4: the header's typ must be at+jwt (or application/at+jwt), and a token
  // without a `scopes` list may carry its scopes as a `scope` string.
  bool rfc9068 = false;
  // RFC 7515 §4.1.11: refuse (bad_header) a token whose header has `crit`, since
  // gatehouse understands no extension. Off by default: python-jose ignores crit.
  bool reject_crit = false;
  // RFC 4648 §3.5 / RFC 7515 §2: each segment must be canonical base64url (only its
  // alphabet, no padding, unused bits zero); otherwise malformed. Off by default:
  // python-jose skips stray characters and ignores the unused bits.
  bool canonical_base64 = false;
  // RFC 7519 instead of python-jose's reading: `exp` is required, exp/nbf/iat must be
  // JSON numbers (Python's int() also takes "123" and true), and `scopes` entries must
  // be strings (pydantic v1 turns 1 into "1"). Otherwise bad_claim.
  bool strict_claims = false;
  // When set, a token it holds fails with Failure::revoked, wherever the verifier is
  // used (bearer_claims, current_user, introspection).
  std::shared_ptr<const RevocationList> revocations;
  // Seconds of clock skew allowed for exp and nbf.
  std::int64_t leeway_seconds = 0;
  // Tokens verify_shared() remembers (0: none), as an API gateway's JWT cache does: a
  // token seen before, byte for byte, skips its base64, its JSON and its signature. What
  // can change while the bytes do not is checked again on every call: that the key set
  // is the one that verified it and the key still verifies at this time (a rotated,
  // retired or expired key is not trusted from the cache), exp/nbf against the clock,
  // and the revocation list. Only verified tokens are remembered, at most
  // `cache_entries` of them (each a slot that the next token hashing to it replaces),
  // and none longer than 4 KiB.
  std::size_t cache_entries = 1024;
  // Seconds since the epoch; default: the system clock.
  std::function<std::int64_t()> clock;
};

class Verifier {
 public:
  Verifier(VerifierOptions options, std::shared_ptr<KeySource> keys);

  // The FastAPI default: HS256 with this secret, no issuer, no audience.
  static std::shared_ptr<const Verifier> hs256(std::string secret);

  [[nodiscard]] Result<VerifiedToken, Failure> verify(std::string_view token) const;
  // verify(), with the answer shared instead of copied, and remembered: see
  // VerifierOptions::cache_entries. The same checks give the same Failure.
  [[nodiscard]] Result<std::shared_ptr<const VerifiedToken>, Failure> verify_shared(
      std::string_view token) const;

  // missing_scope when `token` lacks one of `required`, in the order required.
  [[nodiscard]] static std::optional<Failure> check_scopes(const VerifiedToken& token,
                                                           const SecurityScopes& required);

  [[nodiscard]] const VerifierOptions& options() const noexcept { return options_; }
  [[nodiscard]] const std::shared_ptr<KeySource>& key_source() const noexcept { return keys_; }
  [[nodiscard]] std::int64_t now() const { return options_.clock(); }

 private:
  // What verified a token: the key set and the key in it, and the header's kid.
  struct Provenance {
    std::shared_ptr<const KeySet> keys;
    const Key* key = nullptr;
    std::optional<std::string> header_kid;
  };
  [[nodiscard]] Result<VerifiedToken, Failure> verify_impl(std::string_view token,
                                                           Provenance* provenance) const;
  struct Cache;

  VerifierOptions options_;
  std::shared_ptr<KeySource> keys_;
  std::shared_ptr<Cache> cache_;  // null when options_.cache_entries is 0
};

// Makes access tokens with the key source's signing key.
//
// By default exactly the FastAPI tutorial's tokens: header {"alg":"HS256","typ":"JWT"}
// (a kid-less key), the given claims followed by exp, serialised as python-jose does.
// A key with a kid puts it in the header. With an issuer or an audience, the RFC 9068
// profile: typ at+jwt, and iss, aud, iat, jti, client_id (when given) and scope (the
// `scopes` list joined by spaces) are added.
struct TokenIssuerOptions {
  std::int64_t lifetime_seconds = 1800;
  std::optional<std::string> issuer;
  std::optional<std::string> audience;
  std::function<std::int64_t()> clock;  // default: the system clock
};

class TokenIssuer {
 public:
  TokenIssuer(TokenIssuerOptions options, std::shared_ptr<KeySource> keys);

  // Signs `claims` (e.g. sub and scopes) with exp added. Throws std::runtime_error
  // when there is no signing key.
  [[nodiscard]] std::string issue(boost::json::object claims,
                                  const std::optional<std::string>& client_id = {}) const;

  [[nodiscard]] bool rfc9068() const noexcept { return options_.issuer || options_.audience; }
  [[nodiscard]] const TokenIssuerOptions& options() const noexcept { return options_; }
  // The algorithm issue() signs with now (nullopt: no signing key).
  [[nodiscard]] std::optional<Alg> signing_alg() const;

 private:
  TokenIssuerOptions options_;
  std::shared_ptr<KeySource> keys_;
};

}  // namespace gatehouse
