// The JWT decoder and verifier with its JSON claims, and TokenData's reading of them.
// The first byte picks the mode:
//   even: the rest is a token as a client sends it (decode with the fuzz key);
//   odd:  the rest is "<header JSON>\n<payload JSON>", base64url-encoded and signed
//         with the fuzz key here, so the fuzzer reaches the header and claims checks
//         behind a valid signature.
// A token that decodes is encoded again from its claims (Python's json.dumps form)
// and decoded: the claims must come back equal.
//
// Findings: any sanitizer report or hang; a correctly signed token refused as
// malformed or badly signed; a token accepted whose header alg is not HS256; claims
// that do not survive encode/decode (doubles: to within an ulp, see same()).
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "gatehouse/jwt.hpp"
#include "security/base64url.hpp"

namespace {

namespace jwt = gatehouse::jwt;
constexpr std::int64_t kNow = 1'700'000'000;

const jwt::Hs256Key& key() {
  static const jwt::Hs256Key k("fuzz-secret-key");
  return k;
}

// Equal JSON, except that doubles may differ in their last bits: Boost 1.81 parses
// doubles with up to about one ulp of error (no precise mode before 1.83), so a
// printed and re-read double can move by one ulp. Everything else must be exact.
bool same(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double()) {
    const double x = a.get_double();
    const double y = b.get_double();
    return x == y || std::fabs(x - y) <= 4.5e-16 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto& x = a.get_array();
    const auto& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!same(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const auto& x = a.get_object();
    const auto& y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& kv : x) {
      const auto* other = y.if_contains(kv.key());
      if (other == nullptr || !same(kv.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

// True when `v` holds an infinite double (a number too large for a double, e.g.
// 1e400, reads as one). encode() writes it as Python does ("Infinity"), which
// Boost.JSON 1.81 cannot read back: such claims are left out of the round trip.
bool has_infinity(const boost::json::value& v) {
  if (v.is_double()) return !std::isfinite(v.get_double());
  if (v.is_array()) {
    for (const auto& e : v.get_array()) {
      if (has_infinity(e)) return true;
    }
  }
  if (v.is_object()) {
    for (const auto& kv : v.get_object()) {
      if (has_infinity(kv.value())) return true;
    }
  }
  return false;
}

void check_decoded(const boost::json::object& claims, std::string_view token) {
  // decode() pins the algorithm: whatever it accepted said "alg": "HS256".
  const auto header_b64 = token.substr(0, token.find('.'));
  const auto header_json = gatehouse::b64::decode_jose(header_b64);
  fuzz::require(header_json.has_value(), "accepted a token whose header does not decode");
  boost::system::error_code ec;
  auto header = boost::json::parse(*header_json, ec);
  fuzz::require(!ec && header.is_object(), "accepted a token whose header is not an object");
  const auto* alg = header.as_object().if_contains("alg");
  fuzz::require(alg != nullptr && alg->is_string() && alg->as_string() == "HS256",
                "accepted a token whose alg is not HS256");

  (void)jwt::TokenData::from_claims(claims);
  const auto again = jwt::encode(key(), claims);
  if (has_infinity(claims)) return;
  auto round = jwt::decode(key(), again, kNow);
  fuzz::require(static_cast<bool>(round), "a re-encoded token does not decode");
  fuzz::require(same(*round, claims), "claims changed through encode/decode");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string token;
  const bool signed_here = (data[0] & 1) != 0;
  if (!signed_here) {
    token = rest;
  } else {
    const auto nl = rest.find('\n');
    if (nl == std::string_view::npos) return 0;
    token = gatehouse::b64::encode_url(rest.substr(0, nl));
    token += '.';
    token += gatehouse::b64::encode_url(rest.substr(nl + 1));
    unsigned char mac[32];
    key().sign(token, mac);
    token += '.';
    token += gatehouse::b64::encode_url(std::string_view(reinterpret_cast<char*>(mac), 32));
  }
  auto claims = jwt::decode(key(), token, kNow);
  if (claims) {
    check_decoded(*claims, token);
  } else if (signed_here) {
    fuzz::require(claims.error() != jwt::Error::malformed, "a signed token read as malformed");
    fuzz::require(claims.error() != jwt::Error::bad_signature, "a signed token refused as forged");
  }
  return 0;
}
