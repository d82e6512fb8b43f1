// HS256 JWTs compatible with python-jose. Verification order follows jose: split,
// header (a JSON object), pinned alg, HMAC in constant time, payload (a JSON object),
// then the registered claims iat, nbf, exp, aud, sub, jti.
#include "gatehouse/jwt.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "security/base64url.hpp"
#include "security/claims.hpp"

namespace gatehouse::jwt {

namespace {

EVP_MAC* hmac_algorithm() {
  static EVP_MAC* mac = [] {
    EVP_MAC* m = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (m == nullptr) throw std::runtime_error("OpenSSL has no HMAC");
    return m;
  }();
  return mac;
}

std::atomic<std::uint64_t> next_key_id{1};

// Each thread keeps one keyed EVP_MAC_CTX per key it has used, re-initialised with
// the stored key for every token: no per-token key setup and no locking.
struct ThreadMacs {
  struct Slot {
    std::uint64_t key_id = 0;
    EVP_MAC_CTX* ctx = nullptr;
  };
  std::array<Slot, 4> slots{};
  ~ThreadMacs() {
    for (auto& s : slots) EVP_MAC_CTX_free(s.ctx);
  }
};

const char kHeaderSegment[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";  // {"alg":"HS256","typ":"JWT"}

}  // namespace

// Python's int(x) for a JSON value: nullopt for a ValueError (a string that is not an
// integer, NaN) and for what int() refuses with TypeError (null, lists, objects), which
// the FastAPI app answers with a 500; gatehouse treats both as invalid.
std::optional<long double> detail::python_int(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::bool_:
      return v.get_bool() ? 1 : 0;
    case boost::json::kind::int64:
      return static_cast<long double>(v.get_int64());
    case boost::json::kind::uint64:
      return static_cast<long double>(v.get_uint64());
    case boost::json::kind::double_: {
      double d = v.get_double();
      if (!std::isfinite(d)) return std::nullopt;
      return std::trunc(static_cast<long double>(d));
    }
    case boost::json::kind::string: {
      std::string_view s = v.get_string();
      auto is_ws = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
      while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
      while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
      bool negative = false;
      if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
        negative = s.front() == '-';
        s.remove_prefix(1);
      }
      if (s.empty()) return std::nullopt;
      long double value = 0;
      bool last_digit = false;
      for (char c : s) {
        if (c >= '0' && c <= '9') {
          value = value * 10 + (c - '0');
          last_digit = true;
        } else if (c == '_' && last_digit) {
          last_digit = false;  // single underscores between digits
        } else {
          return std::nullopt;
        }
      }
      if (!last_digit) return std::nullopt;
      return negative ? -value : value;
    }
    default:
      return std::nullopt;
  }
}

namespace {

void dump_string(std::string_view s, std::string& out) {
  out += '"';
  std::size_t i = 0;
  char buf[16];  // an escape is 6 characters and a NUL; 16 for -Wformat-truncation
  auto escape = [&](std::uint32_t unit) {
    std::snprintf(buf, sizeof buf, "\\u%04x", unit);
    out += buf;
  };
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {  // ensure_ascii escapes everything outside ' '..'~'
            escape(c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // Boost.JSON strings are valid UTF-8: decode one code point.
    std::uint32_t cp = 0;
    std::size_t len = 1;
    if ((c & 0xe0) == 0xc0) {
      cp = c & 0x1fu;
      len = 2;
    } else if ((c & 0xf0) == 0xe0) {
      cp = c & 0x0fu;
      len = 3;
    } else {
      cp = c & 0x07u;
      len = 4;
    }
    for (std::size_t k = 1; k < len && i + k < s.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3fu);
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      escape(0xd800 + (cp >> 10));
      escape(0xdc00 + (cp & 0x3ff));
    } else {
      escape(cp);
    }
    i += len;
  }
  out += '"';
}

// Python's repr() of a float: the shortest digits that round-trip, in positional
// notation unless the exponent is below -4 or above 15, always with a '.' or an 'e'.
// Infinities and NaN: "inf", "-inf", "nan", as repr() and str() write them.
std::string python_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, end);  // e.g. "-1.2345e+02"
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const auto e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exponent = std::stoi(sci.substr(e + 1));
  const int decpt = exponent + 1;  // digits before the decimal point
  std::string out = sign;
  if (decpt <= -4 || decpt > 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp[16];
    std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+',
                  exponent < 0 ? -exponent : exponent);
    out += exp;
  } else if (decpt <= 0) {
    out += "0." + std::string(static_cast<std::size_t>(-decpt), '0') + digits;
  } else if (static_cast<std::size_t>(decpt) >= digits.size()) {
    out += digits + std::string(static_cast<std::size_t>(decpt) - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, static_cast<std::size_t>(decpt)) + "." +
           digits.substr(static_cast<std::size_t>(decpt));
  }
  return out;
}

}  // namespace

std::string_view to_string(Error e) noexcept {
  switch (e) {
    case Error::malformed:
      return "malformed token";
    case Error::bad_header:
      return "invalid header";
    case Error::alg_not_allowed:
      return "algorithm not allowed";
    case Error::bad_signature:
      return "signature verification failed";
    case Error::bad_payload:
      return "invalid payload";
    case Error::expired:
      return "token expired";
    case Error::not_yet_valid:
      return "token not yet valid";
    case Error::bad_claim:
      return "invalid claim";
    case Error::audience_present:
      return "audience not accepted";
  }
  return "invalid token";
}

struct Hs256Key::Impl {
  std::uint64_t id = next_key_id.fetch_add(1);
};

Hs256Key::Hs256Key(std::string secret)
    : secret_(std::move(secret)), impl_(std::make_unique<Impl>()) {
  hmac_algorithm();
}

Hs256Key::~Hs256Key() { OPENSSL_cleanse(secret_.data(), secret_.size()); }

void Hs256Key::sign(std::string_view data, unsigned char out[32]) const {
  thread_local ThreadMacs macs;
  ThreadMacs::Slot* slot = nullptr;
  for (auto& s : macs.slots) {
    if (s.key_id == impl_->id) {
      slot = &s;
      break;
    }
  }
  bool fresh = false;
  if (slot == nullptr) {
    slot = &macs.slots[impl_->id % macs.slots.size()];
    EVP_MAC_CTX_free(slot->ctx);
    slot->ctx = EVP_MAC_CTX_new(hmac_algorithm());
    slot->key_id = impl_->id;
    fresh = true;
  }
  int ok = 0;
  if (fresh) {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    ok = EVP_MAC_init(slot->ctx, reinterpret_cast<const unsigned char*>(secret_.data()),
                      secret_.size(), params);
  } else {
    ok = EVP_MAC_init(slot->ctx, nullptr, 0, nullptr);  // same key again
  }
  std::size_t len = 0;
  if (ok != 1 ||
      EVP_MAC_update(slot->ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) !=
          1 ||
      EVP_MAC_final(slot->ctx, out, &len, 32) != 1 || len != 32) {
    slot->key_id = 0;
    throw std::runtime_error("HMAC-SHA256 failed");
  }
}

void dump_python_json(const boost::json::value& v, std::string& out) {
  switch (v.kind()) {
    case boost::json::kind::null:
      out += "null";
      break;
    case boost::json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      break;
    case boost::json::kind::int64:
      out += std::to_string(v.get_int64());
      break;
    case boost::json::kind::uint64:
      out += std::to_string(v.get_uint64());
      break;
    case boost::json::kind::double_:
      if (std::isfinite(v.get_double())) {
        out += python_float_repr(v.get_double());
      } else {  // json.dumps with allow_nan=True, its default
        out += std::isnan(v.get_double()) ? "NaN" : v.get_double() < 0 ? "-Infinity" : "Infinity";
      }
      break;
    case boost::json::kind::string:
      dump_string(v.get_string(), out);
      break;
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        dump_python_json(e, out);
      }
      out += ']';
      break;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        dump_string(kv.key(), out);
        out += ':';
        dump_python_json(kv.value(), out);
      }
      out += '}';
      break;
    }
  }
}

std::string encode(const Hs256Key& key, const boost::json::object& claims) {
  std::string payload;
  dump_python_json(claims, payload);
  std::string token = kHeaderSegment;
  token += '.';
  b64::encode_url(payload, token);
  unsigned char sig[32];
  key.sign(token, sig);
  token += '.';
  b64::encode_url(std::string_view(reinterpret_cast<const char*>(sig), sizeof sig), token);
  return token;
}

Result<boost::json::object, Error> decode(const Hs256Key& key, std::string_view token,
                                          std::int64_t now, boost::json::storage_ptr sp) {
  // jose: rsplit('.', 1) for the signature, then split('.', 1) for header/payload.
  const auto last_dot = token.rfind('.');
  if (last_dot == std::string_view::npos) return Err{Error::malformed};
  const auto signing_input = token.substr(0, last_dot);
  const auto first_dot = signing_input.find('.');
  if (first_dot == std::string_view::npos) return Err{Error::malformed};

  auto header_json = b64::decode_jose(signing_input.substr(0, first_dot));
  if (!header_json) return Err{Error::malformed};
  boost::json::parse_options opts;
  opts.max_depth = 1000;
  unsigned char scratch[4096];
  boost::json::monotonic_resource header_mr(scratch, sizeof scratch);
  boost::system::error_code ec;
  auto header = boost::json::parse(*header_json, ec, &header_mr, opts);
  if (ec || !header.is_object()) return Err{Error::bad_header};
  // RFC 8725 §3.1: the algorithm is pinned; the header never chooses it.
  const auto* alg = header.get_object().if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256") {
    return Err{Error::alg_not_allowed};
  }
  auto payload_json = b64::decode_jose(signing_input.substr(first_dot + 1));
  if (!payload_json) return Err{Error::malformed};
  auto signature = b64::decode_jose(token.substr(last_dot + 1));
  if (!signature) return Err{Error::malformed};

  unsigned char expected[32];
  key.sign(signing_input, expected);
  if (signature->size() != sizeof expected ||
      CRYPTO_memcmp(signature->data(), expected, sizeof expected) != 0) {
    return Err{Error::bad_signature};
  }

  auto payload = boost::json::parse(*payload_json, ec, std::move(sp), opts);
  if (ec || !payload.is_object()) return Err{Error::bad_payload};
  auto& claims = payload.get_object();

  static const VerifierOptions kJoseDefaults{};
  if (auto failure = gatehouse::detail::check_registered_claims(claims, now, kJoseDefaults)) {
    switch (*failure) {
      case Failure::expired:
        return Err{Error::expired};
      case Failure::not_yet_valid:
        return Err{Error::not_yet_valid};
      case Failure::audience_present:
        return Err{Error::audience_present};
      default:
        return Err{Error::bad_claim};
    }
  }
  return std::move(claims);
}

Result<TokenData, Error> TokenData::from_claims(const boost::json::object& claims) {
  TokenData data;
  const auto* sub = claims.if_contains("sub");
  if (sub == nullptr || !sub->is_string()) return Err{Error::bad_claim};
  data.username = sub->get_string();
  if (const auto* scopes = claims.if_contains("scopes")) {
    if (!scopes->is_array()) return Err{Error::bad_claim};
    for (const auto& s : scopes->get_array()) {
      // pydantic v1's str validator coerces numbers (and so booleans) to strings.
      switch (s.kind()) {
        case boost::json::kind::string:
          data.scopes.emplace_back(s.get_string());
          break;
        case boost::json::kind::bool_:
          data.scopes.emplace_back(s.get_bool() ? "True" : "False");
          break;
        case boost::json::kind::int64:
          data.scopes.push_back(std::to_string(s.get_int64()));
          break;
        case boost::json::kind::uint64:
          data.scopes.push_back(std::to_string(s.get_uint64()));
          break;
        case boost::json::kind::double_:
          data.scopes.push_back(python_float_repr(s.get_double()));
          break;
        default:
          return Err{Error::bad_claim};
      }
    }
  }
  return data;
}

std::int64_t now_seconds() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace gatehouse::jwt
