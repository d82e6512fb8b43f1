// Values the command reads from its settings and shows (see cli_values.hpp).
#include "cli_values.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>

namespace gatehouse::cli {

// A JOSE algorithm name (any case): HS256, RS256, ES256 or EdDSA.
gatehouse::Alg parse_alg(const Setting& s) {
  for (auto a : {gatehouse::Alg::HS256, gatehouse::Alg::RS256, gatehouse::Alg::ES256,
                 gatehouse::Alg::EdDSA}) {
    const auto name = gatehouse::to_string(a);
    if (std::equal(name.begin(), name.end(), s.value.begin(), s.value.end(), [](char x, char y) {
          return std::tolower(static_cast<unsigned char>(x)) ==
                 std::tolower(static_cast<unsigned char>(y));
        })) {
      return a;
    }
  }
  s.fail("must be HS256, RS256, ES256 or EdDSA");
}

// RFC 8414 §2: an https URL without query or fragment (http allowed for local use).
std::optional<std::string> parse_issuer(const Setting& s) {
  if (s.value.empty()) return std::nullopt;
  const bool url = s.value.rfind("https://", 0) == 0 || s.value.rfind("http://", 0) == 0;
  if (!url || s.value.find_first_of("?#") != std::string::npos) {
    s.fail("must be an https:// URL without query or fragment");
  }
  return s.value;
}

std::string utc_time(std::int64_t t) {
  const auto tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool is_postgres_url(const std::string& db) {
  return db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0;
}

// The throttling settings in a reload event: "user 10/3600s, client 100/600s, blocks 1-900s".
std::string describe_throttle(const gatehouse::ThrottleOptions& o) {
  if (!o.enabled) return "off";
  return "user " + std::to_string(o.user.failures) + "/" + std::to_string(o.user.window.count()) +
         "s, client " + std::to_string(o.client.failures) + "/" +
         std::to_string(o.client.window.count()) + "s, blocks " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(o.base_delay).count()) +
         "-" + std::to_string(o.max_delay.count()) + "s";
}

}  // namespace gatehouse::cli
