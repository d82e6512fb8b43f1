// Form bodies as Starlette 0.26 with python-multipart 0.0.5 parses them, so that a
// token request gets the same fields, and the same errors, as from FastAPI.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gatehouse/form.hpp"
#include "gatehouse/result.hpp"

namespace gatehouse::http {

// A Content-Type or Content-Disposition value split as python-multipart's
// parse_options_header does: the value lower-cased only when it has no parameters.
struct OptionsHeader {
  std::string value;
  std::vector<std::pair<std::string, std::string>> params;  // keys lower-cased
  [[nodiscard]] const std::string* param(std::string_view key) const;
};
OptionsHeader parse_options_header(std::string_view header);

// Percent-decoding as Python's unquote_plus on a latin-1 decoded string: '+' is a
// space, %XX runs are decoded as UTF-8 with U+FFFD for invalid bytes, raw bytes
// above 0x7f are latin-1 characters. Returns UTF-8.
std::string unquote_plus(std::string_view raw);
// The same without the '+' rule (for paths, as uvicorn's unquote).
std::string unquote(std::string_view raw);

// Starlette's limit on fields (and on file parts) in one form.
inline constexpr std::size_t kMaxFormFields = 1000;

// Splits an application/x-www-form-urlencoded body (python-multipart's
// QuerystringParser, non-strict). The error is the 400 detail to answer with.
Result<std::vector<FormField>, std::string> parse_urlencoded(std::string_view body);

// Parses a multipart/form-data body. The error is the 400 detail to answer with.
Result<std::vector<FormField>, std::string> parse_multipart(const OptionsHeader& content_type,
                                                            std::string_view body);

// The form of a request body: urlencoded or multipart by Content-Type, else empty
// (Starlette's request.form()). The error is the detail of a 400 answer.
Result<FormData, std::string> parse_form(std::string_view content_type, std::string_view body);

}  // namespace gatehouse::http
