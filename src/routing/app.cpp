// App: route registration, Starlette-order routing (full match, 405, slash redirect,
// 404) and running a route's bound dependency tree.
#include "gatehouse/app.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <stdexcept>

#include "gatehouse/store.hpp"
#include "http/form.hpp"
#include "http/text.hpp"
#include "openapi/docs_pages.hpp"

namespace gatehouse {

namespace {

// urllib.parse.quote(url, safe=":/%#?=@[]!$&'()*+,;"), applied to UTF-8 bytes.
std::string quote_location(std::string_view url) {
  static constexpr std::string_view kSafe = ":/%#?=@[]!$&'()*+,;_.-~";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : url) {
    auto c = static_cast<unsigned char>(ch);
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum || (c < 0x80 && kSafe.find(static_cast<char>(c)) != std::string_view::npos)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Whether `value` is what the parameter's convertor regex matches in full.
bool piece_accepts(PathPiece::Kind kind, std::string_view value) {
  switch (kind) {
    case PathPiece::Kind::str:
      return !value.empty() && value.find('/') == std::string_view::npos;
    case PathPiece::Kind::path:
      return true;
    case PathPiece::Kind::integer:
      return all_digits(value);
    case PathPiece::Kind::number: {
      const auto dot = value.find('.');
      if (dot == std::string_view::npos) return all_digits(value);
      return all_digits(value.substr(0, dot)) && all_digits(value.substr(dot + 1));
    }
    case PathPiece::Kind::literal:
      break;
  }
  return false;
}

// The anchored regex match, greedy with backtracking as Python's re: each parameter
// tries its longest candidate first.
bool match_pieces(const std::vector<PathPiece>& pieces, std::size_t i, std::string_view rest,
                  Params* params) {
  if (i == pieces.size()) return rest.empty();
  const auto& piece = pieces[i];
  if (piece.kind == PathPiece::Kind::literal) {
    if (rest.substr(0, piece.text.size()) != piece.text) return false;
    return match_pieces(pieces, i + 1, rest.substr(piece.text.size()), params);
  }
  for (std::size_t len = rest.size() + 1; len-- > 0;) {
    const auto value = rest.substr(0, len);
    if (!piece_accepts(piece.kind, value)) continue;
    if (match_pieces(pieces, i + 1, rest.substr(len), params)) {
      if (params != nullptr) params->emplace(params->begin(), piece.text, std::string(value));
      return true;
    }
  }
  return false;
}

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

// A "{name}" or "{name:convertor}" at `at` (PARAM_REGEX of Starlette); its length, or 0.
std::size_t param_at(std::string_view path, std::size_t at, std::string& name,
                     std::string& convertor) {
  std::size_t i = at + 1;
  if (i >= path.size() || !is_name_start(path[i])) return 0;
  while (i < path.size() && is_name_char(path[i])) ++i;
  name = std::string(path.substr(at + 1, i - at - 1));
  convertor = "str";
  if (i < path.size() && path[i] == ':') {
    const auto start = ++i;
    if (i >= path.size() || !is_name_start(path[i])) return 0;
    while (i < path.size() && is_name_char(path[i])) ++i;
    convertor = std::string(path.substr(start, i - start));
  }
  if (i >= path.size() || path[i] != '}') return 0;
  return i + 1 - at;
}

// A dependency or handler that could not do its work (the database is down, ...): the
// client gets a 500 with a JSON body, the log gets the reason, the server goes on.
Response internal_error(Logger& logger, const Route& route, const Request& request,
                        const std::exception& e) {
  logger.event(LogLevel::error, "handler_error",
               {{"request_id", request.request_id()},
                {"method", route.method},
                {"route", route.path},
                {"error", e.what()}});
  return HttpException(500, "Internal Server Error").to_response();
}

}  // namespace

void compile_path(Route& route) {
  const std::string_view path = route.path;
  route.pieces.clear();
  route.path_format.clear();
  std::string literal;
  std::vector<std::string> seen;
  for (std::size_t i = 0; i < path.size();) {
    std::string name;
    std::string convertor;
    const std::size_t len = path[i] == '{' ? param_at(path, i, name, convertor) : 0;
    if (len == 0) {
      literal += path[i];
      route.path_format += path[i];
      ++i;
      continue;
    }
    PathPiece piece;
    piece.text = name;
    if (convertor == "str") {
      piece.kind = PathPiece::Kind::str;
    } else if (convertor == "path") {
      piece.kind = PathPiece::Kind::path;
    } else if (convertor == "int") {
      piece.kind = PathPiece::Kind::integer;
    } else if (convertor == "float") {
      piece.kind = PathPiece::Kind::number;
    } else {
      throw std::logic_error("gatehouse: route " + route.path + ": unknown path convertor '" +
                             convertor + "' (str, path, int, float)");
    }
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      throw std::logic_error("gatehouse: route " + route.path + ": duplicated path parameter '" +
                             name + "'");
    }
    seen.push_back(name);
    if (!literal.empty()) route.pieces.push_back({PathPiece::Kind::literal, std::move(literal)});
    literal.clear();
    route.pieces.push_back(std::move(piece));
    route.path_format += "{" + name + "}";
    i += len;
  }
  if (route.pieces.empty()) return;  // no parameter: matched as a string
  if (!literal.empty()) route.pieces.push_back({PathPiece::Kind::literal, std::move(literal)});
}

bool Route::matches(std::string_view request_path, Params* params) const {
  if (pieces.empty()) return request_path == path;
  return match_pieces(pieces, 0, request_path, params);
}

namespace detail {
Response filtered_json(const boost::json::value& v, const ResponseFilter& filter) {
  if (!filter) return Response::json(200, v);
  auto out = filter(v);
  if (!out) throw std::runtime_error("the answer does not validate against the response_model");
  return Response::json(200, *out);
}
}  // namespace detail

App::App(AppInfo info) : info_(std::move(info)) { add_docs_routes(); }

Route& App::add_route(Route route) {
  if (route.path_format.empty()) compile_path(route);
  route.index = routes_.size();
  routes_.push_back(std::make_unique<Route>(std::move(route)));
  return *routes_.back();
}

Dispatch App::dispatch(const Request& request) const {
  const std::string& path = request.path();
  const auto method = request.method();
  const Route* partial = nullptr;
  for (const auto& r : routes_) {
    // Most routes are literal paths: a length that differs rules one out at once.
    if (r->pieces.empty() ? (path.size() != r->path.size() || path != r->path)
                          : !r->matches(path)) {
      continue;
    }
    if (r->method == method || (r->allow_head && method == "HEAD")) return Dispatch{r.get(), {}};
    if (partial == nullptr) partial = r.get();
  }
  if (partial != nullptr) {
    // Starlette answers 405 with the methods of the first route on that path; this
    // comes before any dependency, so before authentication.
    std::string allow = partial->method;
    if (partial->allow_head) allow += ", HEAD";
    return Dispatch{nullptr,
                    HttpException(405, "Method Not Allowed", {{"Allow", allow}}).to_response()};
  }
  if (path != "/" && !path.empty()) {
    std::string other = path.back() == '/' ? path.substr(0, path.size() - 1) : path + "/";
    for (const auto& r : routes_) {
      if (!r->matches(other)) continue;
      // Starlette's redirect_slashes: 307 to the same URL with the slash toggled.
      std::string url = http::latin1_to_utf8(request.scheme()) + "://";
      // An empty Host (RFC 9110 §7.2: the target has no authority) names no host
      // either: the server's own address is used, as without one.
      auto host = request.header("Host");
      url += host && !host->empty() ? http::latin1_to_utf8(*host)
                                    : std::string(request.local_authority());
      url += other;
      if (auto q = request.query(); !q.empty()) {
        url += '?';
        url += q;
      }
      Response res;
      res.status = 307;
      res.content_type.clear();
      res.headers.emplace_back("Location", quote_location(url));
      return Dispatch{nullptr, std::move(res)};
    }
  }
  return Dispatch{nullptr, HttpException(404, "Not Found").to_response()};
}

// The database does not answer (or not in time): a 503 the client may retry, as an
// overloaded server's, and a log line with the reason. StoreWouldBlock is no
// std::exception and passes through both run() and precheck() to the server.
Response App::store_unavailable(const Route& route, const Request& request,
                                const std::exception& e) const {
  logger_->event(LogLevel::warning, "store_unavailable",
                 {{"request_id", request.request_id()},
                  {"method", route.method},
                  {"route", route.path},
                  {"error", e.what()}});
  return HttpException(503, "Service Unavailable: the database is not answering, try again",
                       {{"Retry-After", "1"}})
      .to_response();
}

Response App::run(const Route& route, const Request& request) const {
  try {
    return run_unguarded(route, request);
  } catch (const StoreUnavailable& e) {
    return store_unavailable(route, request, e);
  } catch (const std::exception& e) {
    return internal_error(*logger_, route, request, e);
  }
}

Response App::run_unguarded(const Route& route, const Request& request) const {
  RequestContext ctx(request);
  if (!route.pieces.empty()) {
    Params params;
    if (route.matches(request.path(), &params)) ctx.set_path_params(std::move(params));
  }
  if (route.binding.json_body()) {
    // FastAPI reads the body before solving any dependency: JSON it cannot decode is
    // answered before authentication (missing fields come later, in their order).
    boost::json::array errors;
    bool absent = false;
    std::optional<HttpException> stop;
    auto body = detail::read_json_body(request, false, errors, absent, stop);
    if (stop) return stop->to_response();
    if (!body && !errors.empty() && errors[0].as_object().at("type") == "value_error.jsondecode") {
      return HttpException::validation_error(std::move(errors)).to_response();
    }
  }
  if (route.binding.has_form_body()) {
    // FastAPI reads a form body before solving any dependency.
    auto form = http::parse_form(request.header("Content-Type").value_or(""), request.body());
    if (!form) return HttpException(400, std::move(form).error()).to_response();
    ctx.set_form(std::move(*form));
  }
  auto result = route.resolve(ctx);
  Response response = result ? std::move(*result) : result.error().to_response();
  response.not_before = ctx.not_before();
  return response;
}

std::optional<Response> App::precheck(const Route& route, const Request& request) const {
  if (!route.options.precheck) return std::nullopt;
  try {
    RequestContext ctx(request);
    if (route.binding.has_form_body()) {
      auto form = http::parse_form(request.header("Content-Type").value_or(""), request.body());
      if (!form) return std::nullopt;  // run() answers the 400
      ctx.set_form(std::move(*form));
    }
    return route.options.precheck(ctx);
  } catch (const StoreUnavailable& e) {
    return store_unavailable(route, request, e);
  } catch (const std::exception& e) {
    return internal_error(*logger_, route, request, e);
  }
}

bool App::offloads(const Route& route, const Request& request) const {
  if (!route.options.offload) return false;
  if (!route.options.offload_if) return true;
  try {
    RequestContext ctx(request);
    if (route.binding.has_form_body()) {
      auto form = http::parse_form(request.header("Content-Type").value_or(""), request.body());
      if (!form) return true;  // run() answers the 400
      ctx.set_form(std::move(*form));
    }
    return route.options.offload_if(ctx);
  } catch (...) {
    return true;  // undecided (a store that would block, a parse error): the pool
  }
}

Response App::handle(const Request& request) const {
  auto d = dispatch(request);
  if (d.route == nullptr) return std::move(*d.response);
  if (auto early = precheck(*d.route, request)) return std::move(*early);
  Response r = run(*d.route, request);
  if (r.later) return r.later->wait();
  return r;
}

void App::add_docs_routes() {
  auto page = [this](std::string path, std::string name, std::function<Response()> make) {
    if (path.empty()) return;
    Route r;
    r.method = "GET";
    r.allow_head = true;
    r.path = std::move(path);
    r.options.name = std::move(name);
    r.options.include_in_schema = false;
    r.resolve = [make = std::move(make)](RequestContext&) -> Outcome<Response> { return make(); };
    add_route(std::move(r));
  };
  page(info_.openapi_url, "openapi", [this] {
    std::call_once(openapi_once_, [this] { openapi_json_ = boost::json::serialize(openapi()); });
    Response r;
    r.body = openapi_json_;
    return r;
  });
  if (info_.docs_url.empty()) return;
  const std::string assets = info_.docs_url + "/assets/";
  const std::string web_dir = docs::find_web_dir(info_.web_dir);
  page(info_.docs_url, "swagger_ui_html",
       [this, assets] { return Response::html(docs::swagger_ui_html(info_, assets)); });
  page(info_.docs_url + "/oauth2-redirect", "swagger_ui_redirect",
       [web_dir] { return docs::oauth2_redirect_page(web_dir); });
  page(info_.redoc_url, "redoc_html",
       [this, assets] { return Response::html(docs::redoc_html(info_, assets)); });
  for (const char* file : docs::kAssetFiles) {
    page(assets + file, "asset", [web_dir, file] { return docs::static_file(web_dir, file); });
  }
}

}  // namespace gatehouse
