// The buffered JSON-lines logger (see include/gatehouse/log.hpp).
#include "gatehouse/log.hpp"

#include "engine/json_runs.hpp"

#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <unordered_map>

namespace gatehouse {

struct Logger::ThreadBuffer {
  std::mutex mutex;  // taken by its own thread per line and by the writer per collect
  std::string lines;
};

namespace {

std::atomic<std::uint64_t> next_logger_id{1};

// "2026-11-30T17:01:02.123456Z"; the seconds part is formatted once per second per thread.
void append_time(std::string& out) {
  thread_local std::time_t last = -1;
  thread_local char prefix[32];
  thread_local std::size_t prefix_len = 0;
  const auto now = std::chrono::system_clock::now();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(us.count() / 1000000);
  if (secs != last) {
    last = secs;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    prefix_len = std::strftime(prefix, sizeof prefix, "%Y-%m-%dT%H:%M:%S", &tm);
  }
  out.append(prefix, prefix_len);
  char frac[9] = {'.', '0', '0', '0', '0', '0', '0', 'Z', 0};
  auto rem = static_cast<unsigned long>(us.count() % 1000000);
  for (int i = 6; i >= 1; --i) {
    frac[i] = static_cast<char>('0' + rem % 10);
    rem /= 10;
  }
  out.append(frac, 8);
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  char digits[24];
  for (int i = 0; i < n; ++i) digits[i] = buf[n - 1 - i];
  out.append(digits, static_cast<std::size_t>(n));
}

// Length of the valid UTF-8 sequence starting at s[i], or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  unsigned cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0Fu;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07u;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (d & 0x3Fu);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return 0;
  }
  return n;
}

}  // namespace

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warning:
      return "warning";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

std::optional<LogLevel> parse_log_level(std::string_view name) noexcept {
  std::string v(name.substr(0, 16));
  for (auto& c : v) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (name.size() > 16) return std::nullopt;
  if (v == "debug") return LogLevel::debug;
  if (v == "info") return LogLevel::info;
  if (v == "warning" || v == "warn") return LogLevel::warning;
  if (v == "error") return LogLevel::error;
  return std::nullopt;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;  // start of the printable ASCII not yet appended
  for (std::size_t i = detail::plain_json_run_end<true>(s, 0); i < s.size();
       i = detail::plain_json_run_end<true>(s, i)) {
    const auto c = static_cast<unsigned char>(s[i]);
    out.append(s.data() + run, i - run);
    if (c >= 0x80) {
      if (std::size_t n = utf8_length(s, i); n != 0) {
        out.append(s.data() + i, n);
        i += n;
        run = i;
        continue;
      }
    }
    if (c == '"' || c == '\\') {
      const char e[] = {'\\', static_cast<char>(c)};
      out.append(e, 2);
    } else {
      const char e[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out.append(e, sizeof e);
    }
    ++i;
    run = i;
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void FdSink::write(std::string_view lines) {
  while (!lines.empty()) {
    const ssize_t n = ::write(fd_, lines.data(), lines.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EPIPE, EBADF...: nobody reads; drop rather than block or die
    lines.remove_prefix(static_cast<std::size_t>(n));
  }
}

Logger::Logger(std::shared_ptr<LogSink> sink, LogLevel level)
    : sink_(std::move(sink)),
      level_(static_cast<int>(level)),
      id_(next_logger_id.fetch_add(1, std::memory_order_relaxed)) {
  if (!sink_) sink_ = std::make_shared<FdSink>(2);
  writer_ = std::thread([this] { run_writer(); });
}

Logger::~Logger() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  writer_.join();
  collect_and_write();
}

Logger::ThreadBuffer& Logger::buffer() {
  // One buffer per (thread, logger). Logger ids are never reused, so a stale entry of
  // a destroyed logger is never mistaken for a live one.
  thread_local std::uint64_t cached_id = 0;
  thread_local ThreadBuffer* cached = nullptr;
  if (cached_id == id_) return *cached;
  thread_local std::unordered_map<std::uint64_t, std::shared_ptr<ThreadBuffer>> mine;
  auto& slot = mine[id_];
  if (!slot) {
    slot = std::make_shared<ThreadBuffer>();
    std::lock_guard lock(buffers_mutex_);
    buffers_.push_back(slot);
  }
  cached_id = id_;
  cached = slot.get();
  return *cached;
}

void Logger::commit(ThreadBuffer& b, std::size_t line_start) {
  if (b.lines.size() > kMaxBytes) {
    b.lines.resize(line_start);
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  b.lines += '\n';
  if (b.lines.size() >= kWakeBytes && !wake_.exchange(true, std::memory_order_relaxed)) {
    wake_cv_.notify_one();
  }
}

namespace {

// Opens a line: {"time":"...","level":"...","event":"..." — the fields every line has.
void open_line(std::string& out, LogLevel level, std::string_view event) {
  out += "{\"time\":\"";
  append_time(out);
  out += "\",\"level\":\"";
  out += to_string(level);
  out += "\",\"event\":";
  append_json_string(out, event);
}

// One string field; `prefix` is its literal `,"key":`.
void append_field(std::string& out, std::string_view prefix, std::string_view value) {
  out += prefix;
  append_json_string(out, value);
}

}  // namespace

void Logger::event(LogLevel level, std::string_view name, const boost::json::object& fields,
                   bool always) {
  if (!always && !enabled(level)) return;
  auto& b = buffer();
  std::lock_guard lock(b.mutex);
  const std::size_t start = b.lines.size();
  auto& out = b.lines;
  open_line(out, level, name);
  for (const auto& kv : fields) {
    out += ',';
    append_json_string(out, kv.key());
    out += ':';
    out += boost::json::serialize(kv.value());
  }
  out += '}';
  commit(b, start);
}

void Logger::access(const AccessRecord& r) {
  if (!enabled(LogLevel::info)) return;
  auto& b = buffer();
  std::lock_guard lock(b.mutex);
  const std::size_t start = b.lines.size();
  auto& out = b.lines;
  open_line(out, LogLevel::info, "access");
  append_field(out, ",\"request_id\":", r.request_id);
  append_field(out, ",\"remote\":", r.remote);
  append_field(out, ",\"method\":", r.method);
  append_field(out, ",\"path\":", r.path);
  append_field(out, ",\"route\":", r.route);
  out += ",\"status\":";
  append_uint(out, r.status);
  out += ",\"duration_us\":";
  append_uint(out, static_cast<std::uint64_t>(
                       std::chrono::duration_cast<std::chrono::microseconds>(r.duration).count()));
  if (!r.user.empty()) append_field(out, ",\"user\":", r.user);
  out += '}';
  commit(b, start);
}

void Logger::collect_and_write() {
  std::lock_guard write_lock(write_mutex_);
  std::vector<std::shared_ptr<ThreadBuffer>> buffers;
  {
    std::lock_guard lock(buffers_mutex_);
    buffers = buffers_;
  }
  for (auto& b : buffers) {
    spare_.clear();
    {
      std::lock_guard lock(b->mutex);
      if (b->lines.empty()) continue;
      b->lines.swap(spare_);
    }
    sink_->write(spare_);
  }
  // Do not keep a burst's worth of memory around.
  if (spare_.capacity() > 4 * kWakeBytes) std::string().swap(spare_);
}

void Logger::flush() { collect_and_write(); }

void Logger::run_writer() {
  std::unique_lock lock(wake_mutex_);
  while (!stopping_) {
    wake_cv_.wait_for(lock, std::chrono::milliseconds(50),
                      [this] { return stopping_ || wake_.load(std::memory_order_relaxed); });
    wake_.store(false, std::memory_order_relaxed);
    lock.unlock();
    collect_and_write();
    lock.lock();
  }
}

namespace {

struct DefaultLogger {
  std::mutex mutex;
  std::shared_ptr<Logger> chosen;  // set_default_logger(); null: standard error's
};

DefaultLogger& default_logger_state() {
  static DefaultLogger state;
  return state;
}

const std::shared_ptr<Logger>& stderr_logger() {
  static const std::shared_ptr<Logger> logger = std::make_shared<Logger>();
  return logger;
}

}  // namespace

std::shared_ptr<Logger> default_logger() {
  auto& state = default_logger_state();
  {
    std::lock_guard lock(state.mutex);
    if (state.chosen) return state.chosen;
  }
  return stderr_logger();
}

void set_default_logger(std::shared_ptr<Logger> logger) {
  auto& state = default_logger_state();
  std::lock_guard lock(state.mutex);
  state.chosen = std::move(logger);
}

}  // namespace gatehouse
