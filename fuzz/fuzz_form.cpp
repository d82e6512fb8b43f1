// The form body parsers a token request goes through: the input is a Content-Type
// value, a newline, then the body. parse_form picks urlencoded or multipart by the
// Content-Type (parse_options_header, the boundary, the charset), as App::run does.
// Also the percent-decoders on the raw input.
//
// Findings: any sanitizer report or hang; more than kMaxFormFields fields accepted;
// percent-decoding that yields invalid UTF-8; an urlencoded field name or value that
// is not valid UTF-8 (they are decoded text).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "fuzz_util.hpp"
#include "http/form.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nl = input.find('\n');
  const std::string_view content_type = nl == std::string_view::npos ? input : input.substr(0, nl);
  const std::string_view body =
      nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);

  fuzz::require(fuzz::valid_utf8(gatehouse::http::unquote(input)), "unquote: invalid UTF-8");
  fuzz::require(fuzz::valid_utf8(gatehouse::http::unquote_plus(input)),
                "unquote_plus: invalid UTF-8");

  auto form = gatehouse::http::parse_form(content_type, body);
  if (form) {
    fuzz::require(form->fields().size() <= gatehouse::http::kMaxFormFields, "too many fields");
  } else {
    fuzz::require(!form.error().empty(), "an error without a detail");
  }
  if (auto urlencoded = gatehouse::http::parse_urlencoded(body)) {
    fuzz::require(urlencoded->size() <= gatehouse::http::kMaxFormFields, "too many fields");
    for (const auto& f : *urlencoded) {
      fuzz::require(fuzz::valid_utf8(f.name) && fuzz::valid_utf8(f.value),
                    "urlencoded field is not UTF-8");
    }
  }
  return 0;
}
