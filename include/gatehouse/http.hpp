// The request and response values that route handlers and dependencies see.
// They know nothing of sockets: the server (src/http) builds a Request from what it
// parsed and turns a Response into bytes, so handlers are tested without a network.
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gatehouse/result.hpp"

namespace gatehouse {

// Name-value pairs (the name Header is the header parameter of params.hpp).
using Headers = std::vector<std::pair<std::string, std::string>>;

// A request as a handler sees it. Views into it are valid while the handler runs.
class Request {
 public:
  // Looks a header up by name, case-insensitively, and returns the first one.
  using HeaderLookup = std::optional<std::string_view> (*)(const void* fields,
                                                           std::string_view name);

  Request() = default;
  Request(std::string_view method, std::string_view target, std::string path, std::string_view body,
          const void* fields, HeaderLookup lookup)
      : method_(method),
        target_(target),
        path_(std::move(path)),
        body_(body),
        fields_(fields),
        lookup_(lookup) {}

  [[nodiscard]] std::string_view method() const noexcept { return method_; }
  // The request target as sent, e.g. "/users/me?x=1".
  [[nodiscard]] std::string_view target() const noexcept { return target_; }
  // The percent-decoded path, as routing matches it (like ASGI's scope["path"]).
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  // The raw query string after '?', empty if none.
  [[nodiscard]] std::string_view query() const noexcept {
    auto q = target_.find('?');
    return q == std::string_view::npos ? std::string_view{} : target_.substr(q + 1);
  }
  [[nodiscard]] std::string_view body() const noexcept { return body_; }
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const {
    if (lookup_ == nullptr) return std::nullopt;
    return lookup_(fields_, name);
  }
  // "host:port" of the listening socket, for absolute URLs when there is no Host header.
  [[nodiscard]] std::string_view local_authority() const noexcept { return local_authority_; }
  void set_local_authority(std::string_view authority) { local_authority_ = authority; }
  // The client's IP address (FastAPI's request.client.host): the peer's, or, when the
  // peer is a trusted proxy (ServerOptions::forwarded_allow_ips), the address its
  // X-Forwarded-For names, as uvicorn's ProxyHeadersMiddleware does. Empty when unknown.
  [[nodiscard]] std::string_view client_host() const noexcept { return client_host_; }
  void set_client_host(std::string_view host) { client_host_ = host; }
  // "http", or what a trusted proxy said in X-Forwarded-Proto (as uvicorn does).
  [[nodiscard]] std::string_view scheme() const noexcept { return scheme_; }
  void set_scheme(std::string_view scheme) { scheme_ = scheme; }
  // The request id of the logs: the client's X-Request-Id when it sent a sane one
  // (up to 128 of A-Z a-z 0-9 . _ : - / + =), else one the server made.
  [[nodiscard]] std::string_view request_id() const noexcept { return request_id_; }
  void set_request_id(std::string_view id) { request_id_ = id; }
  // Who the request authenticated as, for the access log: the dependency that
  // verified the credentials says so (a user or client name, never a secret).
  void set_log_user(std::string_view user) const { log_user_.assign(user); }
  [[nodiscard]] const std::string& log_user() const noexcept { return log_user_; }

 private:
  std::string_view method_;
  std::string_view target_;
  std::string path_;
  std::string_view body_;
  const void* fields_ = nullptr;
  HeaderLookup lookup_ = nullptr;
  std::string_view local_authority_ = "127.0.0.1";
  std::string_view scheme_ = "http";
  std::string_view client_host_;
  std::string_view request_id_;
  mutable std::string log_user_;
};

struct Response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  Headers headers;  // extra headers, e.g. WWW-Authenticate, Location
  // When set, the body is streamed from this file instead (static assets).
  std::string file_path;
  // When set, the answer is not sent before this moment. serve() holds it on a timer
  // (no thread waits); App::handle leaves it to the caller.
  std::chrono::steady_clock::time_point not_before{};
  // When set, this is no answer yet: it comes through `later` (see Later).
  std::shared_ptr<class Later> later;

  static Response json(unsigned status, const boost::json::value& body, Headers headers = {});
  static Response html(std::string body);
  // The answer `later` will carry.
  static Response deferred(std::shared_ptr<Later> later);
};

// An answer a handler gives after it returned, from any thread: it returns
// Response::deferred(later) and, when the work is done, calls later->complete(answer)
// exactly once (e.g. the thread that committed a transaction shared by several
// requests: see RefreshTokens::rotate_later). serve() keeps the connection waiting
// meanwhile without holding a thread; App::handle waits for the answer.
class Later {
 public:
  // The answer. Only the first call counts.
  void complete(Response response);
  // Where the answer goes: called once with it, at once if it is there already, else
  // from the thread that calls complete(). Set once.
  void then(std::function<void(Response)> deliver);
  // Blocks until complete() has been called, and returns the answer.
  Response wait();

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::optional<Response> response_;
  std::function<void(Response)> deliver_;
  bool completed_ = false;
};

// Name-value pairs in arrival order (a query string, cookies, path parameters).
using Params = std::vector<std::pair<std::string, std::string>>;

// A query string as Starlette's QueryParams reads it (urllib's parse_qsl with
// keep_blank_values): split on '&', '+' is a space, %XX decoded as UTF-8 with U+FFFD
// for bad bytes, a field without '=' has an empty value.
Params parse_query_string(std::string_view query);
// A Cookie header as Starlette's cookie_parser reads it: split on ';', name and value
// trimmed, the value unquoted as http.cookies does.
Params parse_cookies(std::string_view header);
// The value a lookup in `params` finds for `name` (the last one, as a Python dict built
// from the pairs), or nullptr.
const std::string* find_param(const Params& params, std::string_view name);

// What a dependency or handler answers instead of a value: FastAPI's HTTPException.
// A validation error (422) is one whose `detail` is a list of error objects; FastAPI
// gathers those from every dependency before answering, and so does gatehouse.
struct HttpException {
  unsigned status = 500;
  boost::json::value detail;
  Headers headers;
  bool validation = false;

  HttpException(unsigned s, boost::json::value d, Headers h = {})
      : status(s), detail(std::move(d)), headers(std::move(h)) {}
  HttpException(unsigned s, std::string_view d, Headers h = {})
      : status(s), detail(d), headers(std::move(h)) {}
  HttpException(unsigned s, const char* d, Headers h = {})
      : status(s), detail(d), headers(std::move(h)) {}

  // A 422 with these pydantic-style error objects.
  static HttpException validation_error(boost::json::array errors);

  [[nodiscard]] Response to_response() const;
};

// What dependencies and handlers return: a value, or the HTTP error to answer with.
template <class T>
using Outcome = Result<T, HttpException>;

}  // namespace gatehouse
