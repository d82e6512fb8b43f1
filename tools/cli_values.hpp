// Values the command reads from its settings (a signing algorithm, an issuer URL, a
// database URL) and shows (times, the throttle's limits). Each parser fails through
// Setting::fail, so a bad value names its setting and where it came from (exit code 2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "gatehouse/keys.hpp"
#include "gatehouse/throttle.hpp"
#include "settings.hpp"

namespace gatehouse::cli {

// A JOSE algorithm name (any case): HS256, RS256, ES256 or EdDSA.
gatehouse::Alg parse_alg(const Setting& s);

// RFC 8414 §2: an https URL without query or fragment (http allowed for local use);
// nullopt when the setting is empty.
std::optional<std::string> parse_issuer(const Setting& s);

// A Unix time as 2026-01-31T12:00:00Z.
std::string utc_time(std::int64_t t);

// True for a postgresql:// or postgres:// URL (anything else names a SQLite file).
bool is_postgres_url(const std::string& db);

// The throttling settings in a reload event: "user 10/3600s, client 100/600s, blocks 1-900s".
std::string describe_throttle(const gatehouse::ThrottleOptions& o);

}  // namespace gatehouse::cli
