// The metrics registry and its Prometheus text exposition (see include/gatehouse/metrics.hpp).
#include "gatehouse/metrics.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <new>
#include <set>

#ifndef GATEHOUSE_VERSION
#define GATEHOUSE_VERSION "unknown"
#endif

namespace gatehouse {

namespace {

constexpr std::size_t kShards = 8;

// The statuses counted one by one; any other is counted as "other".
constexpr std::array<unsigned, 47> kStatuses = {
    100, 101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 402,
    403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421,
    422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505};
constexpr std::size_t kStatusSlots = kStatuses.size() + 1;  // + "other"

struct StatusIndex {
  std::array<std::uint8_t, 600> slot{};
  constexpr StatusIndex() {
    for (auto& s : slot) s = static_cast<std::uint8_t>(kStatuses.size());
    for (std::size_t i = 0; i < kStatuses.size(); ++i)
      slot[kStatuses[i]] = static_cast<std::uint8_t>(i);
  }
};
constexpr StatusIndex kStatusIndex{};

std::size_t status_slot(unsigned status) noexcept {
  return status < kStatusIndex.slot.size() ? kStatusIndex.slot[status] : kStatuses.size();
}

const std::vector<double> kLatencyBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                             0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                             1.0,    2.5,     5.0,    10.0};
constexpr std::size_t kLatencyBounds = 16;

std::array<std::uint64_t, kLatencyBounds> latency_bounds_ns() {
  std::array<std::uint64_t, kLatencyBounds> out{};
  for (std::size_t i = 0; i < kLatencyBounds; ++i) {
    out[i] = static_cast<std::uint64_t>(kLatencyBuckets[i] * 1e9 + 0.5);
  }
  return out;
}
const std::array<std::uint64_t, kLatencyBounds> kLatencyBoundsNs = latency_bounds_ns();

std::size_t latency_bucket(std::uint64_t ns) noexcept {
  std::size_t i = 0;
  while (i < kLatencyBounds && ns > kLatencyBoundsNs[i]) ++i;
  return i;  // kLatencyBounds: +Inf
}

std::uint64_t to_ns(std::chrono::nanoseconds d) noexcept {
  return d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count());
}

// Cells of one histogram: the buckets (+Inf last), then the sum in ns.
constexpr std::size_t kHistCells = kLatencyBounds + 2;

std::size_t shard_index() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return mine;
}

// Rows x columns of counters, one copy per shard, each shard on its own cache lines.
class ShardedTable {
 public:
  ShardedTable(std::size_t rows, std::size_t cols)
      : rows_(rows), cols_(cols), stride_(((rows * cols + 7) / 8) * 8 + 8) {
    cells_ = std::make_unique<std::atomic<std::uint64_t>[]>(kShards * stride_ + 8);
    for (std::size_t i = 0; i < kShards * stride_ + 8; ++i) {
      cells_[i].store(0, std::memory_order_relaxed);
    }
  }
  std::atomic<std::uint64_t>* row(std::size_t r) noexcept {
    return &cells_[8 + shard_index() * stride_ + r * cols_];
  }
  [[nodiscard]] std::uint64_t sum(std::size_t r, std::size_t c) const noexcept {
    std::uint64_t total = 0;
    for (std::size_t s = 0; s < kShards; ++s) {
      total += cells_[8 + s * stride_ + r * cols_ + c].load(std::memory_order_relaxed);
    }
    return total;
  }
  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }

 private:
  std::size_t rows_, cols_, stride_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> cells_;
};

void record_hist(std::atomic<std::uint64_t>* cells, std::uint64_t ns) noexcept {
  cells[latency_bucket(ns)].fetch_add(1, std::memory_order_relaxed);
  cells[kLatencyBounds + 1].fetch_add(ns, std::memory_order_relaxed);
}

void append_escaped_label(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

std::string render_labels(const MetricLabels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ',';
    out += k;
    out += "=\"";
    append_escaped_label(out, v);
    out += '"';
  }
  return out;
}

void append_number(std::string& out, double v) {
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%.15g", v);
  out.append(buf, static_cast<std::size_t>(n));
}

void append_bound(std::string& out, double v) {
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%g", v);
  out.append(buf, static_cast<std::size_t>(n));
}

void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   std::string_view value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

// One histogram series from its per-bucket counts (+Inf last) and its sum in ns.
void append_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const std::vector<double>& bounds, const std::vector<std::uint64_t>& counts,
                      std::uint64_t sum_ns) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += counts[i];
    std::string l = labels;
    if (!l.empty()) l += ',';
    l += "le=\"";
    if (i == bounds.size()) {
      l += "+Inf";
    } else {
      append_bound(l, bounds[i]);
    }
    l += '"';
    append_sample(out, name + "_bucket", l, std::to_string(cumulative));
  }
  std::string sum;
  append_number(sum, static_cast<double>(sum_ns) / 1e9);
  append_sample(out, name + "_sum", labels, sum);
  append_sample(out, name + "_count", labels, std::to_string(cumulative));
}

constexpr std::array<std::string_view, kLoginOutcomes> kLoginNames = {
    "ok", "wrong_password", "unknown_user", "throttled", "inactive"};
constexpr std::array<std::string_view, kStoreOps> kStoreOpNames = {"find",
                                                                   "add",
                                                                   "set_disabled",
                                                                   "set_password_hash",
                                                                   "replace_password_hash",
                                                                   "remove",
                                                                   "list",
                                                                   "setting",
                                                                   "set_setting",
                                                                   "setting_or_init",
                                                                   "replace_setting",
                                                                   "signing_keys",
                                                                   "rotate_signing_key",
                                                                   "retire_signing_key"};

double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  unsigned long long size = 0;
  unsigned long long resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace

// ---------------------------------------------------------------- Histogram

Histogram::Histogram(std::vector<double> bounds_seconds) : bounds_(std::move(bounds_seconds)) {
  std::sort(bounds_.begin(), bounds_.end());
  for (double b : bounds_) bounds_ns_.push_back(static_cast<std::uint64_t>(b * 1e9 + 0.5));
  counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(std::chrono::nanoseconds d) noexcept {
  const std::uint64_t ns = to_ns(d);
  std::size_t i = 0;
  while (i < bounds_ns_.size() && ns > bounds_ns_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(ns, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::buckets() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

// ---------------------------------------------------------------- Metrics

struct Metrics::Impl {
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
    std::map<std::uint64_t, std::pair<std::string, std::function<double()>>> gauges;
    std::function<void(std::string&, const std::string&)> custom;  // sharded series
  };

  struct HttpTable {
    std::vector<std::pair<std::string, std::string>> routes;  // + unmatched, rejected
    ShardedTable cells;
    explicit HttpTable(std::vector<std::pair<std::string, std::string>> r)
        : routes(std::move(r)), cells(routes.size(), kStatusSlots + kHistCells) {}
  };

  mutable std::mutex mutex;  // registration and rendering
  std::map<std::string, Family> families;
  std::uint64_t next_gauge = 1;

  std::atomic<HttpTable*> http{nullptr};
  std::vector<std::unique_ptr<HttpTable>> http_tables;  // every table ever used

  ShardedTable store{kStoreOps, kHistCells + 1};  // + errors
  std::array<Counter*, kLoginOutcomes> logins{};
  std::vector<Registration> own_gauges;
  std::set<std::string, std::less<>> client_labels;  // client label values in use

  Family& family(const std::string& name, const std::string& help, const std::string& type) {
    auto& f = families[name];
    if (f.type.empty()) {
      f.help = help;
      f.type = type;
    }
    return f;
  }
};

const std::vector<double>& Metrics::latency_buckets() { return kLatencyBuckets; }

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {
  for (std::size_t i = 0; i < kLoginOutcomes; ++i) {
    impl_->logins[i] = &counter("gatehouse_logins_total", "Password logins, by outcome.",
                                {{"outcome", std::string(kLoginNames[i])}});
  }
  (void)tokens_issued("password");
  impl_->own_gauges.push_back(gauge("gatehouse_build_info",
                                    "The running gatehouse build; the value is always 1.",
                                    {{"version", GATEHOUSE_VERSION}}, [] { return 1.0; }));
  // When this registry was made: at start-up, with the App (no /proc/uptime, which the
  // packaged unit's sandbox does not expect to be read).
  const double start = static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count()) /
                       1000.0;
  impl_->own_gauges.push_back(
      gauge("process_start_time_seconds",
            "Start time of the process (when its metrics began) since the Unix epoch, seconds.", {},
            [start] { return start; }));
  impl_->own_gauges.push_back(
      gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {}, resident_bytes));

  auto* impl = impl_.get();
  impl->family("gatehouse_http_requests_total",
               "HTTP requests answered, by method, route template and status.", "counter")
      .custom = [impl](std::string& out, const std::string& name) {
    std::map<std::string, std::uint64_t> totals;  // merged over tables
    for (const auto& t : impl->http_tables) {
      for (std::size_t r = 0; r < t->routes.size(); ++r) {
        for (std::size_t s = 0; s < kStatusSlots; ++s) {
          const std::uint64_t n = t->cells.sum(r, s);
          if (n == 0) continue;
          const std::string status =
              s < kStatuses.size() ? std::to_string(kStatuses[s]) : std::string("other");
          totals[render_labels({{"method", t->routes[r].first},
                                {"route", t->routes[r].second},
                                {"status", status}})] += n;
        }
      }
    }
    for (const auto& [labels, n] : totals) append_sample(out, name, labels, std::to_string(n));
  };
  impl->family("gatehouse_http_request_duration_seconds",
               "Time from the end of the request head to the answer, by method and route "
               "template.",
               "histogram")
      .custom = [impl](std::string& out, const std::string& name) {
    std::map<std::string, std::vector<std::uint64_t>> series;  // last cell: sum
    for (const auto& t : impl->http_tables) {
      for (std::size_t r = 0; r < t->routes.size(); ++r) {
        std::vector<std::uint64_t> cells(kHistCells);
        std::uint64_t count = 0;
        for (std::size_t c = 0; c < kHistCells; ++c) {
          cells[c] = t->cells.sum(r, kStatusSlots + c);
          if (c <= kLatencyBounds) count += cells[c];
        }
        if (count == 0) continue;
        auto& s =
            series[render_labels({{"method", t->routes[r].first}, {"route", t->routes[r].second}})];
        s.resize(kHistCells);
        for (std::size_t c = 0; c < kHistCells; ++c) s[c] += cells[c];
      }
    }
    for (const auto& [labels, s] : series) {
      std::vector<std::uint64_t> counts(s.begin(), s.begin() + kLatencyBounds + 1);
      append_histogram(out, name, labels, kLatencyBuckets, counts, s[kLatencyBounds + 1]);
    }
  };
  impl->family("gatehouse_store_operation_duration_seconds",
               "Time spent in user-store operations, by operation.", "histogram")
      .custom = [impl](std::string& out, const std::string& name) {
    for (std::size_t op = 0; op < kStoreOps; ++op) {
      std::vector<std::uint64_t> counts(kLatencyBounds + 1);
      std::uint64_t count = 0;
      for (std::size_t c = 0; c <= kLatencyBounds; ++c) {
        counts[c] = impl->store.sum(op, c);
        count += counts[c];
      }
      if (count == 0) continue;
      append_histogram(out, name, render_labels({{"op", std::string(kStoreOpNames[op])}}),
                       kLatencyBuckets, counts, impl->store.sum(op, kLatencyBounds + 1));
    }
  };
  impl->family("gatehouse_store_errors_total",
               "User-store operations that failed (the request answered 500), by operation.",
               "counter")
      .custom = [impl](std::string& out, const std::string& name) {
    for (std::size_t op = 0; op < kStoreOps; ++op) {
      std::uint64_t count = 0;
      for (std::size_t c = 0; c <= kHistCells; ++c) count += impl->store.sum(op, c);
      if (count == 0) continue;  // an operation never used
      append_sample(out, name, render_labels({{"op", std::string(kStoreOpNames[op])}}),
                    std::to_string(impl->store.sum(op, kHistCells)));
    }
  };
}

Metrics::~Metrics() = default;

Counter& Metrics::counter(const std::string& name, const std::string& help,
                          const MetricLabels& labels) {
  std::lock_guard lock(impl_->mutex);
  auto& f = impl_->family(name, help, "counter");
  auto& c = f.counters[render_labels(labels)];
  if (!c) c = std::make_unique<Counter>();
  return *c;
}

Histogram& Metrics::histogram(const std::string& name, const std::string& help,
                              const MetricLabels& labels, const std::vector<double>& bounds) {
  std::lock_guard lock(impl_->mutex);
  auto& f = impl_->family(name, help, "histogram");
  auto& h = f.histograms[render_labels(labels)];
  if (!h) h = std::make_unique<Histogram>(bounds);
  return *h;
}

Registration Metrics::gauge(const std::string& name, const std::string& help,
                            const MetricLabels& labels, std::function<double()> read) {
  std::lock_guard lock(impl_->mutex);
  auto& f = impl_->family(name, help, "gauge");
  const std::uint64_t id = impl_->next_gauge++;
  f.gauges.emplace(id, std::make_pair(render_labels(labels), std::move(read)));
  Impl* impl = impl_.get();
  return Registration([impl, name, id] {
    std::lock_guard l(impl->mutex);
    auto it = impl->families.find(name);
    if (it != impl->families.end()) it->second.gauges.erase(id);
  });
}

void Metrics::set_routes(const std::vector<std::pair<std::string, std::string>>& method_and_path) {
  std::lock_guard lock(impl_->mutex);
  auto routes = method_and_path;
  routes.emplace_back("", std::string(kUnmatched));
  routes.emplace_back("", std::string(kRejected));
  if (auto* current = impl_->http.load(std::memory_order_acquire);
      current != nullptr && current->routes == routes) {
    return;
  }
  impl_->http_tables.push_back(std::make_unique<Impl::HttpTable>(std::move(routes)));
  impl_->http.store(impl_->http_tables.back().get(), std::memory_order_release);
}

std::size_t Metrics::unmatched_slot() const noexcept {
  auto* t = impl_->http.load(std::memory_order_acquire);
  return t == nullptr ? 0 : t->routes.size() - 2;
}

std::size_t Metrics::rejected_slot() const noexcept {
  auto* t = impl_->http.load(std::memory_order_acquire);
  return t == nullptr ? 0 : t->routes.size() - 1;
}

void Metrics::request(std::size_t slot, unsigned status, std::chrono::nanoseconds took) noexcept {
  auto* t = impl_->http.load(std::memory_order_acquire);
  if (t == nullptr) return;
  if (slot >= t->routes.size()) slot = t->routes.size() - 2;
  auto* row = t->cells.row(slot);
  row[status_slot(status)].fetch_add(1, std::memory_order_relaxed);
  record_hist(row + kStatusSlots, to_ns(took));
}

void Metrics::login(LoginOutcome outcome) noexcept {
  impl_->logins[static_cast<std::size_t>(outcome)]->inc();
}

void Metrics::store_op(StoreOp op, std::chrono::nanoseconds took, bool failed) noexcept {
  auto* row = impl_->store.row(static_cast<std::size_t>(op));
  record_hist(row, to_ns(took));
  if (failed) row[kHistCells].fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::client_label(std::string_view client) {
  if (client == kNoClient || client == kOtherClients) return std::string(client);
  std::lock_guard lock(impl_->mutex);
  auto& seen = impl_->client_labels;
  if (auto it = seen.find(client); it != seen.end()) return *it;
  if (seen.size() >= kMaxClientLabels) return std::string(kOtherClients);
  return *seen.emplace(client).first;
}

Counter& Metrics::tokens_issued(std::string_view grant, std::string_view client) {
  return counter("gatehouse_tokens_issued_total", "Access tokens handed out, by grant and client.",
                 {{"grant", std::string(grant)}, {"client", client_label(client)}});
}

Counter& Metrics::tokens_refreshed(std::string_view outcome, std::string_view client) {
  return counter("gatehouse_tokens_refreshed_total",
                 "Refresh-token grants, by outcome (rotated, replayed, reused) and client.",
                 {{"outcome", std::string(outcome)}, {"client", client_label(client)}});
}

Counter& Metrics::tokens_revoked(std::string_view token_type, std::string_view client) {
  return counter("gatehouse_tokens_revoked_total",
                 "Tokens revoked at /revoke, by token type and client.",
                 {{"token_type", std::string(token_type)}, {"client", client_label(client)}});
}

std::uint64_t Metrics::logins(LoginOutcome outcome) const noexcept {
  return impl_->logins[static_cast<std::size_t>(outcome)]->value();
}

std::uint64_t Metrics::requests(std::size_t slot, unsigned status) const noexcept {
  auto* t = impl_->http.load(std::memory_order_acquire);
  if (t == nullptr || slot >= t->routes.size()) return 0;
  return t->cells.sum(slot, status_slot(status));
}

std::string Metrics::render() const {
  std::lock_guard lock(impl_->mutex);
  std::string out;
  out.reserve(8192);
  for (const auto& [name, f] : impl_->families) {
    std::string body;
    if (f.custom) f.custom(body, name);
    for (const auto& [labels, c] : f.counters) {
      append_sample(body, name, labels, std::to_string(c->value()));
    }
    for (const auto& [labels, h] : f.histograms) {
      append_histogram(body, name, labels, h->bounds(), h->buckets(), h->sum_ns());
    }
    for (const auto& [id, g] : f.gauges) {
      std::string v;
      append_number(v, g.second());
      append_sample(body, name, g.first, v);
    }
    out += "# HELP ";
    out += name;
    out += ' ';
    for (char c : f.help) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += f.type;
    out += '\n';
    out += body;
  }
  return out;
}

}  // namespace gatehouse
