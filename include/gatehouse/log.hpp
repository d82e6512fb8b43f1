// Structured logs: JSON lines, buffered per thread and written by a background thread
// to a sink the embedding program chooses (default: standard error).
//
// A log call formats its line into the calling thread's own buffer (no allocation
// once the buffer has grown, no lock shared with other threads) and returns; the
// writer thread collects the buffers every 50 ms, or sooner when one passes 64 KiB,
// and hands them to the sink. flush() (and the destructor) write everything logged
// before it. A buffer that reaches 4 MiB because the sink cannot keep up drops
// further lines and counts them (dropped()), so a stuck reader never costs unbounded
// memory or stalls a request.
//
// Nothing here knows what a secret is: callers never pass a password, token or key.
#pragma once

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace gatehouse {

enum class LogLevel : int { debug = 10, info = 20, warning = 30, error = 40 };

// "debug", "info", "warning", "error".
[[nodiscard]] std::string_view to_string(LogLevel level) noexcept;
// The level named by `name` (case-insensitive; "warn" too), or nullopt.
[[nodiscard]] std::optional<LogLevel> parse_log_level(std::string_view name) noexcept;

// Where log lines go. write() is called from the logger's writer thread only (and
// from flush() callers, one at a time), with one or more complete lines, each a JSON
// object followed by '\n'.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void write(std::string_view lines) = 0;
};

// Writes to a file descriptor (2: standard error), retrying short writes; a write
// that fails (EPIPE: the reader went away) drops those lines.
class FdSink : public LogSink {
 public:
  explicit FdSink(int fd = 2) : fd_(fd) {}
  void write(std::string_view lines) override;

 private:
  int fd_;
};

// What the server logs about one answered request. Views must stay valid during the
// call only. Never the query string, headers or body: they can carry tokens.
struct AccessRecord {
  std::string_view request_id;
  std::string_view remote;
  std::string_view method;
  std::string_view path;   // the path as requested (percent-decoded)
  std::string_view route;  // the declared route template, or "unmatched"/"rejected"
  unsigned status = 0;
  std::chrono::nanoseconds duration{0};
  std::string_view user;  // who the request authenticated as, when known
};

class Logger {
 public:
  explicit Logger(std::shared_ptr<LogSink> sink = std::make_shared<FdSink>(2),
                  LogLevel level = LogLevel::info);
  ~Logger();  // writes what is buffered, then stops the writer thread
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void set_level(LogLevel level) noexcept {
    level_.store(static_cast<int>(level), std::memory_order_relaxed);
  }
  [[nodiscard]] LogLevel level() const noexcept {
    return static_cast<LogLevel>(level_.load(std::memory_order_relaxed));
  }
  [[nodiscard]] bool enabled(LogLevel level) const noexcept {
    return static_cast<int>(level) >= level_.load(std::memory_order_relaxed);
  }

  // {"time":"...","level":"info","event":NAME, ...fields}. Field values are JSON.
  // `always`: written whatever the level (what an operator asked for, e.g. a reload).
  void event(LogLevel level, std::string_view name, const boost::json::object& fields = {},
             bool always = false);
  // {"time":"...","level":"info","event":"access","request_id":...,"remote":...,
  //  "method":...,"path":...,"route":...,"status":200,"duration_us":...,"user":...}
  // Logged at info level (skipped when the level is above info).
  void access(const AccessRecord& record);

  // Hands everything logged before this call to the sink before returning.
  void flush();
  // Lines dropped because a thread's buffer was full.
  [[nodiscard]] std::uint64_t dropped() const noexcept {
    return dropped_.load(std::memory_order_relaxed);
  }

  // Buffer sizes: a thread's buffer wakes the writer at `wake_bytes` and drops lines
  // past `max_bytes`.
  static constexpr std::size_t kWakeBytes = 64 * 1024;
  static constexpr std::size_t kMaxBytes = 4 * 1024 * 1024;

  struct ThreadBuffer;  // internal

 private:
  ThreadBuffer& buffer();
  void commit(ThreadBuffer& b, std::size_t line_start);
  void run_writer();
  void collect_and_write();

  std::shared_ptr<LogSink> sink_;
  std::atomic<int> level_;
  std::atomic<std::uint64_t> dropped_{0};
  std::uint64_t id_;

  std::mutex buffers_mutex_;
  std::vector<std::shared_ptr<ThreadBuffer>> buffers_;

  std::mutex write_mutex_;  // one collect-and-write at a time (writer thread, flush())
  std::string spare_;

  std::mutex wake_mutex_;
  std::condition_variable wake_cv_;
  std::atomic<bool> wake_{false};
  bool stopping_ = false;
  std::thread writer_;
};

// The logger a library object uses when the program gives it none: JSON lines on
// standard error, level info, created on first use, unless the program set its own with
// set_default_logger(). Every line the library writes goes through a Logger: an App's
// (app.set_logger(), which Server's access log and events use unless
// ServerOptions::logger names another) or this one (what has no App: the signing-key
// loader, the data directory check). A program that wants nothing on standard error
// sets both, before it makes the objects that log (an App takes the default logger when
// it is constructed).
[[nodiscard]] std::shared_ptr<Logger> default_logger();
// Replaces the default logger for objects made from now on and for the library's
// free-standing warnings; null: back to JSON lines on standard error.
void set_default_logger(std::shared_ptr<Logger> logger);

// Appends `s` to `out` as a JSON string literal (quotes included): UTF-8 passes
// through, control characters and invalid bytes are escaped (\u00XX).
void append_json_string(std::string& out, std::string_view s);

}  // namespace gatehouse
