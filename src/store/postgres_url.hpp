// PostgreSQL connection URLs (postgresql://... or keyword=value strings) without their
// password: what gatehouse shows of a URL in messages, logs and --config-check.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::pg {

// Percent-decoding as libpq's URI parser does (an invalid %XX is kept as is).
std::string percent_decode(std::string_view s);

// The URL with its password removed, and the password's spellings, to scrub from any
// message (libpq's own messages do not contain it, but nothing is left to chance).
class Redactor {
 public:
  explicit Redactor(std::string_view url);

  [[nodiscard]] const std::string& safe_url() const { return safe_; }

  // A password given apart from the URL (a password file), scrubbed like the URL's.
  void add_secret(const std::string& password);

  // `text` with every spelling of a password replaced by "***".
  [[nodiscard]] std::string scrub(std::string text) const;

 private:
  void keep_secret(std::string_view raw);
  std::string redact_uri(std::string_view url, std::size_t start);
  std::string redact_keywords(std::string_view s);

  std::string safe_;
  std::vector<std::string> secrets_;
};

}  // namespace gatehouse::pg
