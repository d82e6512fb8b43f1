// `Authorization` extraction as OAuth2PasswordBearer does it (FastAPI's
// get_authorization_scheme_param: split at the first space, the scheme compared
// case-insensitively), the latin-1 reading of the credentials Starlette applies, and
// the scope splitting of a token request's `scope` field.
//
// Findings: any sanitizer report; a token extracted from a value whose scheme is not
// "bearer", or one that is not exactly what follows the first space; a credential
// that is not valid UTF-8 after the latin-1 reading; an empty scope, or one holding
// ASCII whitespace.
#include <cstdint>
#include <string_view>

#include "fuzz_util.hpp"
#include "gatehouse/security.hpp"
#include "http/text.hpp"

namespace {

// The oracle's own case-insensitive compare (not the code under test's).
bool is_bearer(std::string_view scheme) {
  constexpr std::string_view kBearer = "bearer";
  if (scheme.size() != kBearer.size()) return false;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    char c = scheme[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kBearer[i]) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  using gatehouse::OAuth2PasswordBearer;

  fuzz::require(!OAuth2PasswordBearer::extract(std::nullopt), "a token without a header");
  const auto token = OAuth2PasswordBearer::extract(value);
  const auto space = value.find(' ');
  const bool bearer = is_bearer(value.substr(0, space));
  fuzz::require(token.has_value() == bearer, "extracted iff the scheme is bearer");
  if (token) {
    const auto expected =
        space == std::string_view::npos ? std::string_view{} : value.substr(space + 1);
    fuzz::require(*token == expected, "the token is what follows the first space");
    fuzz::require(token->data() == value.data() + value.size() - token->size() || token->empty(),
                  "the token is a view into the header value");
    const auto text = gatehouse::http::latin1_to_utf8(*token);
    fuzz::require(fuzz::valid_utf8(text), "latin-1 reading is not UTF-8");
    fuzz::require(text.size() >= token->size(), "latin-1 reading lost bytes");
  }

  for (const auto& scope : gatehouse::split_scopes(value)) {
    fuzz::require(!scope.empty(), "an empty scope");
    for (char c : scope) {
      const auto u = static_cast<unsigned char>(c);
      fuzz::require(!((u >= 0x09 && u <= 0x0d) || (u >= 0x1c && u <= 0x20)),
                    "a scope holding ASCII whitespace");
    }
  }
  return 0;
}
