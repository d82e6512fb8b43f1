// base64url (RFC 4648 §5) without padding for encoding, and python-jose's decoding:
// pad to a multiple of 4, map '-_' to '+/', then decode as Python's non-strict
// binascii.a2b_base64 does (characters outside the alphabet are skipped, decoding
// stops at a complete pad sequence). Being as lenient as jose keeps every token the
// FastAPI app accepts acceptable here; the signature still covers the raw segments.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gatehouse::b64 {

void encode_url(std::string_view data, std::string& out);
std::string encode_url(std::string_view data);
// nullopt where Python raises binascii.Error.
std::optional<std::string> decode_jose(std::string_view segment);
// The same into `out` (its buffer reused); false where Python raises.
bool decode_jose(std::string_view segment, std::string& out);
// Canonical base64url only (RFC 4648 §3.5, RFC 7515 §2): characters of the URL-safe
// alphabet, no padding, a length that is not 1 modulo 4, and the unused low bits of
// the last character zero. nullopt otherwise, so each byte string has one spelling.
std::optional<std::string> decode_url_canonical(std::string_view segment);
bool decode_url_canonical(std::string_view segment, std::string& out);

}  // namespace gatehouse::b64
