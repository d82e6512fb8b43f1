// The HTTP/1.1 server: listener, sessions, limits, offloading and graceful shutdown.
//
// Roles as in Beast's advanced server: the listener only accepts and hands each socket
// to the next I/O context (one per thread, round-robin); a Session owns its
// read-handle-write loop; App::dispatch/run map a request to a response and never see
// a socket. Limits live where bytes are read: a fresh parser per request with a
// header limit (431) and a body limit (413), a deadline per read (slow clients are
// dropped), and after an error answer the connection is half-closed and drained
// briefly so the client reads the answer instead of a reset.
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

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

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

std::optional<std::string_view> lookup_header(const void* fields, std::string_view name) {
  const auto& f = *static_cast<const bhttp::fields*>(fields);
  auto it = f.find(name);
  if (it == f.end()) return std::nullopt;
  return it->value();
}

// A header value without the spaces and tabs around it.
std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

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

class Session;

struct ServerState {
  const App& app;
  const ServerOptions& options;
  http::WorkerPool pool;
  std::string local_authority;
  std::atomic<bool> draining{false};

  std::mutex sessions_mutex;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  ServerState(const App& a, const ServerOptions& o, unsigned workers)
      : app(a), options(o), pool(workers, o.worker_queue) {}

  std::size_t session_count() {
    std::lock_guard lock(sessions_mutex);
    return sessions.size();
  }
};

void access_log(const ServerState& state, std::string_view remote, std::string_view method,
                std::string_view path, unsigned status, std::chrono::steady_clock::duration took) {
  if (!state.options.access_log) return;
  // Never the query string, headers or body: they can carry tokens and passwords.
  std::string line = "{\"time\":\"";
  char ts[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  line += ts;
  line += "\",\"remote\":";
  line += boost::json::serialize(boost::json::value(remote));
  line += ",\"method\":";
  line += boost::json::serialize(boost::json::value(method));
  line += ",\"path\":";
  line += boost::json::serialize(boost::json::value(path));
  line += ",\"status\":" + std::to_string(status);
  line += ",\"duration_us\":" +
          std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(took).count());
  line += "}\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerState& state)
      : stream_(std::move(socket)),
        state_(state),
        // Unparsed bytes are bounded too: chunk extensions and trailers count against
        // neither the header nor the body limit (overflow: 400 and close).
        buffer_(state.options.header_limit + state.app.max_body_bytes + 16 * 1024) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string();
    for (const auto& ip : state_.options.forwarded_allow_ips) {
      trusted_proxy_ = trusted_proxy_ || ip == "*" || ip == remote_;
    }
  }

  ~Session() {
    std::lock_guard lock(state_.sessions_mutex);
    state_.sessions.erase(this);
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
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_.socket().close(ec);
    }
  }

  net::any_io_executor executor() { return stream_.get_executor(); }

 private:
  void do_read() {
    if (state_.draining) return close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(state_.options.header_limit));
    parser_->body_limit(state_.app.max_body_bytes);
    idle_ = buffer_.size() == 0;
    stream_.expires_after(state_.options.read_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    idle_ = false;
    if (ec) return fail(ec);
    started_ = std::chrono::steady_clock::now();
    // RFC 9112 §6.1: a request whose Transfer-Encoding is not exactly "chunked" (the
    // only coding supported) has no body length we can trust: 400 and close, so
    // nothing after it can be read as a smuggled request.
    if (auto te = parser_->get().find(bhttp::field::transfer_encoding);
        te != parser_->get().end()) {
      if (!http::ascii_iequals(trim_ows(te->value()), "chunked") ||
          parser_->get().count(bhttp::field::transfer_encoding) > 1) {
        return respond_error(400, "Bad Request");
      }
    }
    if (parser_->is_done()) return on_request();
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

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return self->fail(ec);
                        self->on_request();
                      });
  }

  void on_request() {
    auto& req = parser_->get();
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a bad request (h11 agrees).
    if (req.version() >= 11 && req.find(bhttp::field::host) == req.end()) {
      return respond_error(400, "Bad Request");
    }
    auto target = req.target();
    auto raw_path = target.substr(0, target.find('?'));
    request_ = Request(req.method_string(), target, http::unquote(raw_path), req.body(),
                       &req.base(), &lookup_header);
    request_.set_local_authority(state_.local_authority);
    if (trusted_proxy_) {
      // uvicorn's ProxyHeadersMiddleware: the last X-Forwarded-Proto, stripped.
      std::string_view proto;
      auto [first, last] = req.equal_range("X-Forwarded-Proto");
      for (auto it = first; it != last; ++it) proto = trim_ows(it->value());
      if (!proto.empty()) request_.set_scheme(proto);
    }
    auto dispatch = state_.app.dispatch(request_);
    if (dispatch.route == nullptr) return respond(std::move(*dispatch.response));
    if (!dispatch.route->options.offload) return respond(state_.app.run(*dispatch.route, request_));
    // Blocking work goes to the worker pool; the answer comes back to this I/O thread.
    stream_.expires_never();
    const Route* route = dispatch.route;
    bool queued = state_.pool.try_submit([self = shared_from_this(), route] {
      if (self->peer_gone()) {
        // The client left while the request waited (it timed out, or gave up): do not
        // spend a password hash on an answer nobody will read.
        net::post(self->stream_.get_executor(), [self] { self->close(); });
        return;
      }
      Response res = self->state_.app.run(*route, self->request_);
      net::post(self->stream_.get_executor(),
                [self, res = std::move(res)]() mutable { self->respond(std::move(res)); });
    });
    if (!queued) {
      respond(HttpException(503, "Service Unavailable: too many requests in progress",
                            {{"Retry-After", "1"}})
                  .to_response());
    }
  }

  // True when the peer has closed or reset the connection. Only called while the
  // session is not reading, so peeking cannot race with the I/O thread.
  bool peer_gone() {
    char c = 0;
    const auto fd = stream_.socket().native_handle();
    const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

  void respond(Response r) {
    const auto& req = parser_->get();
    const bool head = req.method() == bhttp::verb::head;
    bool keep_alive = req.keep_alive() && !state_.draining;
    access_log(state_, remote_, req.method_string(), request_.path(), r.status,
               std::chrono::steady_clock::now() - started_);
    stream_.expires_after(state_.options.read_timeout);
    if (!r.file_path.empty()) return respond_file(std::move(r), keep_alive, head);
    // The head and body go out as one contiguous buffer the session keeps between
    // requests: no allocation once it has grown, one sendmsg per answer.
    out_.clear();
    out_ += "HTTP/1.1 ";
    out_ += std::to_string(r.status);
    out_ += ' ';
    out_ += bhttp::obsolete_reason(bhttp::int_to_status(r.status));
    out_ += "\r\nDate: ";
    out_ += http_date();
    out_ += "\r\nServer: gatehouse\r\n";
    for (const auto& [name, value] : r.headers) append_header(name, value);
    if (!r.content_type.empty()) append_header("Content-Type", r.content_type);
    if (!keep_alive) {
      out_ += "Connection: close\r\n";
    } else if (req.version() < 11) {
      out_ += "Connection: keep-alive\r\n";
    }
    out_ += "Content-Length: ";
    out_ += std::to_string(r.body.size());
    out_ += "\r\n\r\n";
    if (!head) out_ += r.body;
    net::async_write(
        stream_, net::buffer(out_),
        beast::bind_front_handler(&Session::on_write, shared_from_this(), !keep_alive));
  }

  // A header line; CR and LF in a value become spaces, so no value can add a header.
  void append_header(std::string_view name, std::string_view value) {
    out_ += name;
    out_ += ": ";
    for (char c : value) out_ += (c == '\r' || c == '\n') ? ' ' : c;
    out_ += "\r\n";
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
    do_read();
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
    access_log(state_, remote_, "-", "-", status, std::chrono::steady_clock::duration{});
    stream_.expires_after(std::chrono::seconds(5));
    bhttp::async_write(stream_, res_,
                       beast::bind_front_handler(&Session::on_write, shared_from_this(), true));
  }

  // Half-close, then read and discard for a moment: closing a socket with unread
  // input sends a reset, which can destroy the answer before the client reads it.
  void linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
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
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  ServerState& state_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  Request request_;
  bhttp::response<bhttp::string_body> res_;
  std::string out_;
  std::optional<bhttp::response<bhttp::file_body>> file_res_;
  std::string remote_;
  std::vector<char> drain_;
  std::size_t drained_ = 0;
  bool idle_ = false;
  bool trusted_proxy_ = false;
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
    acceptor_.async_accept(ioc, [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) {
        // Out of descriptors or memory: try again shortly instead of spinning.
        retry_.expires_after(std::chrono::milliseconds(100));
        retry_.async_wait([this](beast::error_code e) {
          if (!e && acceptor_.is_open()) do_accept();
        });
        return;
      }
      if (state_.session_count() >= state_.options.max_connections) {
        socket.close(ec);  // over the cap: refuse this one, keep accepting
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), state_)->start();
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

void serve(const App& app, const ServerOptions& options) {
  // A reader of stderr (the access log) that goes away must not kill the server.
  std::signal(SIGPIPE, SIG_IGN);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const unsigned io_threads = options.io_threads != 0 ? options.io_threads : cores;
  const unsigned workers = options.worker_threads != 0 ? options.worker_threads : cores;

  ServerState state(app, options, workers);
  std::vector<std::unique_ptr<net::io_context>> contexts;
  for (unsigned i = 0; i < io_threads; ++i)
    contexts.push_back(std::make_unique<net::io_context>(1));
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  for (auto& c : contexts) guards.push_back(net::make_work_guard(*c));

  auto address = net::ip::make_address(options.host);
  Listener listener(*contexts[0], contexts, tcp::endpoint(address, options.port), state);
  const auto port = listener.port();
  state.local_authority = options.host + ":" + std::to_string(port);
  if (address.is_v6()) state.local_authority = "[" + options.host + "]:" + std::to_string(port);

  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stop_requested = false;
  net::signal_set signals(*contexts[0], SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code ec, int) {
    if (ec) return;
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
  });

  listener.start();
  std::vector<std::thread> threads;
  for (auto& c : contexts) threads.emplace_back([&ioc = *c] { ioc.run(); });
  if (options.on_listening) options.on_listening(port);

  {
    std::unique_lock lock(stop_mutex);
    stop_cv.wait(lock, [&] { return stop_requested; });
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
  guards.clear();
}

namespace http {

struct ConnectionHost::Impl {
  ServerState state;
  net::io_context ioc{1};  // destroyed first: pending handlers release their sessions

  Impl(const App& app, const ServerOptions& options)
      : state(app, options, options.worker_threads != 0 ? options.worker_threads : 1) {
    state.local_authority = options.host + ":" + std::to_string(options.port);
  }
  ~Impl() { state.pool.stop(/*run_pending=*/false); }
};

ConnectionHost::ConnectionHost(const App& app, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(app, options)) {}
ConnectionHost::~ConnectionHost() = default;

net::io_context& ConnectionHost::context() { return impl_->ioc; }

void ConnectionHost::start(int fd) {
  tcp::socket socket(impl_->ioc);
  socket.assign(tcp::v4(), fd);
  std::make_shared<Session>(std::move(socket), impl_->state)->start();
}

void ConnectionHost::run() {
  auto& ioc = impl_->ioc;
  ioc.restart();
  // The guard keeps run_one_for waiting while a session's work is on the worker pool.
  auto guard = net::make_work_guard(ioc);
  while (impl_->state.session_count() > 0) ioc.run_one_for(std::chrono::milliseconds(100));
  guard.reset();
  ioc.poll();
}

}  // namespace http

}  // namespace gatehouse
