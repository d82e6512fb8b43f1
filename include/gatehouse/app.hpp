// An application: routes that declare their security requirements, and the OpenAPI
// document and docs pages derived from them. `App::handle` maps a request to a
// response without any network; `serve()` (server.hpp) puts an App on a socket.
#pragma once

#include <boost/json/value.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gatehouse/health.hpp"
#include "gatehouse/http.hpp"
#include "gatehouse/log.hpp"
#include "gatehouse/metrics.hpp"
#include "gatehouse/model.hpp"
#include "gatehouse/models.hpp"
#include "gatehouse/params.hpp"
#include "gatehouse/security.hpp"

namespace gatehouse {

struct RouteOptions {
  // The handler's name, as the Python function's: the OpenAPI summary ("Read Users
  // Me") and operationId ("read_users_me_users_me__get") derive from it.
  std::string name;
  std::optional<Model> response_model;
  // Run on the bounded worker pool instead of an I/O thread, as FastAPI runs a plain
  // `def` endpoint in its thread pool. Anything that hashes a password must.
  bool offload = false;
  // A quick refusal checked before the route runs, and before it is offloaded, on the
  // I/O thread (so it is answered at once even while the worker pool is busy): e.g. a
  // throttled login. Sees the parsed form body; returns the answer, or nullopt to go
  // on. It must not block for long (no password hashing, one short store read at most).
  std::function<std::optional<Response>(RequestContext&)> precheck;
  // With offload: when set, asked per request (on the I/O thread, the form body parsed)
  // whether this one needs the pool; false runs it on the I/O thread after all. For a
  // route whose requests differ, e.g. /token: a password grant hashes, a
  // client_credentials grant only signs.
  std::function<bool(RequestContext&)> offload_if;
  bool include_in_schema = true;
  std::string summary;  // overrides the one derived from `name`
};

namespace detail {

using ResponseFilter = std::function<std::optional<boost::json::value>(const boost::json::value&)>;

// A JSON answer through the route's response_model filter (Model::filter), if any. An
// answer the model does not validate is the server's error: a 500, as in FastAPI.
Response filtered_json(const boost::json::value& v, const ResponseFilter& filter);

// A handler's value as the response: a Response as is; a JSON value, or a value with
// ValueTraits (a described struct, a vector of them...), as a 200 JSON answer.
// `unfiltered`: the response model's Model::unfiltered_type; a value of exactly that
// type is its own filtered answer.
template <class R>
Response as_response(R&& r, const ResponseFilter& filter,
                     const std::type_info* unfiltered = nullptr) {
  using V = std::remove_cvref_t<R>;
  if constexpr (std::is_same_v<V, Response>) {
    return std::forward<R>(r);
  } else if constexpr (std::is_convertible_v<V, boost::json::value> && !detail::is_described_v<V>) {
    return filtered_json(boost::json::value(std::forward<R>(r)), filter);
  } else {
    if constexpr (detail::is_described_v<V>) {
      if (unfiltered != nullptr && *unfiltered == typeid(V)) {
        if constexpr (detail::writes_directly<V>()) {
          // The same bytes as serialising to_json(r), without building that value.
          Response res;
          res.body.reserve(128);
          detail::write_json(res.body, r);
          return res;
        } else {
          return Response::json(200, ValueTraits<V>::to_json(r));
        }
      }
    }
    return filtered_json(ValueTraits<V>::to_json(r), filter);
  }
}

// Adapts a route handler (returning a Response, a JSON value, a model, or an Outcome
// of one) to a dependency producing a Response. Only the argument lists the handler
// accepts are callable, so the dependency machinery passes the context arguments it
// asks for.
template <class H>
struct RespondWith {
  H handler;
  ResponseFilter filter;
  const std::type_info* unfiltered = nullptr;  // Model::unfiltered_type
  template <class... A>
  requires std::is_invocable_v<const H&, A&&...> Outcome<Response>
  operator()(A&&... args) const {
    using R = std::remove_cvref_t<std::invoke_result_t<const H&, A&&...>>;
    if constexpr (is_outcome<R>::value) {
      auto r = handler(std::forward<A>(args)...);
      if (!r) return Err{std::move(r).error()};
      return as_response(std::move(*r), filter, unfiltered);
    } else {
      return as_response(handler(std::forward<A>(args)...), filter, unfiltered);
    }
  }
};

// A route argument: a Requirement (Depends/Security), or a dependency itself, which
// is Depends(it) (Path<int>("id") reads better than Depends(Path<int>("id"))).
template <class T>
Requirement<T> as_requirement(Requirement<T> r) {
  return r;
}
template <class T>
Requirement<T> as_requirement(const Dependency<T>& d) {
  return Requirement<T>{d, {}};
}
template <class A>
using requirement_value_t = typename decltype(as_requirement(std::declval<const A&>()))::value_type;

// The misuse the compiler can name: a handler that cannot take the values of the
// route's dependencies, in order.
template <class F, class... Ts>
constexpr bool handler_accepts_v =
    std::is_invocable_v<const F&, const Ts&...> ||
    std::is_invocable_v<const F&, RequestContext&, const Ts&...> ||
    std::is_invocable_v<const F&, const SecurityScopes&, const Ts&...> ||
    std::is_invocable_v<const F&, const SecurityScopes&, RequestContext&, const Ts&...>;

}  // namespace detail

// One path template piece: literal text, or a parameter with Starlette's convertor.
struct PathPiece {
  enum class Kind { literal, str, path, integer, number };
  Kind kind = Kind::literal;
  std::string text;  // the literal, or the parameter's name
};

#ifndef GATEHOUSE_DEFAULT_WEB_DIR
#define GATEHOUSE_DEFAULT_WEB_DIR ""
#endif

struct AppInfo {
  std::string title = "FastAPI";
  std::string version = "0.1.0";
  std::string openapi_url = "/openapi.json";
  std::string docs_url = "/docs";
  std::string redoc_url = "/redoc";
  // Where the Swagger UI and ReDoc files are (copied from npm at build time). A program
  // built against the installed package (CMake's find_package or pkg-config) gets that
  // package's share/gatehouse/web. Empty: next to the executable (web/) or in
  // ../share/gatehouse/web from it.
  std::string web_dir = GATEHOUSE_DEFAULT_WEB_DIR;
};

struct Route {
  std::string method;
  // Also answered for this method (the docs pages answer HEAD, as Starlette's do).
  bool allow_head = false;
  // As declared, e.g. "/notes/{note_id}" or "/files/{rest:path}".
  std::string path;
  // The path without convertors ("/files/{rest}"), as OpenAPI shows it.
  std::string path_format;
  // The compiled template; empty when the path has no parameter (matched as a string).
  std::vector<PathPiece> pieces;
  RouteOptions options;
  Binding binding;
  // The route's position in App::routes(), set when it is declared (metrics slots).
  std::size_t index = 0;
  std::function<Outcome<Response>(RequestContext&)> resolve;

  // FastAPI's generate_unique_id: name + path with non-word characters as '_', + method.
  [[nodiscard]] std::string operation_id() const;
  // Whether `path` (percent-decoded) matches this route's path, as Starlette's
  // compiled regex does; the parameters it binds go to `params` when given.
  [[nodiscard]] bool matches(std::string_view path, Params* params = nullptr) const;
};

// Compiles a path template as Starlette's compile_path: "{name}" matches [^/]+,
// "{name:path}" anything, "{name:int}" [0-9]+, "{name:float}" [0-9]+(.[0-9]+)?; sets
// route.path_format and route.pieces. Throws std::logic_error for an unknown convertor
// or a parameter named twice.
void compile_path(Route& route);

// What routing decided for a request, before any handler runs.
struct Dispatch {
  const Route* route = nullptr;      // set when the request is to be handled by a route
  std::optional<Response> response;  // otherwise, the answer (404, 405, 307)
};

class App {
 public:
  explicit App(AppInfo info = {});
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  template <class F, class... Args>
  Route& get(std::string path, RouteOptions options, F handler, Args... args) {
    return add("GET", std::move(path), std::move(options), std::move(handler), std::move(args)...);
  }
  template <class F, class... Args>
  Route& post(std::string path, RouteOptions options, F handler, Args... args) {
    return add("POST", std::move(path), std::move(options), std::move(handler), std::move(args)...);
  }
  template <class F, class... Args>
  Route& put(std::string path, RouteOptions options, F handler, Args... args) {
    return add("PUT", std::move(path), std::move(options), std::move(handler), std::move(args)...);
  }
  template <class F, class... Args>
  Route& patch(std::string path, RouteOptions options, F handler, Args... args) {
    return add("PATCH", std::move(path), std::move(options), std::move(handler),
               std::move(args)...);
  }
  template <class F, class... Args>
  Route& del(std::string path, RouteOptions options, F handler, Args... args) {
    return add("DELETE", std::move(path), std::move(options), std::move(handler),
               std::move(args)...);
  }

  // Declares a route. Each of `args` is a Requirement (Depends/Security) or a
  // dependency (Path, Query, Header, Cookie, JsonBody, any Dependency<T>); `handler`
  // takes their values in order (and optionally a leading RequestContext&) and returns
  // a Response, a JSON value, a model (models.hpp), or an Outcome of one. A route
  // whose dependencies declared blocking work runs on the worker pool. Declaration
  // errors (a Path naming no template parameter, two bodies) throw std::logic_error.
  template <class F, class... Args>
  Route& add(std::string method, std::string path, RouteOptions options, F handler, Args... args) {
    static_assert(detail::handler_accepts_v<F, detail::requirement_value_t<Args>...>,
                  "gatehouse: the route handler cannot be called with the values of the route's "
                  "dependencies: it takes ([RequestContext&,] const T&...) with one T per "
                  "dependency, in the order they are listed (Path<int> gives int, "
                  "Depends(Dependency<T>) gives T)");
    Route route;
    route.method = std::move(method);
    route.path = std::move(path);
    route.options = std::move(options);
    compile_path(route);
    detail::ResponseFilter filter;
    const std::type_info* unfiltered = nullptr;
    if (route.options.response_model) {
      filter = route.options.response_model->filter;
      unfiltered = route.options.response_model->unfiltered_type;
    }
    auto dep = dependency<Response>(
        detail::RespondWith<F>{std::move(handler), std::move(filter), unfiltered},
        detail::as_requirement(std::move(args))...);
    std::vector<std::string> names;
    for (const auto& p : route.pieces) {
      if (p.kind != PathPiece::Kind::literal) names.push_back(p.text);
    }
    route.binding.set_route(route.path, std::move(names));
    route.resolve = dep.bind(SecurityScopes{}, route.binding);
    if (route.binding.blocking()) route.options.offload = true;
    return add_route(std::move(route));
  }

  // Maps a request to a route or to a routing answer (404, 405 with Allow, 307 slash
  // redirect), in Starlette's order.
  [[nodiscard]] Dispatch dispatch(const Request& request) const;
  // Runs a dispatched route: parses a declared form body, resolves the dependency
  // tree and the handler, and turns an HttpException into its response, a
  // StoreUnavailable into a 503 with Retry-After, and any other exception into a 500.
  // A StoreWouldBlock (store.hpp) is let through to the caller. A deferred answer
  // (Response::later) is returned as is.
  [[nodiscard]] Response run(const Route& route, const Request& request) const;
  // The route's precheck (RouteOptions::precheck), if it has one and it answers.
  [[nodiscard]] std::optional<Response> precheck(const Route& route, const Request& request) const;
  // Whether this request of the route runs on the worker pool (RouteOptions::offload,
  // narrowed by offload_if; when offload_if cannot decide, it does).
  [[nodiscard]] bool offloads(const Route& route, const Request& request) const;
  // dispatch(), precheck() then run(), on the calling thread (waiting for a deferred
  // answer). For tests and embedding.
  [[nodiscard]] Response handle(const Request& request) const;

  // The OpenAPI 3.0.2 document, derived from the declared routes.
  [[nodiscard]] boost::json::value openapi() const;

  [[nodiscard]] const AppInfo& info() const noexcept { return info_; }
  [[nodiscard]] const std::vector<std::unique_ptr<Route>>& routes() const noexcept {
    return routes_;
  }
  // Request bodies larger than this are refused with 413 before they are read.
  std::size_t max_body_bytes = 64 * 1024;

  // Observability. The metrics registry the server records requests in (when
  // ServerOptions::metrics is on) and handlers count logins and tokens in; the
  // readiness checks /readyz runs; the logger for the app's events and the server's
  // access log (default: default_logger(), JSON lines on standard error).
  [[nodiscard]] const std::shared_ptr<Metrics>& metrics() const noexcept { return metrics_; }
  [[nodiscard]] Readiness& readiness() const noexcept { return *readiness_; }
  [[nodiscard]] const std::shared_ptr<Logger>& logger() const noexcept { return logger_; }
  void set_logger(std::shared_ptr<Logger> logger) {
    logger_ = logger ? std::move(logger) : default_logger();
  }

 private:
  Route& add_route(Route route);
  Response run_unguarded(const Route& route, const Request& request) const;
  Response store_unavailable(const Route& route, const Request& request,
                             const std::exception& e) const;
  void add_docs_routes();

  AppInfo info_;
  std::vector<std::unique_ptr<Route>> routes_;
  std::shared_ptr<Metrics> metrics_ = std::make_shared<Metrics>();
  std::shared_ptr<Readiness> readiness_ = std::make_shared<Readiness>();
  std::shared_ptr<Logger> logger_ = default_logger();
  mutable std::once_flag openapi_once_;
  mutable std::string openapi_json_;
};

}  // namespace gatehouse
