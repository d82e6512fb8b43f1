// The HTTP/1.1 server: listener, sessions, limits, offloading and graceful shutdown.
//
// Roles as in Beast's advanced server: the listener only accepts and hands each socket
// to the next I/O context (one per thread, round-robin); a Session owns its
// read-handle-write loop; App::dispatch/run map a request to a response and never see
// a socket. Limits live where bytes are read: a fresh parser per request with a
// header limit (431) and a body limit (413), a deadline per read (slow clients are
// dropped), and after an error answer the connection is half-closed and drained
// briefly so the client reads the answer instead of a reset. Memory follows what
// arrives: buffers grow with the bytes read and are given back after a large request,
// and after a burst the allocator returns the freed pages to the system.
#include "gatehouse/server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/serialize.hpp>

#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include "gatehouse/blocking.hpp"
#include "http/connection_host.hpp"
#include "http/form.hpp"
#include "http/text.hpp"
#include "http/worker_pool.hpp"

namespace gatehouse {

namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
// A connection's socket and timers use the io_context's own executor type, not
// any_io_executor: each asynchronous operation copies its executor, and the
// type-erased one costs an indirect copy and destroy each time.
using Executor = net::io_context::executor_type;
using Socket = tcp::socket::rebind_executor<Executor>::other;
using Timer = net::basic_waitable_timer<std::chrono::steady_clock,
                                        net::wait_traits<std::chrono::steady_clock>, Executor>;
// A request's fields, allocated from its connection's arena (FieldArena).
using FieldAllocator = std::pmr::polymorphic_allocator<char>;
using Fields = bhttp::basic_fields<FieldAllocator>;

// The first field named `name` (ASCII case-insensitively), as basic_fields::find gives
// it, by a walk of the few fields in arrival order rather than a search of Beast's
// name index, whose every step compares names case-insensitively.
template <class FieldsT>
const typename FieldsT::value_type* first_field(const FieldsT& f, std::string_view name) {
  for (const auto& field : f) {
    const auto n = field.name_string();
    if (n.size() == name.size() && http::ascii_iequals(n, name)) return &field;
  }
  return nullptr;
}

std::optional<std::string_view> lookup_header(const void* fields, std::string_view name) {
  const auto* field = first_field(*static_cast<const Fields*>(fields), name);
  if (field == nullptr) return std::nullopt;
  return field->value();
}

// A header value without the spaces and tabs around it.
std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// RFC 9110 §7.2: Host = uri-host [ ":" port ] (RFC 3986 §3.2.2), or empty. A comma is
// a legal reg-name character but no host name has one: a comma here is two Host
// values joined into a list by whoever forwarded the request, which is as bad as two
// Host lines.
bool valid_host(std::string_view v) {
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  auto name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("-._~!$&'()*+;=").find(c) != std::string_view::npos;
  };
  std::string_view host = v;
  std::string_view port;
  if (!v.empty() && v.front() == '[') {
    const auto close = v.find(']');
    if (close == std::string_view::npos) return false;
    const auto literal = v.substr(1, close - 1);
    const auto rest = v.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    if (!rest.empty()) port = rest.substr(1);
    beast::error_code ec;
    net::ip::make_address_v6(std::string(literal), ec);
    if (ec) {
      // IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
      const auto dot = literal.find('.');
      if (literal.size() < 4 || (literal[0] != 'v' && literal[0] != 'V') || dot == 1 ||
          dot == std::string_view::npos || dot + 1 == literal.size() ||
          !std::all_of(literal.begin() + 1, literal.begin() + static_cast<long>(dot), hex) ||
          !std::all_of(literal.begin() + static_cast<long>(dot) + 1, literal.end(),
                       [&](char c) { return name_char(c) || c == ':'; })) {
        return false;
      }
    }
  } else {
    const auto colon = v.find(':');
    if (colon != std::string_view::npos) {
      host = v.substr(0, colon);
      port = v.substr(colon + 1);
    }
    for (std::size_t i = 0; i < host.size(); ++i) {
      if (host[i] == '%') {
        if (i + 2 >= host.size() || !hex(host[i + 1]) || !hex(host[i + 2])) return false;
        i += 2;
      } else if (!name_char(host[i])) {
        return false;
      }
    }
  }
  return std::all_of(port.begin(), port.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

// A request body that grows with the bytes that arrive. Beast's string_body reserves
// the announced Content-Length at once, so a client announcing 64 KiB and sending one
// byte would pin 64 KiB per connection; here the string doubles as bytes come, never
// past what was announced.
struct ArrivingBody {
  using value_type = std::string;
  static std::uint64_t size(const value_type& body) { return body.size(); }

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(bhttp::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>& length, beast::error_code& ec) {
      announced_ = length ? *length : std::numeric_limits<std::uint64_t>::max();
      ec = {};
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      const std::size_t extra = net::buffer_size(buffers);
      const std::size_t size = body_.size();
      if (extra > body_.max_size() - size) {
        ec = bhttp::error::buffer_overflow;
        return 0;
      }
      if (size + extra > body_.capacity()) {
        const std::uint64_t doubled = std::max<std::uint64_t>(size + extra, 2 * body_.capacity());
        body_.reserve(static_cast<std::size_t>(
            std::max<std::uint64_t>(size + extra, std::min(doubled, announced_))));
      }
      for (auto b : beast::buffers_range_ref(buffers)) {
        body_.append(static_cast<const char*>(b.data()), b.size());
      }
      ec = {};
      return extra;
    }

    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
    std::uint64_t announced_ = std::numeric_limits<std::uint64_t>::max();
  };
};

// Beast's request parser, except that trailer fields are dropped as they are parsed.
// RFC 9110 §6.5.1: a recipient must not merge trailer fields into the header section
// unless the field's definition says how, and none of the fields this server reads
// allows it (Authorization, Host, X-Forwarded-Proto, Connection, Content-Type...).
// Beast's parser adds trailers to the message's fields, where they would answer every
// header lookup (and a duplicate name is even kept next to the header's own), so they
// are not stored at all: nothing downstream (routing, authentication, redirects, logs)
// can see them. h11, under the FastAPI reference, does not merge them either. Trailer
// fields that describe framing (Content-Length, Transfer-Encoding) are still refused
// by Beast's own checks (400).
//
// Its fields are allocated from the session's arena (FieldArena), not one by one from
// the heap; the arena is emptied when the parser is gone.
class RequestParser final : public bhttp::parser<true, ArrivingBody, FieldAllocator> {
 public:
  explicit RequestParser(std::pmr::memory_resource* arena)
      : parser(std::piecewise_construct, std::make_tuple(),
               std::make_tuple(FieldAllocator(arena))) {}

 private:
  void on_field_impl(bhttp::field name, beast::string_view name_string, beast::string_view value,
                     beast::error_code& ec) override {
    ec = {};
    if (is_header_done()) return;  // a trailer
    get().insert(name, name_string, value);
  }
};

// A connection's memory for the fields of the request it reads: room for a typical
// header inline, more from the heap while a larger one is read, all of it free again
// once the request is done.
class FieldArena {
 public:
  std::pmr::memory_resource* resource() { return &arena_; }
  void release() { arena_.release(); }

 private:
  alignas(std::max_align_t) std::array<std::byte, 512> inline_{};
  std::pmr::monotonic_buffer_resource arena_{inline_.data(), inline_.size(),
                                             std::pmr::new_delete_resource()};
};

// A buffer that grew past this after a request is given back.
constexpr std::size_t kKeepBytes = 8 * 1024;
// Once sessions have given back this much, the allocator is asked (a second later, so
// once per burst) to return its free pages to the system.
constexpr std::size_t kTrimAfterBytes = 4 * 1024 * 1024;
// What a connection costs beyond the Session object and its buffers (socket state,
// reactor entry, timer), for the count above.
constexpr std::size_t kConnectionBytes = 2 * 1024;

// The Date header, formatted once per second per thread.
const std::string& http_date() {
  thread_local std::time_t last = 0;
  thread_local std::string value;
  std::time_t now = std::time(nullptr);
  if (now != last) {
    last = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    value = buf;
  }
  return value;
}

// A request id is at most this long, and made of these characters only; anything
// else a client sends is replaced by one the server makes.
constexpr std::size_t kMaxRequestId = 128;

bool sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestId) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-' || c == '/' || c == '+' ||
                    c == '=';
    if (!ok) return false;
  }
  return true;
}

// 16 hex digits from a per-thread generator (splitmix64): unique in practice, no
// lock, no system call.
std::size_t make_request_id(char* out) {
  thread_local std::uint64_t state = [] {
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd();
  }();
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out[i] = kHex[z & 15];
    z >>= 4;
  }
  return 16;
}

class Session;

http::WorkerPool::Priority pool_priority(ServerOptions::WorkerPriority p) {
  switch (p) {
    case ServerOptions::WorkerPriority::idle:
      return http::WorkerPool::Priority::idle;
    case ServerOptions::WorkerPriority::low:
      return http::WorkerPool::Priority::low;
    case ServerOptions::WorkerPriority::normal:
      return http::WorkerPool::Priority::normal;
    case ServerOptions::WorkerPriority::adaptive:
      break;
  }
  return http::WorkerPool::Priority::adaptive;
}

struct ServerState {
  const App& app;
  const ServerOptions& options;
  Logger& logger;
  Metrics* metrics;  // null when metrics are off
  Histogram* pool_wait = nullptr;
  Counter* pool_raised = nullptr;  // adaptive: logins raised out of SCHED_IDLE after a second
  Counter* pool_rejected = nullptr;
  Counter* connections_accepted = nullptr;
  Counter* connections_refused = nullptr;
  std::atomic<bool> step_refused_told{false};  // adaptive: the warning below, once
  http::WorkerPool pool;
  std::string local_authority;
  std::atomic<bool> draining{false};

  std::mutex sessions_mutex;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  std::size_t admitted = 0;                                 // under sessions_mutex
  std::unordered_map<std::string, std::size_t> per_client;  // under sessions_mutex

  // Bytes sessions gave back since the allocator last returned free pages.
  std::atomic<std::size_t> given_back{0};
  std::atomic<bool> trim_scheduled{false};
  std::atomic<bool> trim_enabled{false};
  std::optional<net::steady_timer> trim_timer;  // on the first I/O context

  // Requests moved off an I/O thread because their store would block there (see
  // ServerOptions::store_threads); made on first use, so a server whose store never
  // blocks (SQLite) starts no such thread.
  http::WorkerPool& store_pool() {
    std::call_once(store_pool_once, [this] {
      store_pool_ = std::make_unique<http::WorkerPool>(
          options.store_threads != 0 ? options.store_threads : 1,
          options.store_queue != 0 ? options.store_queue : 1, http::WorkerPool::WaitObserver{},
          http::WorkerPool::Priority::normal);
    });
    return *store_pool_;
  }
  void stop_store_pool() {
    if (store_pool_) store_pool_->stop(/*run_pending=*/false);
  }
  std::once_flag store_pool_once;
  std::unique_ptr<http::WorkerPool> store_pool_;

  // Gauges and readiness checks reading this state; declared last so they end first.
  std::vector<Registration> registrations;

  ServerState(const App& a, const ServerOptions& o, unsigned workers)
      : app(a),
        options(o),
        logger(o.logger ? *o.logger : *a.logger()),
        metrics(o.metrics ? a.metrics().get() : nullptr),
        pool_wait(metrics == nullptr
                      ? nullptr
                      : &metrics->histogram("gatehouse_hash_pool_wait_seconds",
                                            "Time offloaded requests (logins) waited for a "
                                            "hashing thread.")),
        pool_raised(metrics == nullptr
                        ? nullptr
                        : &metrics->counter("gatehouse_hash_pool_raised_total",
                                            "Logins still hashing after a second under "
                                            "SCHED_IDLE, raised out of it to nice 19 (then "
                                            "15 and 10 if they run on; hash-priority "
                                            "adaptive): the CPU was busy with other work.")),
        pool(
            workers, o.worker_queue,
            pool_wait == nullptr ? http::WorkerPool::WaitObserver{}
                                 : [h = pool_wait](auto d) { h->observe(d); },
            pool_priority(o.worker_priority), o.worker_raise_after,
            [this](std::size_t step, bool taken) { pool_stepped(step, taken); }) {
    if (metrics != nullptr) {
      pool_rejected = &metrics->counter("gatehouse_hash_pool_rejected_total",
                                        "Offloaded requests refused with 503 because the "
                                        "hashing queue was full.");
      connections_accepted = &metrics->counter("gatehouse_http_connections_accepted_total",
                                               "TCP connections accepted.");
      connections_refused =
          &metrics->counter("gatehouse_http_connections_refused_total",
                            "TCP connections closed at once because max_connections were open.");
    }
  }

  std::size_t session_count() {
    std::lock_guard lock(sessions_mutex);
    return sessions.size();
  }

  // Whose connection this is, for the per-client cap: the IPv4 address, or the /64 of
  // an IPv6 one (what one subscriber is given). Empty: not capped (a trusted proxy, or
  // no per-client cap).
  std::string client_key(const net::ip::address& peer) const {
    if (options.max_connections_per_client == 0) return {};
    net::ip::address addr = peer;
    if (peer.is_v6() && peer.to_v6().is_v4_mapped()) {
      addr = net::ip::make_address_v4(net::ip::v4_mapped, peer.to_v6());
    }
    const std::string text = addr.to_string();
    for (const auto& ip : options.forwarded_allow_ips) {
      if (ip == "*" || ip == text || ip == peer.to_string()) return {};
    }
    if (addr.is_v4()) return text;
    auto bytes = addr.to_v6().to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), static_cast<unsigned char>(0));
    return net::ip::address_v6(bytes).to_string() + "/64";
  }

  enum class Admission { ok, server_full, client_full };
  Admission admit(const std::string& key) {
    std::lock_guard lock(sessions_mutex);
    if (admitted >= options.max_connections) return Admission::server_full;
    if (!key.empty()) {
      auto [it, added] = per_client.try_emplace(key, 0);
      if (it->second >= options.max_connections_per_client) return Admission::client_full;
      ++it->second;
    }
    ++admitted;
    return Admission::ok;
  }

  void leave(const std::string& key) {
    std::lock_guard lock(sessions_mutex);
    --admitted;
    if (key.empty()) return;
    if (auto it = per_client.find(key); it != per_client.end() && --it->second == 0) {
      per_client.erase(it);
    }
  }

  // Freed memory stays in the allocator's free lists (glibc keeps freed pages of its
  // per-thread heaps until asked), so after a burst of large requests the process would
  // keep its peak size. Sessions count what they give back; past kTrimAfterBytes,
  // malloc_trim runs a second later, on the first I/O thread, once for the whole burst.
  void give_back(std::size_t bytes) {
    if (given_back.fetch_add(bytes, std::memory_order_relaxed) + bytes < kTrimAfterBytes) return;
    if (!trim_enabled.load() || trim_scheduled.exchange(true)) return;
    net::post(trim_timer->get_executor(), [this] {
      trim_timer->expires_after(std::chrono::seconds(1));
      trim_timer->async_wait([this](beast::error_code ec) {
        given_back = 0;
        trim_scheduled = false;
#if defined(__GLIBC__)
        if (!ec) malloc_trim(0);
#else
        (void)ec;
#endif
      });
    });
  }

  // adaptive: each step the hashing pool's guard took (on its thread). The first one
  // counts as a raise; one the kernel refused means the limits changed since the start-up
  // probe held (prlimit on the running process, say), told once.
  void pool_stepped(std::size_t step, bool taken) {
    if (taken) {
      if (step == 0 && pool_raised != nullptr) pool_raised->inc();
      return;
    }
    if (step_refused_told.exchange(true)) return;
    const int nice = http::WorkerPool::kAgingNice[step];
    logger.event(LogLevel::warning, "hash_priority",
                 {{"message", "the kernel refused to raise a hashing thread to nice " +
                                  std::to_string(nice) + (step == 0 ? " out of SCHED_IDLE" : "") +
                                  " (RLIMIT_NICE lowered since start?): long logins get less "
                                  "CPU than hash-priority adaptive gives them; restart the "
                                  "server to run the hashing threads at nice 10 (low)"},
                  {"step", step},
                  {"nice", nice}});
  }
};

// A connection over a cap: a 503 with a JSON body, then closed. The answer is one
// small write to a fresh socket, so it goes out at once; whatever the client already
// sent is read first, so that closing sends a FIN and not a reset that could destroy
// the answer before the client reads it.
void refuse(Socket& socket, const ServerState& state, std::string_view remote,
            std::string_view detail) {
  boost::json::object body;
  body["detail"] = detail;
  const std::string json = boost::json::serialize(body);
  std::string out = "HTTP/1.1 503 Service Unavailable\r\nDate: ";
  out += http_date();
  out += "\r\nServer: gatehouse\r\nRetry-After: 1\r\nContent-Type: application/json\r\n";
  out += "Connection: close\r\nContent-Length: " + std::to_string(json.size()) + "\r\n\r\n";
  out += json;
  const int fd = socket.native_handle();
  if (::send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
    // Gone already: nothing to answer.
  }
  std::array<char, 4096> sink{};
  for (int i = 0; i < 16 && ::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT) > 0; ++i) {
  }
  beast::error_code ec;
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
  if (state.connections_refused != nullptr) state.connections_refused->inc();
  if (state.metrics != nullptr) {
    state.metrics->request(state.metrics->rejected_slot(), 503, std::chrono::nanoseconds{0});
  }
  if (state.options.access_log) {
    char id[16];
    const std::size_t len = make_request_id(id);
    state.logger.access({.request_id = std::string_view(id, len),
                         .remote = remote,
                         .method = "-",
                         .path = "-",
                         .route = Metrics::kRejected,
                         .status = 503});
  }
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `client_key`: what the listener admitted it under (ServerState::admit).
  Session(Socket socket, ServerState& state, std::string remote, std::string client_key)
      : stream_(std::move(socket)),
        state_(state),
        // Unparsed bytes are bounded too: chunk extensions and trailers count against
        // neither the header nor the body limit (overflow: 400 and close).
        buffer_(state.options.header_limit + state.app.max_body_bytes + 16 * 1024),
        remote_(std::move(remote)),
        client_key_(std::move(client_key)) {
    for (const auto& ip : state_.options.forwarded_allow_ips) {
      trusted_proxy_ = trusted_proxy_ || ip == "*" || ip == remote_;
    }
  }

  ~Session() {
    {
      std::lock_guard lock(state_.sessions_mutex);
      state_.sessions.erase(this);
    }
    state_.leave(client_key_);
    std::size_t held = sizeof(Session) + kConnectionBytes + buffer_.capacity() + out_.capacity() +
                       drain_.capacity();
    if (parser_) held += header_bytes_ + parser_->get().body().capacity();
    state_.give_back(held);
  }

  void start() {
    {
      std::lock_guard lock(state_.sessions_mutex);
      state_.sessions.emplace(this, weak_from_this());
    }
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

  // Graceful shutdown: an idle connection closes now, a busy one after its answer.
  void on_shutdown() {
    if (idle_) {
      beast::error_code ec;
      stream_.shutdown(tcp::socket::shutdown_both, ec);
      stream_.close(ec);
    }
  }

  net::any_io_executor executor() { return stream_.get_executor(); }

 private:
  void do_read() {
    if (state_.draining) return close();
    // Nothing of the previous request may reach this one's log line.
    request_ = Request{};
    request_id_len_ = 0;
    send_request_id_ = false;
    recorded_ = false;
    started_ = {};
    fields_ = {};
    parser_.reset();
    field_arena_.release();
    parser_.emplace(field_arena_.resource());
    parser_->header_limit(static_cast<std::uint32_t>(state_.options.header_limit));
    parser_->body_limit(state_.app.max_body_bytes);
    idle_ = buffer_.size() == 0;
    expires_after(state_.options.read_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t header_bytes) {
    idle_ = false;
    if (ec) return fail(ec);
    started_ = std::chrono::steady_clock::now();
    header_bytes_ = header_bytes;
    // RFC 9112 §6.1: a request whose Transfer-Encoding is not exactly "chunked" (the
    // only coding supported) has no body length we can trust: 400 and close, so
    // nothing after it can be read as a smuggled request. The same for any
    // Transfer-Encoding in an HTTP/1.0 request, whose framing the RFC says to treat as
    // faulty: an HTTP/1.0 proxy in front may not have decoded the chunks and would
    // have sent what follows them as a request of its own (h11 answers 400 too).
    scan_fields();
    if (fields_.transfer_encoding != nullptr) {
      if (!http::ascii_iequals(trim_ows(fields_.transfer_encoding->value()), "chunked") ||
          fields_.transfer_encodings > 1 || parser_->get().version() < 11) {
        return respond_error(400, "Bad Request");
      }
    }
    if (parser_->is_done()) return on_request();
    // The header's bytes are parsed: a buffer that grew for a large header is given
    // back before the body, which is read into a buffer sized to what arrives.
    shrink_buffer();
    auto& req = parser_->get();
    auto expect = req[bhttp::field::expect];
    if (http::ascii_iequals(expect, "100-continue") && req.version() >= 11) {  // RFC 9110 §10.1.1
      continue_.emplace(bhttp::status::continue_, req.version());
      bhttp::async_write(stream_, *continue_,
                         [self = shared_from_this()](beast::error_code e, std::size_t) {
                           if (e) return self->fail(e);
                           self->read_body();
                         });
      return;
    }
    read_body();
  }

  // The fields on_header and on_request look at, found in one walk of the header.
  struct ScannedFields {
    const Fields::value_type* host = nullptr;  // the first Host
    std::size_t hosts = 0;
    const Fields::value_type* transfer_encoding = nullptr;  // the first
    std::size_t transfer_encodings = 0;
    const Fields::value_type* request_id = nullptr;  // the first X-Request-Id
  };

  void scan_fields() {
    fields_ = {};
    for (const auto& field : parser_->get()) {
      switch (field.name()) {
        case bhttp::field::host:
          if (fields_.hosts++ == 0) fields_.host = &field;
          break;
        case bhttp::field::transfer_encoding:
          if (fields_.transfer_encodings++ == 0) fields_.transfer_encoding = &field;
          break;
        default:
          if (fields_.request_id == nullptr && field.name_string().size() == 12 &&
              http::ascii_iequals(field.name_string(), "X-Request-Id")) {
            fields_.request_id = &field;
          }
          break;
      }
    }
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return self->fail(ec);
                        self->on_request();
                      });
  }

  void on_request() {
    auto& req = parser_->get();
    // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host (h11 agrees), and for any
    // request with more than one Host line or a Host that is not uri-host[:port].
    if (fields_.host == nullptr) {
      if (req.version() >= 11) return respond_error(400, "Bad Request");
    } else if (fields_.hosts > 1 || !valid_host(fields_.host->value())) {
      return respond_error(400, "Bad Request");
    }
    auto target = req.target();
    auto raw_path = target.substr(0, target.find('?'));
    request_ = Request(req.method_string(), target, http::unquote(raw_path), req.body(),
                       &req.base(), &lookup_header);
    request_.set_local_authority(state_.local_authority);
    client_ = remote_;
    if (trusted_proxy_) {
      // uvicorn's ProxyHeadersMiddleware: the last X-Forwarded-Proto, stripped.
      std::string_view proto;
      auto [first, last] = req.equal_range("X-Forwarded-Proto");
      for (auto it = first; it != last; ++it) proto = trim_ows(it->value());
      if (!proto.empty()) request_.set_scheme(proto);
      client_ = forwarded_client(req);
    }
    // The request id: the client's when it is sane, else a new one.
    send_request_id_ = state_.options.always_send_request_id;
    request_id_len_ = 0;
    if (fields_.request_id != nullptr) {
      auto v = trim_ows(fields_.request_id->value());
      if (sane_request_id(v)) {
        std::copy(v.begin(), v.end(), request_id_);
        request_id_len_ = v.size();
        send_request_id_ = true;
      }
    }
    if (request_id_len_ == 0) request_id_len_ = make_request_id(request_id_);
    request_.set_request_id(std::string_view(request_id_, request_id_len_));
    request_.set_client_host(client_);
    auto dispatch = state_.app.dispatch(request_);
    if (dispatch.route == nullptr) {
      slot_ = state_.metrics != nullptr ? state_.metrics->unmatched_slot() : 0;
      route_label_ = Metrics::kUnmatched;
      return respond(std::move(*dispatch.response));
    }
    slot_ = dispatch.route->index;
    route_label_ = dispatch.route->path;
    const Route* route = dispatch.route;
    // The I/O thread tries first. A store that would have to wait for its database
    // here throws WouldBlock (this thread holds a BlockingForbidden), and the
    // request moves to a pool where waiting is allowed.
    bool precheck_there = false;
    try {
      if (auto early = state_.app.precheck(*route, request_)) return respond(std::move(*early));
    } catch (const WouldBlock&) {
      precheck_there = true;
    }
    if (state_.app.offloads(*route, request_)) {
      // Blocking work (password hashing) goes to the worker pool.
      return offload(state_.pool, route, precheck_there, std::nullopt,
                     "Service Unavailable: too many requests in progress");
    }
    if (!precheck_there) {
      std::optional<Response> answer;
      try {
        answer = state_.app.run(*route, request_);
      } catch (const WouldBlock&) {
      }
      if (answer && !answer->later) return respond(std::move(*answer));
      if (answer) {
        // Answered later by another thread (Response::deferred): wait without a thread.
        expires_never();
        waiting_ = true;
        running_ = true;  // under way: a half-close needs no probe
        answer_when_done(*answer->later);
        return watch_peer();
      }
    }
    offload(state_.store_pool(), route, precheck_there, state_.options.store_queue_timeout,
            "Service Unavailable: too many requests waiting for the database");
  }

  // Runs the route (after its precheck, when `precheck_first`) on `pool`; the answer
  // comes back to this I/O thread. A full queue, or a wait longer than `max_wait`,
  // answers 503 with `busy` and Retry-After.
  void offload(http::WorkerPool& pool, const Route* route, bool precheck_first,
               std::optional<std::chrono::milliseconds> max_wait, std::string_view busy) {
    const bool hashing = &pool == &state_.pool;
    expires_never();
    waiting_ = true;
    const auto queued_at = std::chrono::steady_clock::now();
    bool queued = pool.try_submit([self = shared_from_this(), route, precheck_first, max_wait,
                                   queued_at, busy = std::string(busy)] {
      self->running_ = true;
      if (self->peer_left()) {
        // The client left while the request waited (it timed out, or gave up): do not
        // spend a password hash on an answer nobody will read.
        net::post(self->stream_.get_executor(), [self] { self->close(); });
        return;
      }
      Response res;
      if (max_wait && std::chrono::steady_clock::now() - queued_at > *max_wait) {
        res = HttpException(503, busy, {{"Retry-After", "1"}}).to_response();
      } else {
        try {
          std::optional<Response> early;
          if (precheck_first) early = self->state_.app.precheck(*route, self->request_);
          res = early ? std::move(*early) : self->state_.app.run(*route, self->request_);
        } catch (const WouldBlock&) {
          // Only thrown where blocking is forbidden, which a worker thread never is.
          res = HttpException(503, busy, {{"Retry-After", "1"}}).to_response();
        }
      }
      if (res.later) return self->answer_when_done(*res.later);
      net::post(self->stream_.get_executor(),
                [self, res = std::move(res)]() mutable { self->answer(std::move(res)); });
    });
    if (!queued) {
      waiting_ = false;
      if (hashing && state_.pool_rejected != nullptr) state_.pool_rejected->inc();
      return respond(HttpException(503, std::string(busy), {{"Retry-After", "1"}}).to_response());
    }
    watch_peer();
  }

  // uvicorn's ProxyHeadersMiddleware (0.30+): the X-Forwarded-For entries are read from
  // the right, skipping trusted proxies; the first other address is the client. An
  // entry that is not an IP address ends the walk (the peer's address stays).
  std::string forwarded_client(const Fields& req) const {
    std::vector<std::string_view> hops;
    auto [first, last] = req.equal_range("X-Forwarded-For");
    for (auto it = first; it != last; ++it) {
      std::string_view v = it->value();
      while (!v.empty()) {
        auto comma = v.find(',');
        hops.push_back(trim_ows(v.substr(0, comma)));
        v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
      }
    }
    std::string client = remote_;
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
      beast::error_code ec;
      auto address = net::ip::make_address(std::string(*it), ec);
      if (ec) break;
      client = address.to_string();
      bool trusted = false;
      for (const auto& ip : state_.options.forwarded_allow_ips) {
        trusted = trusted || ip == "*" || ip == client;
      }
      if (!trusted) break;
    }
    return client;
  }

  // While a request waits for the pool, the session watches its socket. The end of
  // the client's stream (FIN) means either a half-close, after which the client still
  // reads the answer (RFC 9112 §9.6 lets it), or a close: it has gone. TCP tells the
  // two apart only when data arrives at a closed socket, which answers with a reset.
  // So on a FIN the session writes an interim "100 Continue" (for HTTP/1.1; RFC 9110
  // §15.2: a client must parse and may ignore 1xx it did not expect, and 100 says what
  // is true here: the request was received, the answer follows). A client that left
  // resets the connection, and the worker sees that before it hashes (peer_left); a
  // client that half-closed reads on and gets its answer.
  void watch_peer() {
    stream_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      if (ec || !self->waiting_) return;
      char c = 0;
      const ssize_t n = ::recv(self->stream_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return self->watch_peer();
      }
      // n > 0: the next request is arriving; n < 0: a reset, which peer_left sees;
      // a request already running needs no probe: its answer is on the way.
      if (n == 0 && !self->running_ && self->parser_->get().version() >= 11) {
        self->probe_peer();
      }
    });
  }

  void probe_peer() {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    probing_ = true;
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](beast::error_code, std::size_t) {
                       self->probing_ = false;
                       if (!self->held_) return;
                       Response r = std::move(*self->held_);
                       self->held_.reset();
                       self->respond(std::move(r));
                     });
  }

  // A deferred answer goes to answer() on this I/O thread, from whichever thread
  // completes it.
  void answer_when_done(Later& later) {
    later.then([self = shared_from_this()](Response r) {
      net::post(self->stream_.get_executor(),
                [self, r = std::move(r)]() mutable { self->answer(std::move(r)); });
    });
  }

  // The worker's answer, on this I/O thread: after the probe if one is being written.
  void answer(Response r) {
    waiting_ = false;
    running_ = false;
    if (probing_) {
      held_ = std::move(r);
      return;
    }
    beast::error_code ec;
    stream_.cancel(ec);  // the watch
    respond(std::move(r));
  }

  // True when the connection has been reset: the client closed it and its system
  // answered the probe (or anything else) with a reset. A half-close is not leaving.
  // Called on a worker thread; reading the socket's state cannot race with the I/O
  // thread, which only waits on it meanwhile.
  bool peer_left() {
    tcp_info info{};
    socklen_t len = sizeof info;
    const auto fd = stream_.native_handle();
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return false;
    return info.tcpi_state == TCP_CLOSE;
  }

  void respond(Response r) {
    if (r.not_before != std::chrono::steady_clock::time_point{} &&
        r.not_before > std::chrono::steady_clock::now()) {
      // Held on a timer, not in a thread: see RequestContext::respond_not_before.
      delay_.expires_at(r.not_before);
      r.not_before = {};
      expires_never();  // no read or write is under way meanwhile
      delay_.async_wait([self = shared_from_this(), r = std::move(r)](beast::error_code) mutable {
        self->respond(std::move(r));
      });
      return;
    }
    const auto& req = parser_->get();
    const bool head = req.method() == bhttp::verb::head;
    bool keep_alive = req.keep_alive() && !state_.draining;
    record(req.method_string(), request_.path(), r.status);
    if (send_request_id_) {
      r.headers.emplace_back("X-Request-Id", std::string(request_.request_id()));
    }
    expires_after(state_.options.read_timeout);
    if (!r.file_path.empty()) return respond_file(std::move(r), keep_alive, head);
    // The head and body go out as one contiguous buffer the session keeps between
    // requests: no allocation once it has grown, one sendmsg per answer.
    // It is written through a pointer into a buffer sized for its worst case first.
    using namespace std::string_view_literals;
    const auto reason = bhttp::obsolete_reason(bhttp::int_to_status(r.status));
    const std::string& date = http_date();
    std::size_t bound =
        160 + reason.size() + date.size() + r.content_type.size() + (head ? 0 : r.body.size());
    for (const auto& [name, value] : r.headers) bound += name.size() + value.size() + 4;
    out_.clear();
    out_.resize(bound);
    char* p = out_.data();
    p = put(p, "HTTP/1.1 "sv);
    p = std::to_chars(p, p + 20, r.status).ptr;
    *p++ = ' ';
    p = put(p, std::string_view(reason.data(), reason.size()));
    p = put(p, "\r\nDate: "sv);
    p = put(p, date);
    p = put(p, "\r\nServer: gatehouse\r\n"sv);
    for (const auto& [name, value] : r.headers) p = put_header(p, name, value);
    if (!r.content_type.empty()) p = put_header(p, "Content-Type"sv, r.content_type);
    if (!keep_alive) {
      p = put(p, "Connection: close\r\n"sv);
    } else if (req.version() < 11) {
      p = put(p, "Connection: keep-alive\r\n"sv);
    }
    p = put(p, "Content-Length: "sv);
    p = std::to_chars(p, p + 20, r.body.size()).ptr;
    p = put(p, "\r\n\r\n"sv);
    if (!head) p = put(p, r.body);
    out_.resize(static_cast<std::size_t>(p - out_.data()));
    net::async_write(
        stream_, net::buffer(out_),
        beast::bind_front_handler(&Session::on_write, shared_from_this(), !keep_alive));
  }

  // Counts the answer in the metrics and writes its access-log line.
  void record(std::string_view method, std::string_view path, unsigned status) {
    if (recorded_ || (state_.metrics == nullptr && !state_.options.access_log)) return;
    recorded_ = true;
    const auto took = started_ == std::chrono::steady_clock::time_point{}
                          ? std::chrono::nanoseconds{0}
                          : std::chrono::steady_clock::now() - started_;
    if (state_.metrics != nullptr) state_.metrics->request(slot_, status, took);
    if (state_.options.access_log) {
      state_.logger.access({.request_id = request_.request_id(),
                            .remote = remote_,
                            .method = method,
                            .path = path,
                            .route = route_label_,
                            .status = status,
                            .duration = took,
                            .user = request_.log_user()});
    }
  }

  static char* put(char* p, std::string_view s) {
    if (!s.empty()) std::memcpy(p, s.data(), s.size());  // an empty view's data may be null
    return p + s.size();
  }

  // A header line at `p` (name, value and 4 bytes); CR and LF in a value become
  // spaces, so no value can add a header.
  static char* put_header(char* p, std::string_view name, std::string_view value) {
    p = put(p, name);
    *p++ = ':';
    *p++ = ' ';
    for (char c : value) *p++ = (c == '\r' || c == '\n') ? ' ' : c;
    *p++ = '\r';
    *p++ = '\n';
    return p;
  }

  void respond_file(Response r, bool keep_alive, bool head) {
    bhttp::file_body::value_type body;
    beast::error_code ec;
    body.open(r.file_path.c_str(), beast::file_mode::scan, ec);
    if (ec) {
      r = HttpException(404, "Not Found").to_response();
      r.file_path.clear();
      return respond(std::move(r));
    }
    file_res_.emplace();
    auto& res = *file_res_;
    res.version(parser_->get().version());
    res.result(r.status);
    res.set(bhttp::field::date, http_date());
    res.set(bhttp::field::server, "gatehouse");
    for (auto& [name, value] : r.headers) res.insert(name, value);
    res.set(bhttp::field::content_type, r.content_type);
    res.keep_alive(keep_alive);
    res.content_length(body.size());
    if (!head) res.body() = std::move(body);
    bhttp::async_write(
        stream_, res,
        [self = shared_from_this(), close = !keep_alive](beast::error_code e, std::size_t n) {
          self->file_res_.reset();
          self->on_write(close, e, n);
        });
  }

  void on_write(bool close_after, beast::error_code ec, std::size_t) {
    if (ec) return close();
    if (close_after) return linger();
    release_request();
    do_read();
  }

  // Between requests a connection keeps only small buffers: the parsed request goes
  // now (not when the next one starts), and a buffer that a large request grew is
  // given back.
  void release_request() {
    std::size_t freed = 0;
    if (parser_) {
      const std::size_t held = header_bytes_ + parser_->get().body().capacity();
      if (held > kKeepBytes) freed += held;
      request_ = Request();
      fields_ = {};
      parser_.reset();
      field_arena_.release();
    }
    freed += shrink_buffer();
    if (out_.capacity() > kKeepBytes) {
      freed += out_.capacity();
      std::string().swap(out_);
    }
    if (freed != 0) state_.give_back(freed);
  }

  // Gives back a read buffer that grew past kKeepBytes, keeping what it holds (the
  // start of a pipelined request, or of the body). Returns the bytes freed.
  std::size_t shrink_buffer() {
    if (buffer_.capacity() <= kKeepBytes) return 0;
    const std::size_t freed = buffer_.capacity() - buffer_.size();
    buffer_.shrink_to_fit();
    return freed;
  }

  // Answers what a failed read means, then closes.
  void fail(beast::error_code ec) {
    if (ec == bhttp::error::header_limit) {
      return respond_error(431, "Request Header Fields Too Large");
    }
    if (ec == bhttp::error::body_limit) return respond_error(413, "Request Entity Too Large");
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == bhttp::error::partial_message) {
      return close();
    }
    // Any other parse error (bad request line, field, length, chunk): 400.
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
      return respond_error(400, "Bad Request");
    }
    close();
  }

  void respond_error(unsigned status, std::string_view detail) {
    res_ = {};
    res_.version(11);
    res_.result(status);
    res_.set(bhttp::field::date, http_date());
    res_.set(bhttp::field::server, "gatehouse");
    res_.set(bhttp::field::content_type, "application/json");
    res_.keep_alive(false);
    boost::json::object body;
    body["detail"] = detail;
    res_.body() = boost::json::serialize(body);
    res_.prepare_payload();
    // Refused before routing: no route, no path worth logging.
    if (request_id_len_ == 0) request_id_len_ = make_request_id(request_id_);
    request_.set_request_id(std::string_view(request_id_, request_id_len_));
    slot_ = state_.metrics != nullptr ? state_.metrics->rejected_slot() : 0;
    route_label_ = Metrics::kRejected;
    record("-", "-", status);
    expires_after(std::chrono::seconds(5));
    bhttp::async_write(stream_, res_,
                       beast::bind_front_handler(&Session::on_write, shared_from_this(), true));
  }

  // Half-close, then read and discard for a moment: closing a socket with unread
  // input sends a reset, which can destroy the answer before the client reads it.
  void linger() {
    beast::error_code ec;
    stream_.shutdown(tcp::socket::shutdown_send, ec);
    expires_after(std::chrono::seconds(2));
    drain_.resize(16 * 1024);
    do_drain();
  }
  void do_drain() {
    stream_.async_read_some(net::buffer(drain_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > 1024 * 1024) return self->close();
                              self->do_drain();
                            });
  }

  void close() {
    beast::error_code ec;
    stream_.shutdown(tcp::socket::shutdown_both, ec);
    stream_.close(ec);
  }

  // The connection's deadline: a read or write still under way at `deadline_` is
  // ended by closing the socket (its handler sees operation_aborted and closes), as
  // beast::tcp_stream's timeout would. Setting it is one store of a coarse clock
  // reading (CLOCK_MONOTONIC_COARSE, a few ms behind at most); the one timer is only
  // re-armed when it fires or when a deadline comes earlier than it is set for, not
  // twice per request as tcp_stream's was. Its handler holds a weak reference, so a
  // pending deadline never keeps a finished connection alive.
  static std::chrono::steady_clock::time_point coarse_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) +
                                                 std::chrono::nanoseconds(ts.tv_nsec));
  }

  void expires_after(std::chrono::steady_clock::duration d) {
    deadline_ = coarse_now() + d;
    if (!watching_ || watchdog_.expiry() > deadline_) arm_watchdog();
  }

  void expires_never() { deadline_ = std::chrono::steady_clock::time_point::max(); }

  void arm_watchdog() {
    watching_ = true;
    watchdog_.expires_at(deadline_);
    watchdog_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec == net::error::operation_aborted) return;  // re-armed, or the session ended
      auto self = weak.lock();
      if (!self) return;
      self->watching_ = false;
      if (self->deadline_ == std::chrono::steady_clock::time_point::max()) return;
      if (std::chrono::steady_clock::now() >= self->deadline_) return self->close();
      self->arm_watchdog();
    });
  }

  Socket stream_;
  Timer watchdog_{stream_.get_executor()};
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  bool watching_ = false;
  ServerState& state_;
  beast::flat_buffer buffer_;
  FieldArena field_arena_;  // before parser_, which it outlives
  std::optional<RequestParser> parser_;
  ScannedFields fields_;          // into parser_'s fields, set by on_header
  std::size_t header_bytes_ = 0;  // of the request being handled
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  Request request_;
  bhttp::response<bhttp::string_body> res_;
  std::string out_;
  std::optional<bhttp::response<bhttp::file_body>> file_res_;
  std::string remote_;
  std::string client_;  // remote_, or the client a trusted proxy forwarded for
  net::steady_timer delay_{stream_.get_executor()};
  std::string client_key_;  // for the per-client cap; empty: not counted
  std::vector<char> drain_;
  std::size_t drained_ = 0;
  bool idle_ = false;
  bool waiting_ = false;              // for the worker pool (see watch_peer)
  bool probing_ = false;              // the interim 100 is being written
  std::atomic<bool> running_{false};  // a worker has taken the request
  std::optional<Response> held_;      // the answer, until the probe is written
  bool trusted_proxy_ = false;
  bool send_request_id_ = false;
  bool recorded_ = false;
  std::size_t slot_ = 0;  // the metrics slot: the route's index, or unmatched/rejected
  std::string_view route_label_;
  char request_id_[kMaxRequestId];
  std::size_t request_id_len_ = 0;
  std::chrono::steady_clock::time_point started_;
};

class Listener {
 public:
  Listener(net::io_context& ioc, std::vector<std::unique_ptr<net::io_context>>& contexts,
           tcp::endpoint endpoint, ServerState& state)
      : acceptor_(ioc), retry_(ioc), contexts_(contexts), state_(state) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  void start() { do_accept(); }
  void stop() {
    beast::error_code ec;
    acceptor_.close(ec);
    retry_.cancel();
  }

 private:
  void do_accept() {
    auto& ioc = *contexts_[next_++ % contexts_.size()];
    acceptor_.async_accept(ioc, [this](beast::error_code ec, Socket socket) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) {
        // Out of descriptors or memory: try again shortly instead of spinning.
        retry_.expires_after(std::chrono::milliseconds(100));
        retry_.async_wait([this](beast::error_code e) {
          if (!e && acceptor_.is_open()) do_accept();
        });
        return;
      }
      const auto peer = socket.remote_endpoint(ec);
      if (ec) {
        socket.close(ec);  // gone before it was accepted
        return do_accept();
      }
      std::string key = state_.client_key(peer.address());
      switch (state_.admit(key)) {
        case ServerState::Admission::ok:
          if (state_.connections_accepted != nullptr) state_.connections_accepted->inc();
          socket.set_option(tcp::no_delay(true), ec);
          std::make_shared<Session>(std::move(socket), state_, peer.address().to_string(),
                                    std::move(key))
              ->start();
          break;
        case ServerState::Admission::server_full:
          refuse(socket, state_, peer.address().to_string(),
                 "Service Unavailable: too many connections");
          break;
        case ServerState::Admission::client_full:
          refuse(socket, state_, peer.address().to_string(),
                 "Service Unavailable: too many connections from this client");
          break;
      }
      do_accept();
    });
  }

  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  std::vector<std::unique_ptr<net::io_context>>& contexts_;
  ServerState& state_;
  std::size_t next_ = 0;
};

}  // namespace

struct Server::Impl {
  const App& app;
  ServerOptions options;
  bool handle_signals = false;
  std::mutex mutex;
  // Set while run() serves: starts the graceful shutdown on the I/O thread.
  std::function<void()> begin_shutdown;
  bool stop_called = false;
  Impl(const App& a, ServerOptions o) : app(a), options(std::move(o)) {}
  void run();
};

Server::Server(const App& app, ServerOptions options)
    : impl_(std::make_unique<Impl>(app, std::move(options))) {}
Server::~Server() = default;

void Server::run() { impl_->run(); }

void Server::stop() {
  std::lock_guard lock(impl_->mutex);
  impl_->stop_called = true;
  if (impl_->begin_shutdown) impl_->begin_shutdown();
}

void Server::stop_on_signals() { impl_->handle_signals = true; }

void serve(const App& app, const ServerOptions& options) {
  // A reader of stderr (the log sink) that goes away must not kill the server.
  std::signal(SIGPIPE, SIG_IGN);
  Server server(app, options);
  server.stop_on_signals();
  server.run();
}

void Server::Impl::run() {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const unsigned io_threads = options.io_threads != 0 ? options.io_threads : cores;
  const unsigned workers = options.worker_threads != 0 ? options.worker_threads : cores;

  ServerState state(app, options, workers);
  if (state.metrics != nullptr) {
    std::vector<std::pair<std::string, std::string>> routes;
    for (const auto& r : app.routes()) routes.emplace_back(r->method, r->path);
    state.metrics->set_routes(routes);
    auto& m = *state.metrics;
    state.registrations.push_back(
        m.gauge("gatehouse_http_connections_open", "Client connections open now.", {},
                [&state] { return static_cast<double>(state.session_count()); }));
    state.registrations.push_back(
        m.gauge("gatehouse_hash_pool_queue_depth",
                "Offloaded requests (logins) waiting for a hashing thread.", {},
                [&state] { return static_cast<double>(state.pool.queued()); }));
    state.registrations.push_back(
        m.gauge("gatehouse_hash_pool_queue_capacity",
                "Waiting offloaded requests beyond which new ones get 503.", {},
                [&state] { return static_cast<double>(state.pool.capacity()); }));
    state.registrations.push_back(
        m.gauge("gatehouse_hash_pool_threads", "Hashing threads.", {},
                [&state] { return static_cast<double>(state.pool.threads()); }));
    state.registrations.push_back(
        m.gauge("gatehouse_hash_pool_busy_threads", "Hashing threads running a job now.", {},
                [&state] { return static_cast<double>(state.pool.busy()); }));
  }
  if (state.pool.adaptive_refused()) {
    state.logger.event(LogLevel::warning, "hash_priority",
                       {{"message",
                         "hash-priority adaptive needs RLIMIT_NICE >= 10 (systemd: "
                         "LimitNICE=+10) or CAP_SYS_NICE to raise a hashing thread again; "
                         "running the hashing threads at nice 10 (low) instead"}});
  }
  // Not ready while the hashing queue is full: a login would get 503.
  state.registrations.push_back(app.readiness().add("hash_pool", [&state] {
    const std::size_t queued = state.pool.queued();
    const std::size_t capacity = state.pool.capacity();
    return CheckResult{queued < capacity, std::to_string(queued) + " of " +
                                              std::to_string(capacity) + " queue places taken"};
  }));
  std::vector<std::unique_ptr<net::io_context>> contexts;
  for (unsigned i = 0; i < io_threads; ++i)
    contexts.push_back(std::make_unique<net::io_context>(1));
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  for (auto& c : contexts) guards.push_back(net::make_work_guard(*c));

  state.trim_timer.emplace(*contexts[0]);
  state.trim_enabled = true;

  auto address = net::ip::make_address(options.host);
  Listener listener(*contexts[0], contexts, tcp::endpoint(address, options.port), state);
  const auto port = listener.port();
  state.local_authority = options.host + ":" + std::to_string(port);
  if (address.is_v6()) state.local_authority = "[" + options.host + "]:" + std::to_string(port);

  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stop_requested = false;
  // SIGHUP: run the reload hooks, say what they did, wait for the next one.
  net::signal_set hangup(*contexts[0]);
  std::function<void()> wait_hangup = [&] {
    hangup.async_wait([&](beast::error_code ec, int) {
      if (ec) return;
      boost::json::array done;
      bool all_ok = true;
      for (auto& outcome : options.reload->reload()) {
        all_ok = all_ok && outcome.ok;
        done.push_back(boost::json::object{
            {"name", outcome.name}, {"ok", outcome.ok}, {"result", outcome.message}});
      }
      state.logger.event(all_ok ? LogLevel::info : LogLevel::warning, "reload",
                         {{"signal", "SIGHUP"}, {"reloaded", std::move(done)}},
                         /*always=*/true);
      wait_hangup();
    });
  };
  if (options.reload) {
    hangup.add(SIGHUP);
    wait_hangup();
  }

  // The graceful shutdown, on the first I/O thread: from SIGINT/SIGTERM (serve()) or
  // from Server::stop().
  bool shutting_down = false;
  auto shutdown = [&](const char* cause) {
    if (shutting_down) return;
    shutting_down = true;
    state.logger.event(LogLevel::info, "shutdown",
                       {{cause[0] == 'S' ? "signal" : "requested_by", cause},
                        {"grace_seconds", options.shutdown_grace.count()}});
    listener.stop();
    state.draining = true;
    std::vector<std::shared_ptr<Session>> live;
    {
      std::lock_guard lock(state.sessions_mutex);
      for (auto& [ptr, weak] : state.sessions) {
        if (auto s = weak.lock()) live.push_back(std::move(s));
      }
    }
    for (auto& s : live) net::post(s->executor(), [s] { s->on_shutdown(); });
    std::lock_guard lock(stop_mutex);
    stop_requested = true;
    stop_cv.notify_all();
  };
  net::signal_set signals(*contexts[0]);
  if (handle_signals) {
    signals.add(SIGINT);
    signals.add(SIGTERM);
    signals.async_wait([&](beast::error_code ec, int signal_number) {
      if (!ec) shutdown(signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    });
  }
  {
    std::lock_guard lock(mutex);
    begin_shutdown = [&shutdown, &ioc = *contexts[0]] {
      net::post(ioc, [&shutdown] { shutdown("Server::stop()"); });
    };
    if (stop_called) begin_shutdown();
  }

  listener.start();
  std::vector<std::thread> threads;
  for (auto& c : contexts) {
    threads.emplace_back([&ioc = *c] {
      const BlockingForbidden no_waiting_for_databases;
      ioc.run();
    });
  }
  if (options.on_listening) options.on_listening(port);

  {
    std::unique_lock lock(stop_mutex);
    stop_cv.wait(lock, [&] { return stop_requested; });
  }
  {
    std::lock_guard lock(mutex);
    begin_shutdown = nullptr;  // what it refers to goes with this frame
  }
  // Let requests in flight finish, up to the grace period.
  const auto deadline = std::chrono::steady_clock::now() + options.shutdown_grace;
  while (state.session_count() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& c : contexts) c->stop();
  for (auto& t : threads) t.join();
  // Logins still queued after the grace period would be hashed for nobody: drop them.
  state.pool.stop(/*run_pending=*/false);
  state.stop_store_pool();
  guards.clear();
  // Sessions still owned by handlers go with their io_context, after this timer.
  state.trim_enabled = false;
  state.trim_timer.reset();
  state.registrations.clear();
  // Everything logged up to here reaches the sink before serve() returns.
  state.logger.flush();
}

namespace http {

struct ConnectionHost::Impl {
  ServerState state;
  net::io_context ioc{1};  // destroyed first: pending handlers release their sessions

  Impl(const App& app, const ServerOptions& options)
      : state(app, options, options.worker_threads != 0 ? options.worker_threads : 1) {
    state.local_authority = options.host + ":" + std::to_string(options.port);
  }
  ~Impl() {
    state.pool.stop(/*run_pending=*/false);
    state.stop_store_pool();
  }
};

ConnectionHost::ConnectionHost(const App& app, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(app, options)) {}
ConnectionHost::~ConnectionHost() = default;

net::io_context& ConnectionHost::context() { return impl_->ioc; }

void ConnectionHost::start(int fd) {
  Socket socket(impl_->ioc);
  socket.assign(tcp::v4(), fd);
  // Counted like any connection (not per client: there is no client address).
  if (impl_->state.admit({}) != ServerState::Admission::ok) {
    beast::error_code ec;
    socket.close(ec);
    return;
  }
  std::make_shared<Session>(std::move(socket), impl_->state, std::string(), std::string())->start();
}

void ConnectionHost::run() {
  auto& ioc = impl_->ioc;
  ioc.restart();
  // The guard keeps run_one_for waiting while a session's work is on the worker pool.
  auto guard = net::make_work_guard(ioc);
  const BlockingForbidden no_waiting_for_databases;
  while (impl_->state.session_count() > 0) ioc.run_one_for(std::chrono::milliseconds(100));
  guard.reset();
  ioc.poll();
}

}  // namespace http

}  // namespace gatehouse
