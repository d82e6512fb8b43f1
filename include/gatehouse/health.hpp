// Readiness checks (/readyz) and the reload registry (SIGHUP): small registries that
// the server, the store and the key or throttling code fill in at start-up.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gatehouse/metrics.hpp"

namespace gatehouse {

// One readiness check's answer: ok, and a short reason shown in /readyz (never a secret).
struct CheckResult {
  bool ok = true;
  std::string detail;
};

// Named checks that /readyz runs in order; each runs on the I/O thread serving the
// probe, so it must be quick. Checks may be added and removed while serving.
class Readiness {
 public:
  // Adds a check; it is removed when the returned registration is destroyed.
  [[nodiscard]] Registration add(std::string name, std::function<CheckResult()> check);
  // Runs every check (an exception is a failed check with its message).
  [[nodiscard]] std::vector<std::pair<std::string, CheckResult>> run() const;

 private:
  mutable std::mutex mutex_;
  std::uint64_t next_ = 1;
  std::vector<std::pair<std::uint64_t, std::pair<std::string, std::function<CheckResult()>>>>
      checks_;
};

// What SIGHUP reloads. Each hook re-reads its own settings and returns a short
// description of what it did ("log-level: info -> debug", "unchanged"); a hook that
// throws leaves its old settings in place and its message is reported. Hooks run one
// at a time, in the order they were added.
class ReloadRegistry {
 public:
  [[nodiscard]] Registration add(std::string name, std::function<std::string()> hook);
  // Runs every hook: (name, ok, what it did or why it failed).
  struct Outcome {
    std::string name;
    bool ok = true;
    std::string message;
  };
  std::vector<Outcome> reload();

 private:
  std::mutex run_mutex_;
  mutable std::mutex mutex_;
  std::uint64_t next_ = 1;
  std::vector<std::pair<std::uint64_t, std::pair<std::string, std::function<std::string()>>>>
      hooks_;
};

}  // namespace gatehouse
